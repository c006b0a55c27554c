//go:build !linux

package flows

import (
	"context"

	"github.com/fleutan/fleutanbeat/input/internal/procindex"
)

// Collector is only implemented on Linux.
type Collector struct{}

// NewCollector returns a collector whose Collect always fails.
func NewCollector(CollectorOptions) *Collector { return &Collector{} }

// Collect reports that the OS is not supported.
func (c *Collector) Collect(context.Context) ([]Flow, error) { return nil, errNotSupported }

// Close does nothing.
func (c *Collector) Close() error { return nil }

// ProcessStats is empty on this OS.
func (c *Collector) ProcessStats() procindex.Stats { return procindex.Stats{} }

// Hint does nothing on this OS.
func (c *Collector) Hint(pid int) {}
