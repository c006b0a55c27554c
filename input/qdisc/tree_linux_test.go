package qdisc

import (
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

func TestHTBAndTBFTrees(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vh0", 1, "10.78.0.1", "10.78.0.2")
	nstest.VethPair(t, a, b, "vt0", 1, "10.78.1.1", "10.78.1.2")
	for _, cmd := range [][]string{
		{"tc", "qdisc", "add", "dev", "vh0", "root", "handle", "1:", "htb", "default", "20"},
		{"tc", "class", "add", "dev", "vh0", "parent", "1:", "classid", "1:1", "htb", "rate", "2gbit"},
		{"tc", "class", "add", "dev", "vh0", "parent", "1:1", "classid", "1:10", "htb", "rate", "1gbit", "ceil", "2gbit", "prio", "1"},
		{"tc", "class", "add", "dev", "vh0", "parent", "1:1", "classid", "1:20", "htb", "rate", "800mbit", "ceil", "1gbit", "prio", "2"},
		{"tc", "filter", "add", "dev", "vh0", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "dport", "6000", "0xffff", "flowid", "1:10"},
		{"tc", "qdisc", "add", "dev", "vt0", "root", "handle", "2:", "tbf", "rate", "1gbit", "burst", "128kb", "limit", "1mb"},
	} {
		a.Run(t, cmd...)
	}
	c := newTestCollector(t, Options{}, qdisctest.Namespaces(t, a))
	defer c.Close()
	collectOnce(t, c)
	qdisctest.SendUDP(t, a, "10.78.0.2:6000", 10, 500)
	qdisctest.SendUDP(t, a, "10.78.0.2:7000", 7, 200)
	qdisctest.SendUDP(t, a, "10.78.1.2:6000", 5, 100)
	samples := collectOnce(t, c)

	want10 := Counters{Bytes: 10 * udpFrame(500), Packets: 10}
	want20 := Counters{Bytes: 7 * udpFrame(200), Packets: 7}
	sum := Counters{Bytes: want10.Bytes + want20.Bytes, Packets: 17}
	wantTBF := Counters{Bytes: 5 * udpFrame(100), Packets: 5}
	tests := []struct {
		name   string
		scope  Scope
		dev    string
		handle uint32
		kind   string
		want   Counters
		check  func(t *testing.T, k KindStats)
	}{
		{"htb root", ScopeQdisc, "vh0", 0x10000, "htb", sum, func(t *testing.T, k KindStats) {
			h, ok := k.HTB, k.HTB != nil
			if !ok || h.DefaultClass != 0x20 || h.DirectPackets != 0 {
				t.Errorf("htb qdisc stats %+v", k)
			}
		}},
		{"htb inner class", ScopeClass, "vh0", 0x10001, "htb", sum, func(t *testing.T, k KindStats) {
			h, ok := k.HTBClass, k.HTBClass != nil
			if !ok || h.Rate != 250000000 || h.Ceil != 250000000 || h.Level != 7 || !h.HasXstats {
				t.Errorf("htb 1:1 stats %+v", k)
			}
		}},
		{"htb leaf 1:10", ScopeClass, "vh0", 0x10010, "htb", want10, func(t *testing.T, k KindStats) {
			h, ok := k.HTBClass, k.HTBClass != nil
			if !ok || h.Rate != 125000000 || h.Ceil != 250000000 || h.Level != 0 || h.Prio != 1 || h.Quantum != 200000 {
				t.Errorf("htb 1:10 stats %+v", k)
			}
		}},
		{"htb leaf 1:20", ScopeClass, "vh0", 0x10020, "htb", want20, func(t *testing.T, k KindStats) {
			h, ok := k.HTBClass, k.HTBClass != nil
			if !ok || h.Rate != 100000000 || h.Ceil != 125000000 || h.Level != 0 || h.Prio != 2 {
				t.Errorf("htb 1:20 stats %+v", k)
			}
		}},
		{"tbf root", ScopeQdisc, "vt0", 0x20000, "tbf", wantTBF, func(t *testing.T, k KindStats) {
			f, ok := k.TBF, k.TBF != nil
			if !ok || f.Rate != 125000000 || f.Limit != 1<<20 || f.BurstBytes() != 128<<10 {
				t.Errorf("tbf stats %+v (burst %d)", k, f.BurstBytes())
			}
		}},
		// tbf's one class has no statistics: tbf_class_ops has no
		// dump_stats (net/sched/sch_tbf.c).
		{"tbf class", ScopeClass, "vt0", 0x20001, "tbf", Counters{}, nil},
	}
	// Overlimits and borrows depend on timing (HTB counts a class over
	// its rate when it borrows): only bytes, packets and drops are exact.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := findSample(samples, tt.scope, tt.dev, func(s *Sample) bool { return s.Handle == tt.handle })
			if s == nil {
				t.Fatalf("no %s %s on %s", tt.scope, FormatHandle(tt.handle), tt.dev)
			}
			if s.Kind != tt.kind || !s.HasDelta || (s.Delta.Bytes != tt.want.Bytes || s.Delta.Packets != tt.want.Packets || s.Delta.Drops != 0) || s.Reset || s.TxQueue != -1 {
				t.Errorf("kind %s delta %+v (has %v reset %v) queue %d, want %s %+v", s.Kind, s.Delta, s.HasDelta, s.Reset, s.TxQueue, tt.kind, tt.want)
			}
			if tt.check != nil {
				tt.check(t, s.KindStats)
			}
		})
	}
}
