package cpu

import (
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/process"
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

// TestDiff checks the rules of Diff on built snapshots: deltas within a
// series, a new series or a reused pid counted from zero, counters that
// went back as zero, processes without CPU time left out.
func TestDiff(t *testing.T) {
	a := &process.Process{PID: 10, Name: "a", StartTime: 100}
	b := &process.Process{PID: 20, Name: "b", StartTime: 200}
	bReused := &process.Process{PID: 20, Name: "b2", StartTime: 900}
	c := &process.Process{PID: 30, Name: "c", StartTime: 300}
	idle := &process.Process{PID: 40, Name: "idle", StartTime: 400}
	prev := Snapshot{Time: time.Unix(10, 0), MonotonicNs: 10e9, Method: MethodEBPF, NetSoftirqs: true,
		Cores: []CoreTimes{
			{CPU: 0, UserTicks: 100, IdleTicks: 100, NetRX: 5, NetTX: 1},
			{CPU: 1, UserTicks: 50, IdleTicks: 150, NetRX: 7},
		},
		Processes: []ProcessTimes{
			{Process: a, Series: 1, CoreNs: []uint64{1e9, 0}, Migrations: 4},
			{Process: b, Series: 2, CoreNs: []uint64{5e9, 5e9}, Migrations: 9},
			{Process: c, Series: 3, CoreNs: []uint64{0.05e9, 2e9}},
			{Process: idle, Series: 4, CoreNs: []uint64{3e9, 0}, Migrations: 1},
		}}
	cur := Snapshot{Time: time.Unix(12, 0), MonotonicNs: 12e9, Method: MethodEBPF, NetSoftirqs: true,
		Cores: []CoreTimes{
			// 200 ticks: half user, half idle.
			{CPU: 0, UserTicks: 200, IdleTicks: 200, NetRX: 15, NetTX: 3},
			// Went offline and back: counters restarted.
			{CPU: 1, UserTicks: 10, IdleTicks: 10},
			// New: no previous reading.
			{CPU: 2, UserTicks: 10},
		},
		Processes: []ProcessTimes{
			{Process: a, Series: 1, CoreNs: []uint64{1.5e9, 0.5e9}, Migrations: 6},
			{Process: bReused, Series: 5, CoreNs: []uint64{0, 0.2e9}},
			{Process: c, Series: 6, CoreNs: []uint64{0.1e9, 0}, Migrations: 2},
			{Process: idle, Series: 4, CoreNs: []uint64{3e9, 0}, Migrations: 1},
			{Process: &process.Process{PID: 50, Name: "new"}, Series: 7, CoreNs: []uint64{0, 0, 1e9}},
		}}
	want := Usage{Time: time.Unix(12, 0), Period: 2 * time.Second, Method: MethodEBPF,
		Cores: []CoreUsage{
			{CPU: 0, User: 0.5, Idle: 0.5, NetSoftirqs: true, NetRX: 10, NetTX: 2},
			{CPU: 1, NetSoftirqs: true},
		},
		Processes: []ProcessUsage{
			{Process: a, TotalNs: 1e9, Pct: 0.5, NormPct: round(0.5/3, pctDigits), CoresUsed: 2, Spread: 2, DominantCore: 0, Migrations: 2,
				Cores: []ProcessCoreUsage{{CPU: 0, Ns: 0.5e9, Pct: 0.25, Share: 0.5}, {CPU: 1, Ns: 0.5e9, Pct: 0.25, Share: 0.5}}},
			{Process: bReused, TotalNs: 0.2e9, Pct: 0.1, NormPct: round(0.1/3, pctDigits), CoresUsed: 1, Spread: 1, DominantCore: 1,
				Cores: []ProcessCoreUsage{{CPU: 1, Ns: 0.2e9, Pct: 0.1, Share: 1}}},
			{Process: c, TotalNs: 0.1e9, Pct: 0.05, NormPct: round(0.05/3, pctDigits), CoresUsed: 1, Spread: 1, DominantCore: 0, Migrations: 2,
				Cores: []ProcessCoreUsage{{CPU: 0, Ns: 0.1e9, Pct: 0.05, Share: 1}}},
			{Process: cur.Processes[4].Process, TotalNs: 1e9, Pct: 0.5, NormPct: round(0.5/3, pctDigits), CoresUsed: 1, Spread: 1, DominantCore: 2,
				Cores: []ProcessCoreUsage{{CPU: 2, Ns: 1e9, Pct: 0.5, Share: 1}}},
		}}
	if got := Diff(prev, cur); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	// The first collection has nothing to subtract: no usage.
	if got := Diff(Snapshot{}, cur); len(got.Cores) != 0 || len(got.Processes) != 0 || got.Period != 0 {
		t.Errorf("Diff from a zero snapshot: %+v", got)
	}
	// Without /proc/softirqs on one side, the counts are unknown.
	prev.NetSoftirqs = false
	if got := Diff(prev, cur); got.Cores[0].NetSoftirqs || got.Cores[0].NetRX != 0 {
		t.Errorf("softirqs known from one side: %+v", got.Cores[0])
	}
}
