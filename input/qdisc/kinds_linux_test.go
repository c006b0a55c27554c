package qdisc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
)

// addQdisc runs `tc qdisc add` in ns; a kind the kernel does not have
// skips the test (kernel lacks sch_KIND), or fails it in the kernel matrix.
func addQdisc(t *testing.T, ns *nstest.Netns, kind string, args ...string) {
	t.Helper()
	out, err := ns.Command(append([]string{"tc", "qdisc", "add"}, args...)...).CombinedOutput()
	if err == nil {
		return
	}
	if strings.Contains(string(out), "qdisc kind is unknown") {
		nstest.RequireKernel(t, "sch_"+kind)
	}
	t.Fatalf("tc qdisc add %s: %v\n%s", strings.Join(args, " "), err, out)
}

// tcJSON is `tc -s -j qdisc show dev DEV` in ns: one object per qdisc.
func tcJSON(t *testing.T, ns *nstest.Netns, dev string) []map[string]any {
	t.Helper()
	out := ns.Run(t, "tc", "-s", "-j", "qdisc", "show", "dev", dev)
	var qs []map[string]any
	if err := json.Unmarshal([]byte(out), &qs); err != nil {
		t.Fatalf("tc -s -j qdisc show dev %s: %v\n%s", dev, err, out)
	}
	return qs
}

// tcQdisc is the object of tc's output with the kind and the value of key
// ("handle": "1:", or "parent": "1:1" for the unnamed children of mqprio).
func tcQdisc(t *testing.T, qs []map[string]any, kind, key, value string) map[string]any {
	t.Helper()
	for _, q := range qs {
		if q["kind"] == kind && q[key] == value {
			return q
		}
	}
	t.Fatalf("tc shows no %s with %s %s in %v", kind, key, value, qs)
	return nil
}

// num is a number of tc's JSON object; a missing key fails the test.
func num(t *testing.T, obj map[string]any, key string) uint64 {
	t.Helper()
	v, ok := obj[key].(float64)
	if !ok {
		t.Fatalf("tc output has no number %q: %v", key, obj)
	}
	return uint64(v)
}

// xstat is an xstats number of tc's JSON object: tc prints some only when
// they are not 0 (fq_codel's ce_mark, fq's flows_plimit, ...), so a
// missing key is 0.
func xstat(t *testing.T, obj map[string]any, key string) uint64 {
	t.Helper()
	if _, ok := obj[key]; !ok {
		return 0
	}
	return num(t, obj, key)
}

// kindSetup is one qdisc kind on its own veth: a root qdisc with handle
// 1:, known traffic, and the kind-specific xstats compared field by field
// with what tc printed right after the same collection (nothing else
// crosses the veth in between).
type kindSetup struct {
	kind string
	args []string
	// underHTB puts the qdisc (handle 10:) under a 1 mbit/s htb class
	// instead of at the root, so that packets really wait in it: as a
	// root on an idle veth fq_codel lets them bypass its queue
	// (TCQ_F_CAN_BYPASS) and its own statistics stay 0.
	underHTB bool
	count    int
	size     int
	check    func(t *testing.T, s *Sample, tc map[string]any)
}

func TestRealQdiscKindsMatchTC(t *testing.T) {
	nstest.RequireRoot(t)
	eq := func(t *testing.T, name string, got uint64, tc map[string]any, key string) {
		t.Helper()
		if want := xstat(t, tc, key); got != want {
			t.Errorf("%s = %d, tc %s = %d", name, got, key, want)
		}
	}
	setups := []kindSetup{
		{kind: "fq_codel", args: []string{"fq_codel", "limit", "1000", "flows", "64"}, count: 20, size: 700, underHTB: true,
			check: func(t *testing.T, s *Sample, tc map[string]any) {
				f := s.FQCodel
				if f == nil {
					t.Fatalf("fq_codel specific stats: none (%+v)", s.KindStats)
				}
				eq(t, "maxpacket", uint64(f.MaxPacket), tc, "maxpacket")
				eq(t, "drop_overlimit", uint64(f.DropOverlimit), tc, "drop_overlimit")
				eq(t, "new_flow_count", uint64(f.NewFlowCount), tc, "new_flow_count")
				eq(t, "ecn_mark", uint64(f.ECNMark), tc, "ecn_mark")
				eq(t, "ce_mark", uint64(f.CEMark), tc, "ce_mark")
				eq(t, "memory_usage", uint64(f.MemoryUsage), tc, "memory_used")
				eq(t, "drop_overmemory", uint64(f.DropOvermemory), tc, "drop_overmemory")
				eq(t, "new_flows_len", uint64(f.NewFlowsLen), tc, "new_flows_len")
				eq(t, "old_flows_len", uint64(f.OldFlowsLen), tc, "old_flows_len")
				// Queued behind the htb class, the packets leave their
				// mark: a parser that read nothing would compare 0 = 0.
				if f.MaxPacket == 0 || f.NewFlowCount == 0 {
					t.Errorf("fq_codel maxpacket %d new_flow_count %d: packets never queued", f.MaxPacket, f.NewFlowCount)
				}
			}},
		{kind: "fq", args: []string{"fq", "flow_limit", "200"}, count: 30, size: 300,
			check: func(t *testing.T, s *Sample, tc map[string]any) {
				f := s.FQ
				if f == nil {
					t.Fatalf("fq specific stats: none (%+v)", s.KindStats)
				}
				eq(t, "flows", uint64(f.Flows), tc, "flows")
				eq(t, "inactive_flows", uint64(f.InactiveFlows), tc, "inactive")
				eq(t, "gc_flows", f.GCFlows, tc, "gc")
				eq(t, "highprio_packets", f.HighprioPackets, tc, "highprio")
				eq(t, "flows_plimit", f.FlowsPlimit, tc, "flows_plimit")
				eq(t, "pkts_too_long", f.PktsTooLong, tc, "pkts_too_long")
				eq(t, "allocation_errors", f.AllocationErrors, tc, "alloc_errors")
				eq(t, "ce_mark", f.CEMark, tc, "ce_mark")
				eq(t, "horizon_drops", f.HorizonDrops, tc, "horizon_drops")
				eq(t, "horizon_caps", f.HorizonCaps, tc, "horizon_caps")
			}},
		{kind: "cake", args: []string{"cake", "bandwidth", "1gbit", "besteffort"}, count: 25, size: 400,
			check: func(t *testing.T, s *Sample, tc map[string]any) {
				c := s.Cake
				if c == nil {
					t.Fatalf("cake specific stats: none (%+v)", s.KindStats)
				}
				eq(t, "memory_used", c.MemoryUsed, tc, "memory_used")
				eq(t, "memory_limit", c.MemoryLimit, tc, "memory_limit")
				eq(t, "capacity_estimate", c.CapacityEstimate, tc, "capacity_estimate")
				eq(t, "min_netlen", c.MinNetlen, tc, "min_network_size")
				eq(t, "max_netlen", c.MaxNetlen, tc, "max_network_size")
				eq(t, "min_adjlen", c.MinAdjlen, tc, "min_adj_size")
				eq(t, "max_adjlen", c.MaxAdjlen, tc, "max_adj_size")
				tins, _ := tc["tins"].([]any)
				if len(c.Tins) != 1 || len(tins) != 1 {
					t.Fatalf("besteffort cake: %d tins, tc shows %d", len(c.Tins), len(tins))
				}
				tin, _ := tins[0].(map[string]any)
				for ours, theirs := range map[string]string{
					"sent_packets": "sent_packets", "sent_bytes": "sent_bytes", "dropped_packets": "drops",
					"ecn_marked_packets": "ecn_mark", "acks_dropped_packets": "ack_drops",
					"backlog_bytes": "backlog_bytes", "threshold_rate": "threshold_rate",
					"way_indirect_hits": "way_indirect_hits", "way_misses": "way_misses",
					"way_collisions": "way_collisions", "sparse_flows": "sparse_flows",
					"bulk_flows": "bulk_flows", "unresponsive_flows": "unresponsive_flows",
					"max_skblen": "max_pkt_len", "flow_quantum": "flow_quantum",
					"peak_delay_us": "peak_delay_us", "avg_delay_us": "avg_delay_us", "base_delay_us": "base_delay_us",
				} {
					eq(t, "tin "+ours, c.Tins[0][ours], tin, theirs)
				}
				if c.Tins[0]["sent_packets"] != 25 || c.Tins[0]["sent_bytes"] != 25*udpFrame(400) {
					t.Errorf("cake tin sent %d packets %d bytes, want 25 and %d", c.Tins[0]["sent_packets"], c.Tins[0]["sent_bytes"], 25*udpFrame(400))
				}
			}},
	}
	for i, st := range setups {
		t.Run(st.kind, func(t *testing.T) {
			a, b := nstest.New(t), nstest.New(t)
			dev := "vk0"
			subnet := "10.79." + string(rune('0'+i))
			nstest.VethPair(t, a, b, dev, 1, subnet+".1", subnet+".2")
			handle, handleID := "1:", uint32(0x10000)
			if st.underHTB {
				addQdisc(t, a, "htb", "dev", dev, "root", "handle", "1:", "htb", "default", "1")
				a.Run(t, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", "1mbit")
				handle, handleID = "10:", 0x100000
				addQdisc(t, a, st.kind, append([]string{"dev", dev, "parent", "1:1", "handle", handle}, st.args...)...)
			} else {
				addQdisc(t, a, st.kind, append([]string{"dev", dev, "root", "handle", handle}, st.args...)...)
			}
			c := newTestCollector(t, Options{}, qdisctest.Namespaces(t, a))
			defer c.Close()
			collectOnce(t, c)
			qdisctest.SendUDP(t, a, subnet+".2:6000", st.count, st.size)
			// Counted as they leave: wait until the rate-limited queue
			// drained (20 frames at 1 mbit/s take about 0.12 s).
			for deadline := time.Now().Add(10 * time.Second); st.underHTB; time.Sleep(20 * time.Millisecond) {
				if num(t, tcQdisc(t, tcJSON(t, a, dev), st.kind, "handle", handle), "qlen") == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s %s still holds packets after 10 s", st.kind, handle)
				}
			}
			samples := collectOnce(t, c)
			tc := tcQdisc(t, tcJSON(t, a, dev), st.kind, "handle", handle)
			s := findSample(samples, ScopeQdisc, dev, func(s *Sample) bool { return s.Handle == handleID })
			if s == nil {
				t.Fatalf("no %s %s on %s", st.kind, handle, dev)
			}
			want := Counters{Bytes: uint64(st.count) * udpFrame(st.size), Packets: uint64(st.count)}
			if s.Kind != st.kind || !s.HasDelta || s.Delta.Bytes != want.Bytes || s.Delta.Packets != want.Packets || s.Delta.Drops != 0 {
				t.Errorf("%s delta %+v (has %v), want %+v", s.Kind, s.Delta, s.HasDelta, want)
			}
			for _, c := range []struct {
				name string
				got  uint64
			}{{"bytes", s.Bytes}, {"packets", s.Packets}, {"drops", s.Drops}} {
				if want := num(t, tc, c.name); c.got != want {
					t.Errorf("%s = %d, tc %d", c.name, c.got, want)
				}
			}
			for _, ks := range []any{s.FQCodel, s.FQ, s.Cake} {
				if !reflect.ValueOf(ks).IsNil() {
					t.Logf("%s: ours %+v; tc %v", st.kind, reflect.ValueOf(ks).Elem().Interface(), tc)
				}
			}
			st.check(t, s, tc)
		})
	}
}

// TestMQPrioTreeMatchesTC: an mqprio root with two traffic classes on two
// TX queues, traffic on the default priority (class 0, queue 0): the root
// and the per-queue child carry it, with tc's counters.
func TestMQPrioTreeMatchesTC(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	dev := "vm0"
	nstest.VethPair(t, a, b, dev, 2, "10.79.9.1", "10.79.9.2")
	addQdisc(t, a, "mqprio", "dev", dev, "root", "handle", "1:", "mqprio", "num_tc", "2",
		"map", "0", "0", "0", "0", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1",
		"queues", "1@0", "1@1", "hw", "0")
	c := newTestCollector(t, Options{}, qdisctest.Namespaces(t, a))
	defer c.Close()
	collectOnce(t, c)
	qdisctest.SendUDP(t, a, "10.79.9.2:6000", 12, 250)
	samples := collectOnce(t, c)
	qs := tcJSON(t, a, dev)
	root := findSample(samples, ScopeQdisc, dev, func(s *Sample) bool { return s.Handle == 0x10000 })
	if root == nil || root.Kind != "mqprio" {
		t.Fatalf("no mqprio 1: on %s in %+v", dev, samples)
	}
	tcRoot := tcQdisc(t, qs, "mqprio", "handle", "1:")
	want := Counters{Bytes: 12 * udpFrame(250), Packets: 12}
	if root.Delta.Bytes != want.Bytes || root.Delta.Packets != want.Packets {
		t.Errorf("mqprio root delta %+v, want %+v", root.Delta, want)
	}
	if got, tcb := root.Bytes, num(t, tcRoot, "bytes"); got != tcb {
		t.Errorf("mqprio root bytes %d, tc %d", got, tcb)
	}
	// XPS is off on a fresh veth: the queue is picked by hashing, so the
	// traffic is on one of the two children, all of it.
	var onQueues uint64
	for q := 0; q < 2; q++ {
		child := findSample(samples, ScopeQdisc, dev, func(s *Sample) bool { return s.Parent != handleRoot && s.TxQueue == q })
		if child == nil {
			t.Fatalf("no child qdisc of queue %d", q)
		}
		onQueues += child.Delta.Packets
		parent := FormatHandle(child.Parent)
		tcChild := tcQdisc(t, qs, child.Kind, "parent", parent)
		if got, tcp := child.Packets, num(t, tcChild, "packets"); got != tcp {
			t.Errorf("queue %d child %s under %s: packets %d, tc %d", q, child.Kind, parent, got, tcp)
		}
	}
	if onQueues != 12 {
		t.Errorf("children carried %d packets, want 12", onQueues)
	}
}
