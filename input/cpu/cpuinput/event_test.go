package cpuinput

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// usageOf is the usage of a process that ran coreNs in period, from two
// snapshots of a machine with ncores cores.
func usageOf(t *testing.T, p *process.Process, coreNs []uint64, migrations uint64, period time.Duration, ncores int) cpu.ProcessUsage {
	t.Helper()
	cores := make([]cpu.CoreTimes, ncores)
	for i := range cores {
		cores[i].CPU = i
	}
	prev := cpu.Snapshot{Time: time.Unix(1, 0), MonotonicNs: 1e9, Cores: cores,
		Processes: []cpu.ProcessTimes{{Process: p, Series: 1, CoreNs: make([]uint64, len(coreNs)), Migrations: 10}}}
	cur := cpu.Snapshot{Time: time.Unix(3, 0), MonotonicNs: 1e9 + uint64(period), Cores: cores,
		Processes: []cpu.ProcessTimes{{Process: p, Series: 1, CoreNs: coreNs, Migrations: 10 + migrations}}}
	u := cpu.Diff(prev, cur)
	if len(u.Processes) != 1 {
		t.Fatalf("Diff: %d processes, want 1", len(u.Processes))
	}
	return u.Processes[0]
}

func TestProcessEvents(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	p := &process.Process{PID: 42, PPID: 1, Name: "srv", Executable: "/usr/bin/srv", Args: []string{"srv", "-x"}, StartTime: 777}
	u := usageOf(t, p, []uint64{250e6, 0, 750e6}, 7, 2*time.Second, 4)
	events := processEvents(nil, ts, 2*time.Second, true, &u, 3, 0, MethodEBPF)
	if len(events) != 3 {
		t.Fatalf("%d events, want 3 (process and two process_core)", len(events))
	}
	proc := pipeline.M{"pid": 42, "name": "srv", "executable": "/usr/bin/srv", "args": []string{"srv", "-x"}, "parent": pipeline.M{"pid": 1}}
	ev := func(cpu pipeline.M) pipeline.M {
		return pipeline.M{
			"event":   pipeline.M{"dataset": "fleutan.cpu", "module": "fleutan", "kind": "metric", "duration": int64(2e9)},
			"fleutan": pipeline.M{"cpu": cpu},
			"process": proc,
		}
	}
	want := []pipeline.Event{
		{Timestamp: ts, Series: "process/42/777", Fields: ev(pipeline.M{"scope": "process", "method": "ebpf", "pct": 0.5, "norm": pipeline.M{"pct": 0.125}, "cores_used": 2,
			"spread": round(math.Exp(-(0.25*math.Log(0.25) + 0.75*math.Log(0.75))), 4), "migrations": uint64(7), "flows": 3, "dominant_core": 2})},
		{Timestamp: ts, Series: "process_core/42/777/0", Fields: ev(pipeline.M{"scope": "process_core", "method": "ebpf", "core": 0, "pct": 0.125, "share": 0.25})},
		{Timestamp: ts, Series: "process_core/42/777/2", Fields: ev(pipeline.M{"scope": "process_core", "method": "ebpf", "core": 2, "pct": 0.375, "share": 0.75})},
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("got\n%v\nwant\n%v", events, want)
	}
	// An RDMA owner: its queue pair count on the process and on each of
	// its process_core events, absent above where it has none.
	for _, e := range processEvents(nil, ts, 2*time.Second, true, &u, 3, 2, MethodEBPF) {
		if v, _ := e.Fields.GetValue("fleutan.cpu.rdma_qps"); v != 2 {
			t.Errorf("%s: rdma_qps %v, want 2", e.Series, v)
		}
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// coreUsage is the usage of one core between two readings.
func coreUsage(t *testing.T, prev, cur cpu.CoreTimes, softirqs bool) cpu.CoreUsage {
	t.Helper()
	u := cpu.Diff(cpu.Snapshot{Time: time.Unix(4, 0), MonotonicNs: 4e9, Cores: []cpu.CoreTimes{prev}, NetSoftirqs: softirqs},
		cpu.Snapshot{Time: time.Unix(5, 0), MonotonicNs: 5e9, Cores: []cpu.CoreTimes{cur}, NetSoftirqs: softirqs})
	if len(u.Cores) != 1 {
		t.Fatalf("Diff: %d cores, want 1", len(u.Cores))
	}
	return u.Cores[0]
}

func TestCoreEvent(t *testing.T) {
	prev := cpu.CoreTimes{CPU: 3, UserTicks: 100, NiceTicks: 10, SystemTicks: 50, IdleTicks: 1000, IOWaitTicks: 5, IRQTicks: 1, SoftIRQTicks: 2, StealTicks: 0, NetRX: 10, NetTX: 1}
	// 200 ticks: user 40+10, system 30, idle 100, iowait 10, irq 4, softirq 4, steal 2
	cur := cpu.CoreTimes{CPU: 3, UserTicks: 140, NiceTicks: 20, SystemTicks: 80, IdleTicks: 1100, IOWaitTicks: 15, IRQTicks: 5, SoftIRQTicks: 6, StealTicks: 2, NetRX: 110, NetTX: 4}
	e := coreEvent(time.Unix(5, 0), time.Second, coreUsage(t, prev, cur, true))
	want := pipeline.M{
		"scope": "core", "method": "procfs", "core": 3,
		// Fractions of the core's ticks, adding up to 1.
		"user": pipeline.M{"pct": 0.25}, "system": pipeline.M{"pct": 0.15}, "irq": pipeline.M{"pct": 0.02},
		"softirq": pipeline.M{"pct": 0.02, "net_rx": uint64(100), "net_tx": uint64(3)},
		"iowait":  pipeline.M{"pct": 0.05}, "steal": pipeline.M{"pct": 0.01}, "idle": pipeline.M{"pct": 0.5},
	}
	if got, _ := e.Fields.GetValue("fleutan.cpu"); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if e.Series != "core/3" {
		t.Errorf("series %q", e.Series)
	}
	// A core that went offline and back restarts its counters: no
	// negative or huge values.
	cur.NetRX, cur.NetTX, prev.NetRX, prev.NetTX = 0, 0, 0, 0
	e = coreEvent(time.Unix(5, 0), time.Second, coreUsage(t, cur, prev, false))
	if got, _ := e.Fields.GetValue("fleutan.cpu.idle.pct"); got != 0.0 {
		t.Errorf("idle after reset = %v", got)
	}
	if _, ok := e.Fields.GetValue("fleutan.cpu.softirq.net_rx"); ok {
		t.Error("net_rx without /proc/softirqs")
	}
}
