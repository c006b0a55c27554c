//go:build !linux

package sockdiag

import "errors"

// ErrNotSupported is returned on systems without NETLINK_SOCK_DIAG.
var ErrNotSupported = errors.New("sockdiag: not supported on this OS (needs Linux NETLINK_SOCK_DIAG)")

// ErrClosed is returned by Dump after Close.
var ErrClosed = errors.New("sockdiag: dumper is closed")

// Dumper is unavailable outside Linux.
type Dumper struct{}

// Open returns ErrNotSupported.
func Open() (*Dumper, error) { return nil, ErrNotSupported }

// OpenIn returns ErrNotSupported.
func OpenIn(nsPath string) (*Dumper, error) { return nil, ErrNotSupported }

// Dump returns ErrNotSupported.
func (d *Dumper) Dump(req Request, fn func(*Socket) error) error { return ErrNotSupported }

// Close does nothing.
func (d *Dumper) Close() error { return nil }
