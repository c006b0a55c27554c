package pipeline

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
)

func tcpObject() *Object {
	return NewObject(
		Uint64("bytes_acked", 10),
		String("congestion", "cubic"),
		Float64("bdp_bytes", 1.5), // out of order: NewObject sorts
		Int("port", 443),
		Int64("pid", -1),
		Bool("final", true),
		Any("args", []string{"a"}),
		Uint64("port", 8080), // a duplicate: the last one wins
	)
}

func TestNewObjectSortsAndKeepsLastDuplicate(t *testing.T) {
	o := tcpObject()
	var keys []string
	for i := range o.Len() {
		keys = append(keys, o.At(i).Key)
	}
	want := []string{"args", "bdp_bytes", "bytes_acked", "congestion", "final", "pid", "port"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	if v, _ := o.Get("port"); v != uint64(8080) {
		t.Errorf("port = %#v, want the last duplicate uint64(8080)", v)
	}
}

// TestObjectValuesKeepTheirGoTypes: processors and conditions see the
// values an M would hold.
func TestObjectValuesKeepTheirGoTypes(t *testing.T) {
	want := M{
		"args": []string{"a"}, "bdp_bytes": 1.5, "bytes_acked": uint64(10), "congestion": "cubic",
		"final": true, "pid": int64(-1), "port": uint64(8080),
	}
	if got := tcpObject().M(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if got := (M{"o": tcpObject()}).Unshared(); !reflect.DeepEqual(got, M{"o": want}) {
		t.Errorf("Unshared: got %#v", got)
	}
}

// TestMPathsThroughObject: dotted get, put and delete walk into objects and
// write them in place, whichever spelling each level has.
func TestMPathsThroughObject(t *testing.T) {
	host := NewShared(M{"name": "h"})
	newEvent := func() M {
		return M{"fleutan": NewObject(Any("flow", NewObject(
			Any("tcp", tcpObject()),
			Any("local", M{"ip": "10.0.0.1"}),
			Any("host", host),
			String("state", "ESTABLISHED"),
		)))}
	}
	tests := []struct {
		name string
		run  func(m M) any
		want any
		// after: a path and the value it must then hold (nil: absent)
		path string
		then any
	}{
		{"get typed leaf", func(m M) any { v, _ := m.GetValue("fleutan.flow.tcp.bytes_acked"); return v }, uint64(10), "", nil},
		{"get through M in Object", func(m M) any { v, _ := m.GetValue("fleutan.flow.local.ip"); return v }, "10.0.0.1", "", nil},
		{"get through Shared in Object", func(m M) any { v, _ := m.GetValue("fleutan.flow.host.name"); return v }, "h", "", nil},
		{"get missing", func(m M) any { _, ok := m.GetValue("fleutan.flow.tcp.nope"); return ok }, false, "", nil},
		{"get string unboxed", func(m M) any { s, _ := m.GetString("fleutan.flow.tcp.congestion"); return s }, "cubic", "", nil},
		{"get string of M", func(m M) any { s, _ := m.GetString("fleutan.flow.local.ip"); return s }, "10.0.0.1", "", nil},
		{"get string of number", func(m M) any { _, ok := m.GetString("fleutan.flow.tcp.bytes_acked"); return ok }, false, "", nil},
		{"get string missing", func(m M) any { _, ok := m.GetString("fleutan.nope.x"); return ok }, false, "", nil},
		{"has key", func(m M) any { return m.HasKey("fleutan.flow.tcp.final") && !m.HasKey("fleutan.flow.tcp.x") }, true, "", nil},
		{"get through scalar", func(m M) any { _, ok := m.GetValue("fleutan.flow.state.x"); return ok }, false, "", nil},
		{"put replaces typed leaf", func(m M) any { m.Put("fleutan.flow.tcp.cwnd", 7); return nil }, nil, "fleutan.flow.tcp.cwnd", 7},
		{"put inserts in order", func(m M) any {
			m.Put("fleutan.flow.tcp.aaa", "first")
			o, _ := m.GetValue("fleutan.flow.tcp")
			return o.(*Object).At(0).Key
		}, "aaa", "fleutan.flow.tcp.aaa", "first"},
		{"put creates below an Object", func(m M) any { m.Put("fleutan.flow.delta.bytes", 3); return nil }, nil, "fleutan.flow.delta.bytes", 3},
		{"put replaces scalar in the way", func(m M) any { m.Put("fleutan.flow.state.x", 1); return nil }, nil, "fleutan.flow.state.x", 1},
		{"delete typed leaf", func(m M) any { return m.Delete("fleutan.flow.tcp.congestion") }, true, "fleutan.flow.tcp.congestion", nil},
		{"delete missing", func(m M) any { return m.Delete("fleutan.flow.tcp.nope") }, false, "", nil},
		{"delete object", func(m M) any { return m.Delete("fleutan.flow.tcp") }, true, "fleutan.flow.tcp.bytes_acked", nil},
		{"write into Shared copies it", func(m M) any { m.Put("fleutan.flow.host.name", "other"); return nil }, nil, "fleutan.flow.host.name", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newEvent()
			if got := tt.run(m); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if tt.path != "" {
				v, ok := m.GetValue(tt.path)
				if tt.then == nil && ok {
					t.Errorf("%s still holds %#v", tt.path, v)
				}
				if tt.then != nil && v != tt.then {
					t.Errorf("%s = %#v, want %#v", tt.path, v, tt.then)
				}
			}
			if v, _ := host.Object().GetValue("name"); v != "h" {
				t.Errorf("the shared host object was changed to %v", v)
			}
		})
	}
}

func TestObjectCloneIsDeep(t *testing.T) {
	a := M{"o": NewObject(Any("in", NewObject(Int("n", 1))), Any("m", M{"k": "v"}))}
	b := a.Clone()
	b.Put("o.in.n", 2)
	b.Put("o.m.k", "w")
	b.Put("o.new", true)
	if got := a.Unshared(); !reflect.DeepEqual(got, M{"o": M{"in": M{"n": 1}, "m": M{"k": "v"}}}) {
		t.Errorf("writing the clone changed the original: %v", got)
	}
}

// TestObjectAsMapIsACopy: code that needs a map may read an Object as one;
// MutableObject turns it into an M in the event so writes land.
func TestObjectAsMapIsACopy(t *testing.T) {
	m := M{"o": NewObject(Int("n", 1))}
	view, ok := AsObject(m["o"])
	if !ok || view["n"] != 1 {
		t.Fatalf("AsObject = %v, %v", view, ok)
	}
	w, ok := m.MutableObject("o")
	if !ok {
		t.Fatal("MutableObject: not an object")
	}
	w["n"] = 2
	if v, _ := m.GetValue("o.n"); v != 2 {
		t.Errorf("write through MutableObject lost: o.n = %v", v)
	}
}

func TestObjectFlattenAndJSON(t *testing.T) {
	m := M{"o": NewObject(Int("n", 1), Any("in", NewObject(String("s", "x"))))}
	got := map[string]any{}
	m.Flatten(func(k string, v any) { got[k] = v })
	if want := map[string]any{"o.n": 1, "o.in.s": "x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Flatten: %v, want %v", got, want)
	}
	b, err := json.Marshal(M{"o": m["o"], "h": NewShared(M{"a": 1})})
	if err != nil || string(b) != `{"h":{"a":1},"o":{"in":{"s":"x"},"n":1}}` {
		t.Errorf("json: %s, %v", b, err)
	}
}

// TestBuilderObjectsAreIndependent: objects carved from one block grow and
// shrink without touching their neighbours, and a builder that runs out of
// room keeps working.
func TestBuilderObjectsAreIndependent(t *testing.T) {
	b := NewBuilder(2, 3)
	a := b.Object(Int("a1", 1), Int("a2", 2))
	c := b.Object(Int("c1", 3)) // fills the block
	d := b.Object(Int("d2", 5), Int("d1", 4), Int("d1", 6))
	a.Put("a3", 9) // must not overwrite c's member
	c.Delete("c1")
	c.Put("c0", 0)
	got := M{"a": a, "c": c, "d": d}.Unshared()
	want := M{"a": M{"a1": 1, "a2": 2, "a3": 9}, "c": M{"c0": 0}, "d": M{"d1": 6, "d2": 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestBuilderResetReusesMemory: after Reset the next round's objects and
// roots take the last round's memory, sized for the last round even when it
// overflowed the first block.
func TestBuilderResetReusesMemory(t *testing.T) {
	b := NewBuilder(1, 2)
	round := func(tag int) (M, *Object) {
		root := b.Root(2)
		o := b.Object(Int("a", tag), Int("b", tag), Int("c", tag)) // overflows the 2-member block
		p := b.Object(Int("d", tag))
		root["o"], root["p"] = o, p
		return root, o
	}
	root1, _ := round(1)
	b.Reset()
	root2, o2 := round(2)
	if reflect.ValueOf(root1).Pointer() != reflect.ValueOf(root2).Pointer() {
		t.Error("Root after Reset is a new map")
	}
	b.Reset()
	_, o3 := round(3)
	if &o2.ms[0] != &o3.ms[0] {
		t.Error("after a round that overflowed, Reset did not size the block for it")
	}
	if got := (M{"o": o3}).Unshared(); !reflect.DeepEqual(got, M{"o": M{"a": 3, "b": 3, "c": 3}}) {
		t.Errorf("round 3: %v", got)
	}
	if len(b.Root(1)) != 0 {
		t.Error("a new root is not empty")
	}
}

// TestObjectSearchMatchesSortSearch: the first-byte shortcuts of search
// agree with sort.SearchStrings on short (scanned) and long (bisected)
// objects, with empty keys and shared prefixes.
func TestObjectSearchMatchesSortSearch(t *testing.T) {
	pool := []string{"", "a", "ab", "abc", "b", "bytes", "bytes_acked", "bytes_in", "c", "cwnd", "d", "delta", "z", "zz", "\xff"}
	probes := append([]string{"0", "aa", "bz", "bytes_", "bytes_z", "e", "\xff\xff"}, pool...)
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		var keys []string
		for _, k := range pool {
			if r.IntN(3) > 0 {
				keys = append(keys, k)
			}
		}
		ms := make([]Member, len(keys))
		for i, k := range keys {
			ms[i] = Int(k, i)
		}
		o := NewObject(ms...)
		for _, p := range probes {
			want := sort.SearchStrings(keys, p)
			got, found := o.search(p)
			if got != want || found != (want < len(keys) && keys[want] == p) {
				t.Fatalf("keys %q: search(%q) = %d, %v; want %d", keys, p, got, found, want)
			}
		}
	}
}
