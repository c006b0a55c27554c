package cpu

import (
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// Dataset is the event.dataset of this input.
const Dataset = "fleutan.cpu"

// Scopes of fleutan.cpu.scope.
const (
	ScopeProcess     = "process"
	ScopeProcessCore = "process_core"
	ScopeCore        = "core"
)

// methodProcfs names how core figures are measured: always from /proc.
const methodProcfs = "procfs"

// procInfo is the identity of a measured process.
type procInfo struct {
	PID        int
	PPID       int
	Name       string
	Executable string
	Args       []string
	StartTime  uint64
}

func baseFields(took time.Duration, cpu pipeline.M) pipeline.M {
	return pipeline.M{
		"event": pipeline.M{
			"dataset":  Dataset,
			"module":   "fleutan",
			"kind":     "metric",
			"duration": took.Nanoseconds(),
		},
		"fleutan": pipeline.M{"cpu": cpu},
	}
}

func (p *procInfo) fields() pipeline.M {
	m := pipeline.M{"pid": p.PID, "name": p.Name}
	if p.Executable != "" {
		m["executable"] = p.Executable
	}
	if len(p.Args) > 0 {
		m["args"] = p.Args
	}
	if p.PPID > 0 {
		m["parent"] = pipeline.M{"pid": p.PPID}
	}
	return m
}

func (p *procInfo) series() string {
	return strconv.Itoa(p.PID) + "/" + strconv.FormatUint(p.StartTime, 10)
}

// processEvents appends the process event of u and one process_core event
// per core it used. ts is the end of the period, period its length; cores
// is the number of online cores, which norm.pct divides by (0: unknown, no
// norm.pct), as Metricbeat's system.process.cpu.total.norm.pct.
func processEvents(dst []pipeline.Event, ts time.Time, period time.Duration, cores int, p *procInfo, u *procUsage, s summary, method string) []pipeline.Event {
	cpu := pipeline.M{
		"scope":      ScopeProcess,
		"method":     method,
		"pct":        s.Pct,
		"cores_used": s.CoresUsed,
		"spread":     s.Spread,
		"migrations": u.Migrations,
		"flows":      u.Flows,
	}
	if cores > 0 {
		cpu["norm"] = pipeline.M{"pct": round(s.Pct/float64(cores), pctDigits)}
	}
	if s.Dominant >= 0 {
		cpu["dominant_core"] = s.Dominant
	}
	f := baseFields(period, cpu)
	f["process"] = p.fields()
	series := p.series()
	dst = append(dst, pipeline.Event{Timestamp: ts, Fields: f, Series: "process/" + series})
	for core, ns := range u.CoreNs {
		if ns == 0 {
			continue
		}
		cpu := pipeline.M{
			"scope":  ScopeProcessCore,
			"method": method,
			"core":   core,
			"pct":    round(float64(ns)/float64(period.Nanoseconds()), pctDigits),
			"share":  round(float64(ns)/float64(s.TotalNs), 4),
		}
		f := baseFields(period, cpu)
		f["process"] = p.fields()
		dst = append(dst, pipeline.Event{Timestamp: ts, Fields: f, Series: "process_core/" + series + "/" + strconv.Itoa(core)})
	}
	return dst
}

// coreEvent turns two /proc/stat readings of a core, and its softirq counts,
// into a core event. The *.pct fractions are of the ticks the core
// accounted in between, so they add up to 1.
func coreEvent(ts time.Time, period time.Duration, prev, cur coreTimes, sPrev, sCur netSoftirqs, hasSoftirqs bool) pipeline.Event {
	total := sub(cur.total(), prev.total())
	pct := func(a, b uint64) float64 {
		if total == 0 {
			return 0
		}
		return round(float64(sub(a, b))/float64(total), pctDigits)
	}
	cpu := pipeline.M{
		"scope":   ScopeCore,
		"method":  methodProcfs,
		"core":    cur.CPU,
		"user":    pipeline.M{"pct": pct(cur.User+cur.Nice, prev.User+prev.Nice)},
		"system":  pipeline.M{"pct": pct(cur.System, prev.System)},
		"irq":     pipeline.M{"pct": pct(cur.IRQ, prev.IRQ)},
		"softirq": pipeline.M{"pct": pct(cur.SoftIRQ, prev.SoftIRQ)},
		"iowait":  pipeline.M{"pct": pct(cur.IOWait, prev.IOWait)},
		"steal":   pipeline.M{"pct": pct(cur.Steal, prev.Steal)},
		"idle":    pipeline.M{"pct": pct(cur.Idle, prev.Idle)},
	}
	if hasSoftirqs {
		softirq := cpu["softirq"].(pipeline.M)
		softirq["net_rx"] = sub(sCur.RX, sPrev.RX)
		softirq["net_tx"] = sub(sCur.TX, sPrev.TX)
	}
	return pipeline.Event{Timestamp: ts, Fields: baseFields(period, cpu), Series: "core/" + strconv.Itoa(cur.CPU)}
}

// sub is a counter delta; a counter that went back (CPU hotplug resets
// the idle and iowait ticks of a core that went offline) counts as zero.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
