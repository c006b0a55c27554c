package qdisc

import (
	"testing"
	"time"
)

// TestDiffRules: the delta of each qdisc, on built snapshots, as the
// collector's collections give them.
func TestDiffRules(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	t1, t2 := t0.Add(10*time.Second), t0.Add(20*time.Second)
	dev := &Device{Netns: 7, Index: 2, Name: "eth0"}
	q := func(handle uint32, at time.Time, c Counters) Qdisc {
		return Qdisc{Scope: ScopeQdisc, Device: dev, Kind: "fq_codel", Handle: handle, Parent: handleRoot, TxQueue: -1, Counters: c, Time: at}
	}
	ns := func(previous time.Time, failed bool) []Namespace {
		return []Namespace{{Inode: 7, Previous: previous, Failed: failed}}
	}
	tests := []struct {
		name      string
		prev, cur Snapshot
		want      []QdiscDelta
	}{
		{"zero prev: no delta",
			Snapshot{}, Snapshot{Time: t1, Namespaces: ns(time.Time{}, false), Qdiscs: []Qdisc{q(0x10000, t1, Counters{Bytes: 500, Packets: 5})}},
			[]QdiscDelta{{}}},
		{"zero prev with a namespace collected before: still none",
			Snapshot{}, Snapshot{Time: t1, Namespaces: ns(t0, false), Qdiscs: []Qdisc{q(0x10000, t1, Counters{Bytes: 500, Packets: 5})}},
			[]QdiscDelta{{}}},
		{"the same series: the change over its time; a new one: everything since the namespace's last collection",
			Snapshot{Time: t0, Namespaces: ns(time.Time{}, false), Qdiscs: []Qdisc{q(0x10000, t0, Counters{Bytes: 500, Packets: 5, Drops: 1})}},
			Snapshot{Time: t1, Namespaces: ns(t0, false), Qdiscs: []Qdisc{
				q(0x10000, t1, Counters{Bytes: 800, Packets: 8, Drops: 2}),
				q(0x20000, t1, Counters{Bytes: 70, Packets: 1}),
			}},
			[]QdiscDelta{
				{OK: true, Delta: Counters{Bytes: 300, Packets: 3, Drops: 1}, Elapsed: 10 * time.Second},
				{OK: true, Delta: Counters{Bytes: 70, Packets: 1}, Elapsed: 10 * time.Second},
			}},
		{"counters that went backwards: a reset, the new value",
			Snapshot{Time: t0, Namespaces: ns(time.Time{}, false), Qdiscs: []Qdisc{q(0x10000, t0, Counters{Bytes: 500, Packets: 5})}},
			Snapshot{Time: t1, Namespaces: ns(t0, false), Qdiscs: []Qdisc{q(0x10000, t1, Counters{Bytes: 90, Packets: 1})}},
			[]QdiscDelta{{OK: true, Delta: Counters{Bytes: 90, Packets: 1}, Reset: true, Elapsed: 10 * time.Second}}},
		{"a series held while its namespace failed: since its last reading",
			Snapshot{Time: t1, Namespaces: ns(t0, true), Held: []Qdisc{q(0x10000, t0, Counters{Bytes: 500, Packets: 5})}},
			Snapshot{Time: t2, Namespaces: ns(t0, false), Qdiscs: []Qdisc{q(0x10000, t2, Counters{Bytes: 900, Packets: 9})}},
			[]QdiscDelta{{OK: true, Delta: Counters{Bytes: 400, Packets: 4}, Elapsed: 20 * time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.prev, tt.cur)
			if len(got) != len(tt.want) {
				t.Fatalf("%d deltas, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("qdisc %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
