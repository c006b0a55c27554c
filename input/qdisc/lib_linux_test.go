package qdisc

import (
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
	"reflect"
	"testing"
	"time"

	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// TestLibraryCountersAgreeButXstatsAreMissing is the data half of the
// decision to keep this package's rtnetlink parser beside
// vishvananda/netlink: over one htb tree and known traffic, the library's generic counters equal ours, while the kind
// xstats (TCA_STATS_APP) that ours decodes have no place in the library's
// types and its packet counter is the 32-bit one (no TCA_STATS_PKT64). A
// library release that adds them fails the type checks below, which is
// the cue to weigh the decision again.
func TestLibraryCountersAgreeButXstatsAreMissing(t *testing.T) {
	const count, size = 200, 1000
	const wire = size + 8 + 20 + 14 // UDP, IPv4 and Ethernet headers
	a, peer := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, peer, "vl0", 1, "10.77.0.1", "10.77.0.2")
	a.Run(t, "tc", "qdisc", "add", "dev", "vl0", "root", "handle", "1:", "htb", "default", "1")
	a.Run(t, "tc", "class", "add", "dev", "vl0", "parent", "1:", "classid", "1:1", "htb", "rate", "1gbit")
	qdisctest.SendUDP(t, a, "10.77.0.2:9", count, size)

	r, err := openRtnlIn(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := libHandleIn(t, a.Path())
	link, err := h.LinkByName("vl0")
	if err != nil {
		t.Fatal(err)
	}
	idx := int32(link.Attrs().Index)

	type obj struct {
		kind                  string
		bytes, packets        uint64
		qlen, backlog         uint32
		drops, overl, requeue uint64
		xstats                bool // ours decoded the kind's xstats
	}
	key := func(handle, parent uint32) [2]uint32 { return [2]uint32{handle, parent} }
	own := map[[2]uint32]obj{}
	collect := func(scope Scope) func(m *tcMsg) {
		return func(m *tcMsg) {
			if m.Ifindex != idx {
				return
			}
			own[key(m.Handle, m.Parent)] = obj{m.Kind, m.Bytes, m.Packets, m.Qlen, m.Backlog, m.Drops, m.Overlimits, m.Requeues,
				decodeKind(scope, m.Kind, m.Options, m.Xstats).Any() && len(m.Xstats) > 0}
		}
	}
	// htb paces the burst out of its queue: wait until it is empty, so
	// that both dumps see the same, final counters.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		clear(own)
		if err := r.tc(unix.RTM_GETQDISC, 0, collect(ScopeQdisc)); err != nil {
			t.Fatal(err)
		}
		if root := own[key(0x10000, 0xFFFFFFFF)]; root.qlen == 0 && root.packets == count || time.Now().After(deadline) {
			break
		}
	}
	if err := r.tc(unix.RTM_GETTCLASS, idx, collect(ScopeClass)); err != nil {
		t.Fatal(err)
	}

	lib := map[[2]uint32]obj{}
	add := func(kind string, handle, parent uint32, s *vnl.ClassStatistics) {
		if s == nil {
			t.Fatalf("library: %s %x has no statistics", kind, handle)
		}
		lib[key(handle, parent)] = obj{kind: kind, bytes: s.Basic.Bytes, packets: uint64(s.Basic.Packets), qlen: s.Queue.Qlen,
			backlog: s.Queue.Backlog, drops: uint64(s.Queue.Drops), overl: uint64(s.Queue.Overlimits), requeue: uint64(s.Queue.Requeues)}
	}
	qs, err := h.QdiscList(link)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		at := q.Attrs()
		add(q.Type(), at.Handle, at.Parent, (*vnl.ClassStatistics)(at.Statistics))
	}
	cs, err := h.ClassList(link, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		at := c.Attrs()
		add(c.Type(), at.Handle, at.Parent, at.Statistics)
	}

	want := map[[2]uint32]string{
		key(0x10000, 0xFFFFFFFF): "htb", // root qdisc 1:
		key(0x10001, 0xFFFFFFFF): "htb", // class 1:1, with htb's own leaf
	}
	if len(own) != len(want) || len(lib) != len(want) {
		t.Fatalf("objects on vl0: ours %v, library's %v; want %v", own, lib, want)
	}
	for k, kind := range want {
		o, l := own[k], lib[k]
		if o.kind != kind || o.packets != count || o.bytes != count*wire {
			t.Errorf("ours %x parent %x: %+v, want %s with %d packets, %d bytes", k[0], k[1], o, kind, count, count*wire)
		}
		ox := o
		ox.xstats = false
		if ox != l {
			t.Errorf("%x parent %x: ours %+v, library's %+v", k[0], k[1], ox, l)
		}
	}
	// An htb class's xstats (tokens, ctokens, lends, borrows, giants);
	// fq_codel, fq and cake have theirs too (TestRealQdiscKindsMatchTC).
	if !own[key(0x10001, 0xFFFFFFFF)].xstats {
		t.Errorf("ours decoded no xstats for the htb class: %v", own)
	}

	stats := reflect.TypeOf(vnl.ClassStatistics{})
	var fields []string
	for i := range stats.NumField() {
		fields = append(fields, stats.Field(i).Name)
	}
	if !reflect.DeepEqual(fields, []string{"Basic", "Queue", "RateEst", "BasicHw"}) {
		t.Errorf("vishvananda/netlink ClassStatistics now has %v: does it carry TCA_STATS_APP?", fields)
	}
	if k := reflect.TypeOf(vnl.GnetStatsBasic{}.Packets).Kind(); k != reflect.Uint32 {
		t.Errorf("vishvananda/netlink GnetStatsBasic.Packets is %v: does it read TCA_STATS_PKT64?", k)
	}
}
