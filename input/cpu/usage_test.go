package cpu

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

func TestSummarize(t *testing.T) {
	ms := uint64(time.Millisecond)
	for _, tc := range []struct {
		name string
		ns   []uint64
		want summary
	}{
		{"idle", []uint64{0, 0}, summary{Dominant: -1}},
		// pct is a fraction of one core, as in Beats: 0.9 is 90%.
		{"one core", []uint64{0, 900 * ms}, summary{TotalNs: 900 * ms, Pct: 0.9, CoresUsed: 1, Spread: 1, Dominant: 1}},
		{"even over two", []uint64{500 * ms, 500 * ms}, summary{TotalNs: 1000 * ms, Pct: 1, CoresUsed: 2, Spread: 2, Dominant: 0}},
		{"even over four", []uint64{250 * ms, 250 * ms, 250 * ms, 250 * ms}, summary{TotalNs: 1000 * ms, Pct: 1, CoresUsed: 4, Spread: 4, Dominant: 0}},
		// exp(-(0.9 ln 0.9 + 0.1 ln 0.1)) = 1.3841
		{"90/10", []uint64{100 * ms, 0, 900 * ms}, summary{TotalNs: 1000 * ms, Pct: 1, CoresUsed: 2, Spread: 1.3841, Dominant: 2}},
		// A process busy on one and a half cores has pct 1.5.
		{"one and a half cores", []uint64{1000 * ms, 500 * ms}, summary{TotalNs: 1500 * ms, Pct: 1.5, CoresUsed: 2, Spread: 1.8899, Dominant: 0}},
		{"a thousandth of a percent", []uint64{10 * uint64(time.Microsecond)}, summary{TotalNs: 10 * uint64(time.Microsecond), Pct: 0.00001, CoresUsed: 1, Spread: 1, Dominant: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.ns, time.Second); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestProcessEvents(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	p := &procInfo{PID: 42, PPID: 1, Name: "srv", Executable: "/usr/bin/srv", Args: []string{"srv", "-x"}, StartTime: 777}
	u := &procUsage{PID: 42, CoreNs: []uint64{250e6, 0, 750e6}, Migrations: 7, Flows: 3}
	s := summarize(u.CoreNs, 2*time.Second)
	events := processEvents(nil, ts, 2*time.Second, 4, p, u, s, MethodEBPF)
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
}

func TestCoreEvent(t *testing.T) {
	prev := coreTimes{CPU: 3, User: 100, Nice: 10, System: 50, Idle: 1000, IOWait: 5, IRQ: 1, SoftIRQ: 2, Steal: 0}
	// 200 ticks: user 40+10, system 30, idle 100, iowait 10, irq 4, softirq 4, steal 2
	cur := coreTimes{CPU: 3, User: 140, Nice: 20, System: 80, Idle: 1100, IOWait: 15, IRQ: 5, SoftIRQ: 6, Steal: 2}
	e := coreEvent(time.Unix(5, 0), time.Second, prev, cur, netSoftirqs{CPU: 3, RX: 10, TX: 1}, netSoftirqs{CPU: 3, RX: 110, TX: 4}, true)
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
	e = coreEvent(time.Unix(5, 0), time.Second, cur, prev, netSoftirqs{}, netSoftirqs{}, false)
	if got, _ := e.Fields.GetValue("fleutan.cpu.idle.pct"); got != 0.0 {
		t.Errorf("idle after reset = %v", got)
	}
	if _, ok := e.Fields.GetValue("fleutan.cpu.softirq.net_rx"); ok {
		t.Error("net_rx without /proc/softirqs")
	}
}
