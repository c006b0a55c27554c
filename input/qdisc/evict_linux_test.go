package qdisc

import (
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// newTestXmitMap creates the program's map, with max entries, in the
// kernel, for Read to work on without the program.
func newTestXmitMap(t *testing.T, max uint32) *xmitCounter {
	t.Helper()
	spec, err := loadXmit()
	if err != nil {
		t.Fatal(err)
	}
	ms := spec.Maps[xmitMapXmitFlows].Copy()
	ms.MaxEntries = max
	// As the attribution does before loading: kernels before 5.11 charge
	// maps to RLIMIT_MEMLOCK, which refused this map on Debian's 5.10.
	_ = rlimit.RemoveMemlock()
	m, err := ebpf.NewMap(ms)
	if err != nil {
		t.Logf("create map: %v", err)
		nstest.RequireKernel(t, "eBPF LRU hash maps")
	}
	t.Cleanup(func() { m.Close() })
	return &xmitCounter{flows: m, prev: map[xmitFlowKey]xmitFlowVal{}, cur: map[xmitFlowKey]xmitFlowVal{}, evicted: new(atomic.Int64)}
}

func flowKey(port uint16) xmitFlowKey {
	return xmitFlowKey{Ifindex: 2, Sport: port, Dport: 443, Family: 2, Protocol: 6}
}

// TestXmitReadCountsEvictedEntries: entries that vanish from the map or
// whose counters go back between two reads count as evicted, and a
// recreated entry's delta is its new value.
func TestXmitReadCountsEvictedEntries(t *testing.T) {
	nstest.RequireRoot(t)
	// Far more entries than the test puts: an LRU map hands out nodes
	// through per-CPU free lists and may evict from a small map long
	// before it is full (on Debian's 6.1 a 64-entry map lost entries 3
	// and 4 here). Kernel evictions are the subject of
	// TestXmitReadCountsKernelLRUEvictions, not of this test.
	x := newTestXmitMap(t, 4096)
	put := func(port uint16, bytes uint64) {
		if err := x.flows.Put(flowKey(port), xmitFlowVal{Bytes: bytes, Packets: 1}); err != nil {
			t.Fatal(err)
		}
	}
	read := func() map[uint16]uint64 {
		got := map[uint16]uint64{}
		if err := x.Read(func(d *xmitDelta) { got[d.Local.Port()] = d.Bytes }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for p := uint16(1); p <= 5; p++ {
		put(p, 1000)
	}
	if got := read(); len(got) != 5 || x.evicted.Load() != 0 {
		t.Fatalf("first read: %v, evicted %d; want 5 flows, 0", got, x.evicted.Load())
	}
	for _, p := range []uint16{1, 2} {
		if err := x.flows.Delete(flowKey(p)); err != nil {
			t.Fatal(err)
		}
	}
	put(3, 300)  // recreated: its counters went back
	put(4, 1500) // grew
	put(6, 700)  // new
	got := read()
	if want := map[uint16]uint64{3: 300, 4: 500, 6: 700}; len(got) != len(want) || got[3] != 300 || got[4] != 500 || got[6] != 700 {
		t.Errorf("second read: %v, want %v", got, want)
	}
	if n := x.evicted.Load(); n != 3 {
		t.Errorf("evicted = %d, want 3 (two gone, one recreated)", n)
	}
}

// TestXmitReadCountsKernelLRUEvictions fills a small LRU map past its
// size so that the kernel itself evicts, and checks the count against the
// entries that are really gone.
func TestXmitReadCountsKernelLRUEvictions(t *testing.T) {
	nstest.RequireRoot(t)
	x := newTestXmitMap(t, 256)
	var ports []uint16
	for p := uint16(1); p <= 200; p++ {
		if err := x.flows.Put(flowKey(p), xmitFlowVal{Bytes: 10, Packets: 1}); err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	if err := x.Read(func(*xmitDelta) {}); err != nil {
		t.Fatal(err)
	}
	var kept []uint16
	for _, p := range ports {
		var v xmitFlowVal
		if x.flows.Lookup(flowKey(p), &v) == nil {
			kept = append(kept, p)
		}
	}
	for p := uint16(1000); p < 1000+4096; p++ {
		_ = x.flows.Put(flowKey(p), xmitFlowVal{Bytes: 10, Packets: 1})
	}
	gone := 0
	for _, p := range kept {
		var v xmitFlowVal
		if x.flows.Lookup(flowKey(p), &v) != nil {
			gone++
		}
	}
	if gone == 0 {
		t.Fatal("the kernel evicted none of the first entries; the test proves nothing")
	}
	if err := x.Read(func(*xmitDelta) {}); err != nil {
		t.Fatal(err)
	}
	if n := x.evicted.Load(); n != int64(gone) {
		t.Errorf("evicted = %d, %d of the entries read first are gone", n, gone)
	}
}
