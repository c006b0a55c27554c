//go:build !linux

package rdma

import (
	"context"
	"fmt"
)

// Collector is only implemented on Linux.
type Collector struct{}

// New reports that the OS is not supported.
func New(Options) (*Collector, error) {
	return nil, fmt.Errorf("%w: not supported on this OS", ErrNotSupported)
}

// Collect is never reached: New fails.
func (c *Collector) Collect(context.Context) (Snapshot, error) { return Snapshot{}, ErrNotSupported }

// Close does nothing.
func (c *Collector) Close() error { return nil }

// QueuePairOwners is never reached: New fails.
func (c *Collector) QueuePairOwners(context.Context) (map[int]int, error) {
	return nil, ErrNotSupported
}
