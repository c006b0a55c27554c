//go:build !linux

package netns

import "errors"

var errNotSupported = errors.New("netns: network namespaces are not supported on this OS")

// Self is not supported on this OS.
func Self(procRoot string) (Namespace, error) { return Namespace{}, errNotSupported }

// List is not supported on this OS.
func List(procRoot, runDir string) ([]Namespace, error) { return nil, errNotSupported }

// Do is not supported on this OS.
func Do(nsPath string, fn func() error) error { return errNotSupported }
