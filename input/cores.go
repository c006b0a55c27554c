package input

import (
	"sync"
	"time"
)

// ProcessCores is the cpu input's latest per-process core distribution,
// which the flows input adds to its per-process rollups when both run.
// The cpu input writes it, the flows input reads it; neither imports the
// other. A nil ProcessCores holds nothing.
type ProcessCores struct {
	mu sync.RWMutex
	// at is the end of the period the figures cover, period its length.
	at     time.Time
	period time.Duration
	m      map[ProcessKey]CoreUse
}

// ProcessKey names a process: its pid and start time (field 22 of
// /proc/PID/stat), so that a reused pid is another process.
type ProcessKey struct {
	PID       int
	StartTime uint64
}

// CoreUse is one process's CPU over the cpu input's period.
type CoreUse struct {
	// Pct is the fraction of one core it used (1.5 = a core and a half).
	Pct float64
	// DominantCore has the largest share; Spread is the effective number
	// of cores (exp of the entropy of the shares).
	DominantCore int
	Spread       float64
	// Cores are the cores it ran on, in CPU order.
	Cores []CoreShare
}

// CoreShare is a process's use of one core: Pct is the fraction of that
// core over the period (the Pct of all its cores add up to its Pct).
type CoreShare struct {
	CPU int
	Pct float64
}

// NewProcessCores returns an empty store.
func NewProcessCores() *ProcessCores { return &ProcessCores{} }

// Set replaces the distribution with m, that of the period of length
// period ending at at. m must not be modified afterwards.
func (c *ProcessCores) Set(at time.Time, period time.Duration, m map[ProcessKey]CoreUse) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.at, c.period, c.m = at, period, m
	c.mu.Unlock()
}

// Get returns k's use over the cpu input's latest period; ok is false
// when the cpu input has not measured k (not network-active, no CPU time,
// no cpu input), or when that period ended more than two periods before
// now (the cpu input stopped or stalls): old figures would read as
// current.
func (c *ProcessCores) Get(k ProcessKey, now time.Time) (u CoreUse, ok bool) {
	if c == nil {
		return CoreUse{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.m == nil || now.Sub(c.at) > 2*c.period {
		return CoreUse{}, false
	}
	u, ok = c.m[k]
	return u, ok
}
