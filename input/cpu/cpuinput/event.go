package cpuinput

import (
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/process"
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

func baseFields(took time.Duration, c pipeline.M) pipeline.M {
	return pipeline.M{
		"event": pipeline.M{
			"dataset":  Dataset,
			"module":   "fleutan",
			"kind":     "metric",
			"duration": took.Nanoseconds(),
		},
		"fleutan": pipeline.M{"cpu": c},
	}
}

func processFields(p *process.Process) pipeline.M {
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

func series(p *process.Process) string {
	return strconv.Itoa(p.PID) + "/" + strconv.FormatUint(p.StartTime, 10)
}

// processEvents appends the process event of u and one process_core event
// per core it used. ts is the end of the period, period its length;
// withNorm says whether the number of online cores was known, which
// norm.pct divides by, as Metricbeat's system.process.cpu.total.norm.pct.
// qps, the RDMA queue pairs the process owns, goes on both kinds of event
// when there are any, so that its cores can be told apart as an RDMA
// process's (rdma_qps > 0) without a join.
func processEvents(dst []pipeline.Event, ts time.Time, period time.Duration, withNorm bool, u *cpu.ProcessUsage, flows, qps int, method string) []pipeline.Event {
	c := pipeline.M{
		"scope":      ScopeProcess,
		"method":     method,
		"pct":        u.Pct,
		"cores_used": u.CoresUsed,
		"spread":     u.Spread,
		"migrations": u.Migrations,
		"flows":      flows,
	}
	if withNorm {
		c["norm"] = pipeline.M{"pct": u.NormPct}
	}
	if u.TotalNs > 0 {
		c["dominant_core"] = u.DominantCore
	}
	if qps > 0 {
		c["rdma_qps"] = qps
	}
	f := baseFields(period, c)
	f["process"] = processFields(u.Process)
	s := series(u.Process)
	dst = append(dst, pipeline.Event{Timestamp: ts, Fields: f, Series: "process/" + s})
	for _, pc := range u.Cores {
		c := pipeline.M{
			"scope":  ScopeProcessCore,
			"method": method,
			"core":   pc.CPU,
			"pct":    pc.Pct,
			"share":  pc.Share,
		}
		if qps > 0 {
			c["rdma_qps"] = qps
		}
		f := baseFields(period, c)
		f["process"] = processFields(u.Process)
		dst = append(dst, pipeline.Event{Timestamp: ts, Fields: f, Series: "process_core/" + s + "/" + strconv.Itoa(pc.CPU)})
	}
	return dst
}

// coreEvent is the event of one core over a period. The *.pct fractions
// are of the ticks the core accounted in the period, so they add up to 1.
func coreEvent(ts time.Time, period time.Duration, u cpu.CoreUsage) pipeline.Event {
	c := pipeline.M{
		"scope":   ScopeCore,
		"method":  methodProcfs,
		"core":    u.CPU,
		"user":    pipeline.M{"pct": u.User},
		"system":  pipeline.M{"pct": u.System},
		"irq":     pipeline.M{"pct": u.IRQ},
		"softirq": pipeline.M{"pct": u.SoftIRQ},
		"iowait":  pipeline.M{"pct": u.IOWait},
		"steal":   pipeline.M{"pct": u.Steal},
		"idle":    pipeline.M{"pct": u.Idle},
	}
	if u.NetSoftirqs {
		softirq := c["softirq"].(pipeline.M)
		softirq["net_rx"] = u.NetRX
		softirq["net_tx"] = u.NetTX
	}
	return pipeline.Event{Timestamp: ts, Fields: baseFields(period, c), Series: "core/" + strconv.Itoa(u.CPU)}
}
