//go:build !linux

package qdisc

import (
	"context"
	"errors"
)

var errNotSupported = errors.New("qdisc: the qdisc input reads rtnetlink traffic control dumps, which only Linux has: not supported on this OS")

// Collector is unavailable outside Linux.
type Collector struct{}

// NewCollector returns a collector whose Collect fails.
func NewCollector(CollectorOptions) *Collector { return &Collector{} }

// Collect reports that the OS is not supported.
func (c *Collector) Collect(context.Context) ([]Sample, error) { return nil, errNotSupported }

// Close does nothing.
func (c *Collector) Close() error { return nil }
