package pipeline

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
)

// Object is an event object whose shape the input knows when it builds the
// event (a flow's tcp_info, its endpoints): members kept sorted by key, with
// numbers, strings and booleans stored unboxed. Compared with M it needs no
// map and no boxed value per member (and, from a Builder, no allocation of
// its own), and encoders write it in order without iterating a map or
// sorting keys: on the flows hot path that was most of the per-event cost.
// STYLE.md: typed events where the shape is known, a dotted-path map where
// processors need generality.
//
// Processors see no difference: M.GetValue, Put and Delete walk through an
// Object and change it in place (an Object belongs to one event, like an M).
// Code that needs a plain map (AsObject, MutableObject) gets an M copy.
type Object struct {
	ms []Member
}

// Kind says where a Member keeps its value.
type Kind uint8

// Member kinds. KindAny holds any other value (nested objects, slices,
// addresses) as an interface.
const (
	KindAny Kind = iota
	KindString
	KindInt
	KindInt64
	KindUint64
	KindFloat64
	KindBool
)

// Member is one key and value of an Object. Build it with String, Int,
// Int64, Uint64, Float64, Bool or Any; keys never contain dots.
type Member struct {
	Key  string
	kind Kind
	num  uint64
	str  string
	val  any
}

// String returns a string member.
func String(key, v string) Member { return Member{Key: key, kind: KindString, str: v} }

// Int returns an int member.
func Int(key string, v int) Member { return Member{Key: key, kind: KindInt, num: uint64(v)} }

// Int64 returns an int64 member.
func Int64(key string, v int64) Member { return Member{Key: key, kind: KindInt64, num: uint64(v)} }

// Uint64 returns a uint64 member.
func Uint64(key string, v uint64) Member { return Member{Key: key, kind: KindUint64, num: v} }

// Float64 returns a float64 member.
func Float64(key string, v float64) Member {
	return Member{Key: key, kind: KindFloat64, num: math.Float64bits(v)}
}

// Bool returns a bool member.
func Bool(key string, v bool) Member {
	m := Member{Key: key, kind: KindBool}
	if v {
		m.num = 1
	}
	return m
}

// Any returns a member holding v as it is: a nested M or *Object, a slice,
// an address. A map[string]any becomes an M, as with M.Put.
func Any(key string, v any) Member {
	if mm, ok := v.(map[string]any); ok {
		v = fromMap(mm)
	}
	return Member{Key: key, kind: KindAny, val: v}
}

// Kind reports where the value is kept, for encoders that write it without
// boxing it.
func (m *Member) Kind() Kind { return m.kind }

// Str is the value of a KindString member.
func (m *Member) Str() string { return m.str }

// Int64 is the value of a KindInt or KindInt64 member.
func (m *Member) Int64() int64 { return int64(m.num) }

// Uint64 is the value of a KindUint64 member.
func (m *Member) Uint64() uint64 { return m.num }

// Float64 is the value of a KindFloat64 member.
func (m *Member) Float64() float64 { return math.Float64frombits(m.num) }

// Bool is the value of a KindBool member.
func (m *Member) Bool() bool { return m.num != 0 }

// Any is the value of a KindAny member.
func (m *Member) Any() any { return m.val }

// Value returns the value with the Go type it was given (int, uint64, ...),
// as an M would hold it.
func (m *Member) Value() any {
	switch m.kind {
	case KindString:
		return m.str
	case KindInt:
		return int(int64(m.num))
	case KindInt64:
		return int64(m.num)
	case KindUint64:
		return m.num
	case KindFloat64:
		return math.Float64frombits(m.num)
	case KindBool:
		return m.num != 0
	}
	return m.val
}

// NewObject returns an Object of ms, which it keeps (callers pass a slice
// they no longer use, or the members inline). Members are expected in key
// order, which is checked; out of order they are sorted, and of duplicate
// keys the last wins, as with repeated assignments to a map.
func NewObject(ms ...Member) *Object { return &Object{ms: sorted(ms)} }

// sorted returns ms in key order without duplicate keys, in place.
func sorted(ms []Member) []Member {
	for i := 1; i < len(ms); i++ {
		if !ascending(ms[i-1].Key, ms[i].Key) {
			return normalizeMembers(ms)
		}
	}
	return ms
}

// ascending is a < b with the first bytes compared inline: neighbouring
// keys mostly differ there, which saves the runtime's comparison call on
// the check every built object goes through.
func ascending(a, b string) bool {
	if a != "" && b != "" && a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

func normalizeMembers(ms []Member) []Member {
	slices.SortStableFunc(ms, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
	out := ms[:0]
	for i := range ms {
		if i+1 < len(ms) && ms[i+1].Key == ms[i].Key {
			continue
		}
		out = append(out, ms[i])
	}
	clear(ms[len(out):])
	return out
}

// Builder allocates objects in blocks: an input that builds a dozen
// objects per event pays a few allocations per chunk of events instead of
// two per object, and with Reset none at all once warm, which at flow rates
// is a good share of the per-event cost and of the garbage collector's
// work.
type Builder struct {
	objs, objBlock []Object
	ms, block      []Member
	// Handed out since Reset, so that Reset can size the blocks for a
	// round like the last one.
	nObjs, nMembers int
	roots           []M // event roots, reused in order after Reset
	nRoots          int
}

// NewBuilder returns a Builder with room for about objects objects of
// members members in all; beyond that it allocates more, never fails.
func NewBuilder(objects, members int) *Builder {
	b := &Builder{objBlock: make([]Object, 0, objects), block: make([]Member, 0, members)}
	b.objs, b.ms = b.objBlock, b.block
	return b
}

// Reset makes the Builder's memory available again. Every Object it
// returned must be unreachable by then: an input calls it after Publish
// has returned for the events holding them (the pipeline retains nothing
// of an event's Fields past Publish, see Publisher).
func (b *Builder) Reset() {
	if b.nObjs > cap(b.objBlock) {
		b.objBlock = make([]Object, 0, b.nObjs)
	}
	if b.nMembers > cap(b.block) {
		b.block = make([]Member, 0, b.nMembers)
	}
	b.objs, b.ms = b.objBlock[:0], b.block[:0]
	b.nObjs, b.nMembers, b.nRoots = 0, 0, 0
}

// Root returns an empty map for an event's Fields with room for n keys:
// after Reset, the maps of the last round are emptied and handed out
// again.
func (b *Builder) Root(n int) M {
	if b.nRoots < len(b.roots) {
		m := b.roots[b.nRoots]
		b.nRoots++
		clear(m)
		return m
	}
	m := make(M, n)
	b.roots = append(b.roots, m)
	b.nRoots++
	return m
}

// Object returns an Object of ms (copied; ms may be reused), as NewObject
// would.
func (b *Builder) Object(ms ...Member) *Object {
	b.nObjs++
	b.nMembers += len(ms)
	if len(b.ms)+len(ms) > cap(b.ms) {
		// A new block rather than append's copy: earlier objects keep
		// pointing into the old one. Half the first size: the estimate
		// was close.
		b.ms = make([]Member, 0, max(cap(b.block)/2, len(ms)))
	}
	start := len(b.ms)
	b.ms = append(b.ms, ms...)
	// Capacity capped at the object's own members, so that growing it
	// (Put of a new key) reallocates instead of overwriting a neighbour.
	own := b.ms[start:len(b.ms):len(b.ms)]
	var o *Object
	if len(b.objs) < cap(b.objs) {
		b.objs = b.objs[:len(b.objs)+1]
		o = &b.objs[len(b.objs)-1]
	} else {
		o = new(Object)
	}
	o.ms = sorted(own)
	return o
}

// Len is the number of members.
func (o *Object) Len() int { return len(o.ms) }

// At returns the i-th member in key order, for encoders; callers must not
// change its key.
func (o *Object) At(i int) *Member { return &o.ms[i] }

// search returns the index of key, or where it would be inserted.
func (o *Object) search(key string) (int, bool) {
	ms := o.ms
	if key == "" {
		// The first byte tests below need one; "" sorts first.
		return 0, len(ms) > 0 && ms[0].Key == ""
	}
	c := key[0]
	if len(ms) <= 8 {
		// Short objects: a scan that mostly decides on the first byte
		// beats the bisection's extra comparisons.
		for i := range ms {
			k := ms[i].Key
			if k != "" && k[0] < c {
				continue
			}
			if k >= key {
				return i, k == key
			}
		}
		return len(ms), false
	}
	lo, hi := 0, len(ms)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if k := ms[h].Key; k != "" && k[0] != c {
			if k[0] < c {
				lo = h + 1
			} else {
				hi = h
			}
		} else if k < key {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo, lo < len(ms) && ms[lo].Key == key
}

// Get returns the value of key (one level, no dots).
func (o *Object) Get(key string) (any, bool) {
	i, ok := o.search(key)
	if !ok {
		return nil, false
	}
	return o.ms[i].Value(), true
}

// Put sets key (one level, no dots) to v, keeping the key order.
func (o *Object) Put(key string, v any) {
	m := Any(key, v)
	i, ok := o.search(key)
	if ok {
		o.ms[i] = m
		return
	}
	if len(o.ms) == cap(o.ms) {
		// Room for a few more, not append's doubling: objects are built
		// to size, and a processor adds a field or two.
		grown := make([]Member, len(o.ms), len(o.ms)+4)
		copy(grown, o.ms)
		o.ms = grown
	}
	o.ms = slices.Insert(o.ms, i, m)
}

// Delete removes key (one level, no dots) and reports whether it existed.
func (o *Object) Delete(key string) bool {
	i, ok := o.search(key)
	if ok {
		o.ms = slices.Delete(o.ms, i, i+1)
	}
	return ok
}

// Clone returns a deep copy of the nested objects, like M.Clone.
func (o *Object) Clone() *Object {
	ms := slices.Clone(o.ms)
	for i := range ms {
		if ms[i].kind == KindAny {
			ms[i].val = cloneValue(ms[i].val)
		}
	}
	return &Object{ms: ms}
}

// M returns the members as a map; nested objects are shared, not copied.
func (o *Object) M() M {
	out := make(M, len(o.ms))
	for i := range o.ms {
		out[o.ms[i].Key] = o.ms[i].Value()
	}
	return out
}

// MarshalJSON encodes the object for code that uses encoding/json; the
// outputs use output/codec, which writes the members in order unboxed.
func (o *Object) MarshalJSON() ([]byte, error) { return marshalJSON(o.M()) }

// marshalJSON leaves HTML characters unescaped: encoding/json escapes a
// Marshaler's output itself when its caller asked for that.
func marshalJSON(m M) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
