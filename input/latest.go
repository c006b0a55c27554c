package input

import (
	"sync"
	"time"
)

// Latest holds the most recent collection of each input type, and the one
// before it, for the local query API. An input publishes there only when
// the agent gave it one (Settings.Latest is nil while the API is off, so
// nothing is copied then). A value handed to Set must not be modified
// afterwards: readers on other goroutines hold it without a lock.
//
// The previous collection is kept because snapshots hold cumulative
// counters: the API answers with the change over the last period, which
// is the collector's Diff of the two.
type Latest struct {
	mu sync.RWMutex
	m  map[string]pair
}

type pair struct{ prev, cur Collection }

// Collection is one input's latest snapshot and when it was taken.
type Collection struct {
	Time time.Time
	// Snapshot is the collector's snapshot type: flows.Snapshot,
	// cpu.Snapshot, qdisc.Snapshot.
	Snapshot any
}

// NewLatest returns an empty store.
func NewLatest() *Latest { return &Latest{m: map[string]pair{}} }

// Set makes c the latest collection of input type typ; the one it
// replaces becomes the previous. A nil Latest ignores it.
func (l *Latest) Set(typ string, c Collection) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.m[typ] = pair{prev: l.m[typ].cur, cur: c}
	l.mu.Unlock()
}

// Get returns the latest collection of input type typ, false before the
// first one.
func (l *Latest) Get(typ string) (Collection, bool) {
	if l == nil {
		return Collection{}, false
	}
	l.mu.RLock()
	p, ok := l.m[typ]
	l.mu.RUnlock()
	return p.cur, ok
}

// Pair returns the latest collection of input type typ and the one before
// it, read together; prev is the zero Collection after the first
// collection, and ok is false before it.
func (l *Latest) Pair(typ string) (prev, cur Collection, ok bool) {
	if l == nil {
		return Collection{}, Collection{}, false
	}
	l.mu.RLock()
	p, ok := l.m[typ]
	l.mu.RUnlock()
	return p.prev, p.cur, ok
}
