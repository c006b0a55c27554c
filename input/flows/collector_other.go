//go:build !linux

package flows

import (
	"context"
	"errors"
)

var errNotSupported = errors.New("flows: the collector reads sock_diag and /proc, which only Linux has: not supported on this OS")

// Collector is only implemented on Linux.
type Collector struct{}

// New returns a collector whose Collect always fails.
func New(o Options) (*Collector, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Collector{}, nil
}

// Collect reports that the OS is not supported.
func (c *Collector) Collect(context.Context) (Snapshot, error) { return Snapshot{}, errNotSupported }

// Close does nothing.
func (c *Collector) Close() error { return nil }
