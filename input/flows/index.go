package flows

import "hash/maphash"

// flowIndex maps flows' indexKeys to their positions in a collection:
// what a map[indexKey]int32 did, in a tenth of the memory. A map of
// 36,000 flows held about 5 MB (a 56-byte key and a 4-byte value per
// entry, at the map's load), and the collector keeps two generations; this
// keeps 8 bytes per slot (the position and 32 bits of the key's hash) at a
// load of at most 2/3 and finds the key itself in the flows, which the
// collection holds anyway. A lookup compares keys only where the hash bits
// agree.
type flowIndex struct {
	seed  maphash.Seed
	slots []indexSlot
	n     int
}

type indexSlot struct {
	tag uint32
	pos int32 // position + 1; 0 is an empty slot
}

// newFlowIndex returns an index with room for n flows.
func newFlowIndex(n int) *flowIndex {
	x := &flowIndex{seed: maphash.MakeSeed()}
	x.reset(n)
	return x
}

// reset empties x and makes room for n flows, reusing its slots when they
// are of the size n asks for.
func (x *flowIndex) reset(n int) {
	size := 8
	for size < n+n/2 {
		size <<= 1
	}
	if len(x.slots) != size {
		x.slots = make([]indexSlot, size)
	} else {
		clear(x.slots)
	}
	x.n = 0
}

// Len is the number of keys in x.
func (x *flowIndex) Len() int {
	if x == nil {
		return 0
	}
	return x.n
}

// put records that the flow at pos has key k; an earlier position of the
// same key is replaced, as a map assignment would. at resolves the
// positions already in x to their flows.
func (x *flowIndex) put(k indexKey, pos int32, at func(int32) *Flow) {
	if 3*(x.n+1) > 2*len(x.slots) {
		x.grow(at)
	}
	h := maphash.Comparable(x.seed, k)
	tag, mask := uint32(h>>32), uint64(len(x.slots)-1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.pos == 0 {
			*s = indexSlot{tag: tag, pos: pos + 1}
			x.n++
			return
		}
		if s.tag == tag && at(s.pos-1).indexKey() == k {
			s.pos = pos + 1
			return
		}
	}
}

// get returns the position of key k; at resolves positions to flows.
func (x *flowIndex) get(k indexKey, at func(int32) *Flow) (int32, bool) {
	if x == nil || x.n == 0 {
		return 0, false
	}
	h := maphash.Comparable(x.seed, k)
	tag, mask := uint32(h>>32), uint64(len(x.slots)-1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s.pos == 0 {
			return 0, false
		}
		if s.tag == tag && at(s.pos-1).indexKey() == k {
			return s.pos - 1, true
		}
	}
}

// grow doubles the slots; the collector sizes an index for its flows up
// front, so this serves indexes that held flows appended after (flows of
// a failed namespace).
func (x *flowIndex) grow(at func(int32) *Flow) {
	old := x.slots
	x.slots = make([]indexSlot, 2*len(old))
	mask := uint64(len(x.slots) - 1)
	for _, s := range old {
		if s.pos == 0 {
			continue
		}
		h := maphash.Comparable(x.seed, at(s.pos-1).indexKey())
		for i := h & mask; ; i = (i + 1) & mask {
			if x.slots[i].pos == 0 {
				x.slots[i] = s
				break
			}
		}
	}
}

// clone is a copy of x that later resets and puts do not change.
func (x *flowIndex) clone() *flowIndex {
	if x == nil {
		return nil
	}
	c := *x
	c.slots = append([]indexSlot(nil), x.slots...)
	return &c
}
