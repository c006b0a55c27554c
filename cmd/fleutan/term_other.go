//go:build !linux

package main

func isTerminal(int) bool { return false }

func terminalWidth(int) (int, bool) { return 0, false }
