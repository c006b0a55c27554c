package input

import (
	"sync"
	"time"
)

// Latest holds the most recent collection of each input type, for the
// local query API. An input publishes there only when the agent gave it
// one (Settings.Latest is nil while the API is off, so nothing is copied
// then). A value handed to Set must not be modified afterwards: readers
// on other goroutines hold it without a lock.
type Latest struct {
	mu sync.RWMutex
	m  map[string]Collection
}

// Collection is one input's latest snapshot and when it was taken.
type Collection struct {
	Time time.Time
	// Snapshot is the collector's snapshot type: flows.Snapshot,
	// cpu.Snapshot, qdisc.Snapshot.
	Snapshot any
}

// NewLatest returns an empty store.
func NewLatest() *Latest { return &Latest{m: map[string]Collection{}} }

// Set replaces the collection of input type typ. A nil Latest ignores it.
func (l *Latest) Set(typ string, c Collection) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.m[typ] = c
	l.mu.Unlock()
}

// Get returns the latest collection of input type typ, false before the
// first one.
func (l *Latest) Get(typ string) (Collection, bool) {
	if l == nil {
		return Collection{}, false
	}
	l.mu.RLock()
	c, ok := l.m[typ]
	l.mu.RUnlock()
	return c, ok
}
