package cpu

import (
	"math"
	"time"
)

// procUsage is what one process did over a period.
type procUsage struct {
	PID       int
	StartTime uint64 // field 22 of stat: tells pid reuse apart
	// CoreNs is the CPU time per core, indexed by CPU number.
	CoreNs     []uint64
	Migrations uint64
	Flows      int
}

// summary condenses a process's per-core times.
type summary struct {
	TotalNs uint64
	// Pct is the fraction of one core over the period (1.0 = a full core,
	// 1.5 = one and a half), as Beats' *.pct fields.
	Pct       float64
	CoresUsed int
	// Spread is the effective number of cores: exp of the Shannon entropy
	// of the shares (the Hill number of order 1). One core gives 1, an even
	// split over n cores gives n.
	Spread   float64
	Dominant int // core with the largest share; -1 without CPU time
}

func summarize(coreNs []uint64, period time.Duration) summary {
	s := summary{Dominant: -1}
	var best uint64
	for core, ns := range coreNs {
		if ns == 0 {
			continue
		}
		s.TotalNs += ns
		s.CoresUsed++
		if ns > best {
			best, s.Dominant = ns, core
		}
	}
	if s.TotalNs == 0 {
		return s
	}
	var h float64
	for _, ns := range coreNs {
		if ns == 0 {
			continue
		}
		p := float64(ns) / float64(s.TotalNs)
		h -= p * math.Log(p)
	}
	s.Spread = round(math.Exp(h), 4)
	if period > 0 {
		s.Pct = round(float64(s.TotalNs)/float64(period.Nanoseconds()), pctDigits)
	}
	return s
}

// pctDigits is the precision of a fraction: 0.001 percent.
const pctDigits = 5

// round keeps documents short and stable: a ratio of measured times has
// no meaning beyond a few digits.
func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}
