package flows

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestFlowIndex: the index answers as the map it replaced, through
// growth, replaced positions and misses, and keeps its few bytes per flow.
func TestFlowIndex(t *testing.T) {
	const n = 36000
	fl := make([]Flow, 0, n+1)
	for i := range n {
		fl = append(fl, Flow{Netns: 7, Protocol: protoTCP,
			Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), uint16(1000+i%50000)),
			Remote: netip.MustParseAddrPort("127.0.0.1:5000"), Inode: uint32(i + 1)})
	}
	// The same 4-tuple as flow 0 in IPv4-mapped form is another key.
	mapped := fl[0]
	mapped.Local = netip.AddrPortFrom(netip.AddrFrom16(fl[0].Local.Addr().As16()), fl[0].Local.Port())
	fl = append(fl, mapped)
	at := func(j int32) *Flow { return &fl[j] }
	for _, start := range []int{len(fl), 1} { // sized up front; grown from 8 slots
		x := newFlowIndex(start)
		want := map[indexKey]int32{}
		for i := range fl {
			x.put(fl[i].indexKey(), int32(i), at)
			want[fl[i].indexKey()] = int32(i)
		}
		// A duplicate key takes the later position, as a map assignment.
		x.put(fl[5].indexKey(), 5, at)
		if x.Len() != len(want) {
			t.Fatalf("start %d: %d keys, want %d", start, x.Len(), len(want))
		}
		for k, j := range want {
			if got, ok := x.get(k, at); !ok || got != j {
				t.Fatalf("start %d: get(%v) = %d, %v; want %d", start, k, got, ok, j)
			}
		}
		miss := fl[0]
		miss.Inode = 0
		if j, ok := x.get(miss.indexKey(), at); ok {
			t.Errorf("start %d: a key never put found at %d", start, j)
		}
		c := x.clone()
		x.reset(1)
		if _, ok := x.get(fl[3].indexKey(), at); ok || x.Len() != 0 {
			t.Errorf("start %d: reset index still answers", start)
		}
		if got, ok := c.get(fl[3].indexKey(), at); !ok || got != 3 {
			t.Errorf("start %d: clone lost a key after the original's reset: %d, %v", start, got, ok)
		}
	}
	// What the collector keeps per flow and generation: the map it
	// replaced held about 130 bytes per flow at this size.
	x := newFlowIndex(n)
	if per := float64(len(x.slots)) * float64(unsafe.Sizeof(indexSlot{})) / n; per > 16 {
		t.Errorf("index of %d flows holds %.1f bytes per flow, want at most 16", n, per)
	}
}
