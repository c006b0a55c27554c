//go:build !linux

package qdisc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

var errNotSupported = errors.New("qdisc: the collector reads rtnetlink traffic control dumps, which only Linux has: not supported on this OS")

// Collector is unavailable outside Linux.
type Collector struct{}

// New returns a collector whose Collect fails.
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

type xmitCounter struct{}

func openXmitCounter(string, ...string) (*xmitCounter, error) {
	return nil, fmt.Errorf("qdisc: eBPF transmit counter: not supported on %s", runtime.GOOS)
}

func (x *xmitCounter) Method() string { return "" }
func (x *xmitCounter) Close() error   { return nil }
