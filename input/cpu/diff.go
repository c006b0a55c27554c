package cpu

import (
	"math"
	"slices"
	"time"
)

// Diff returns the usage between two snapshots of one Collector. A zero
// prev (before the first collection) gives no cores and no processes: a
// period needs two ends. A process absent from prev, or counted in a new
// series since, is counted from zero: all of its counts belong to the
// period. Counters that went back count as zero.
func Diff(prev, cur Snapshot) Usage {
	u := Usage{Time: cur.Time, Method: cur.Method}
	if prev.Time.IsZero() && prev.MonotonicNs == 0 {
		return u
	}
	u.Period = time.Duration(sub(cur.MonotonicNs, prev.MonotonicNs))
	softirqs := prev.NetSoftirqs && cur.NetSoftirqs
	for _, c := range cur.Cores {
		p, ok := findCore(prev.Cores, c.CPU)
		if !ok {
			continue
		}
		u.Cores = append(u.Cores, coreUsage(p, c, softirqs))
	}
	before := make(map[int]*ProcessTimes, len(prev.Processes))
	for i := range prev.Processes {
		p := &prev.Processes[i]
		if p.Process != nil {
			before[p.Process.PID] = p
		}
	}
	var delta []uint64
	for i := range cur.Processes {
		c := &cur.Processes[i]
		if c.Process == nil {
			continue
		}
		delta = append(delta[:0], c.CoreNs...)
		mig := c.Migrations
		if p := before[c.Process.PID]; p != nil && p.Series == c.Series && p.Process.StartTime == c.Process.StartTime {
			for core := range delta {
				if core < len(p.CoreNs) {
					delta[core] = sub(delta[core], p.CoreNs[core])
				}
			}
			mig = sub(mig, p.Migrations)
		}
		s := summarize(delta, u.Period)
		if s.TotalNs == 0 {
			continue
		}
		pu := ProcessUsage{
			Process:      c.Process,
			TotalNs:      s.TotalNs,
			Pct:          s.Pct,
			CoresUsed:    s.CoresUsed,
			Spread:       s.Spread,
			DominantCore: s.Dominant,
			Migrations:   mig,
			Cores:        make([]ProcessCoreUsage, 0, s.CoresUsed),
		}
		if n := len(cur.Cores); n > 0 {
			pu.NormPct = round(s.Pct/float64(n), pctDigits)
		}
		for core, ns := range delta {
			if ns == 0 {
				continue
			}
			pc := ProcessCoreUsage{CPU: core, Ns: ns, Share: round(float64(ns)/float64(s.TotalNs), 4)}
			if u.Period > 0 {
				pc.Pct = round(float64(ns)/float64(u.Period.Nanoseconds()), pctDigits)
			}
			pu.Cores = append(pu.Cores, pc)
		}
		u.Processes = append(u.Processes, pu)
	}
	slices.SortFunc(u.Processes, func(a, b ProcessUsage) int { return a.Process.PID - b.Process.PID })
	return u
}

// coreUsage turns two /proc/stat readings of a core, and its softirq
// counts, into fractions of the ticks the core accounted in between.
func coreUsage(prev, cur CoreTimes, softirqs bool) CoreUsage {
	total := sub(cur.total(), prev.total())
	pct := func(a, b uint64) float64 {
		if total == 0 {
			return 0
		}
		return round(float64(sub(a, b))/float64(total), pctDigits)
	}
	u := CoreUsage{
		CPU:     cur.CPU,
		User:    pct(cur.UserTicks+cur.NiceTicks, prev.UserTicks+prev.NiceTicks),
		System:  pct(cur.SystemTicks, prev.SystemTicks),
		IRQ:     pct(cur.IRQTicks, prev.IRQTicks),
		SoftIRQ: pct(cur.SoftIRQTicks, prev.SoftIRQTicks),
		IOWait:  pct(cur.IOWaitTicks, prev.IOWaitTicks),
		Steal:   pct(cur.StealTicks, prev.StealTicks),
		Idle:    pct(cur.IdleTicks, prev.IdleTicks),
	}
	if softirqs {
		u.NetSoftirqs = true
		u.NetRX = sub(cur.NetRX, prev.NetRX)
		u.NetTX = sub(cur.NetTX, prev.NetTX)
	}
	return u
}

// total is the time the core's fields cover. Guest and guest_nice are left
// out: the kernel already counts them in user and nice
// (account_guest_time, kernel/sched/cputime.c).
func (c CoreTimes) total() uint64 {
	return c.UserTicks + c.NiceTicks + c.SystemTicks + c.IdleTicks + c.IOWaitTicks + c.IRQTicks + c.SoftIRQTicks + c.StealTicks
}

func findCore(cs []CoreTimes, cpu int) (CoreTimes, bool) {
	for _, c := range cs {
		if c.CPU == cpu {
			return c, true
		}
	}
	return CoreTimes{}, false
}

// sub is a counter delta; a counter that went back (CPU hotplug resets
// the idle and iowait ticks of a core that went offline) counts as zero.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
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

// round keeps results short and stable: a ratio of measured times has
// no meaning beyond a few digits.
func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}
