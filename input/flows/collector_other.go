//go:build !linux

package flows

import "context"

// Collector is only implemented on Linux.
type Collector struct{}

// NewCollector returns a collector whose Collect always fails.
func NewCollector(CollectorOptions) *Collector { return &Collector{} }

// Collect reports that the OS is not supported.
func (c *Collector) Collect(context.Context) ([]Flow, error) { return nil, errNotSupported }

// Close does nothing.
func (c *Collector) Close() error { return nil }
