package main

import "golang.org/x/sys/unix"

// isTerminal reports whether fd is a terminal (it answers TCGETS).
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// terminalWidth is the column count the terminal reports (tty_ioctl(4)).
func terminalWidth(fd int) (int, bool) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}
