//go:build !linux

package tcplife

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// Tracker is only available on Linux.
type Tracker struct{}

// Open fails: the program needs Linux.
func Open(Options) (*Tracker, error) {
	return nil, fmt.Errorf("%w on %s", ErrNotSupported, runtime.GOOS)
}

func (t *Tracker) Drain(context.Context) ([]Conn, error) { return nil, ErrNotSupported }
func (t *Tracker) Lookup(uint64) (Owner, bool)           { return Owner{}, false }
func (t *Tracker) Stats() Stats                          { return Stats{} }
func (t *Tracker) Close() error                          { return nil }

// Monotonic is 0 where the program cannot run.
func Monotonic() uint64 { return 0 }

// WallTime is the current time where the program cannot run.
func WallTime(uint64) time.Time { return time.Now() }
