//go:build !linux

package cpu

import "context"

// Collector measures per-core CPU time; on this OS New fails with
// ErrNotSupported.
type Collector struct{}

// New returns ErrNotSupported on this OS.
func New(o Options) (*Collector, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	return nil, ErrNotSupported
}

// Method is "" on this OS.
func (c *Collector) Method() string { return "" }

// Track does nothing on this OS.
func (c *Collector) Track([]int) {}

// Collect returns ErrNotSupported on this OS.
func (c *Collector) Collect(context.Context) (Snapshot, error) { return Snapshot{}, ErrNotSupported }

// Close does nothing on this OS.
func (c *Collector) Close() error { return nil }

// CollectError is Collect's error when part of a collection failed.
type CollectError struct {
	Processes, Cores error
}

func (e *CollectError) Error() string { return "cpu: collect failed" }
