package input

import (
	"testing"
	"time"
)

func TestLatestKeepsTheCollectionBefore(t *testing.T) {
	l := NewLatest()
	if _, ok := l.Get("flows"); ok {
		t.Fatal("Get before any Set reports a collection")
	}
	if _, _, ok := l.Pair("flows"); ok {
		t.Fatal("Pair before any Set reports a collection")
	}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		set            Collection
		wantPrev, want any
	}{
		{Collection{Time: t0, Snapshot: 1}, nil, 1},
		{Collection{Time: t0.Add(time.Second), Snapshot: 2}, 1, 2},
		{Collection{Time: t0.Add(2 * time.Second), Snapshot: 3}, 2, 3},
	}
	for i, st := range steps {
		l.Set("flows", st.set)
		prev, cur, ok := l.Pair("flows")
		if !ok || prev.Snapshot != st.wantPrev || cur.Snapshot != st.want || !cur.Time.Equal(st.set.Time) {
			t.Errorf("step %d: Pair = %v, %v, %v; want prev %v, cur %v", i, prev, cur, ok, st.wantPrev, st.want)
		}
		if c, ok := l.Get("flows"); !ok || c.Snapshot != st.want {
			t.Errorf("step %d: Get = %v, %v; want %v", i, c, ok, st.want)
		}
	}
	if _, ok := l.Get("cpu"); ok {
		t.Error("one type's collections show under another")
	}
	var nl *Latest
	nl.Set("flows", steps[0].set) // a nil Latest (API off) ignores Set
	if _, _, ok := nl.Pair("flows"); ok {
		t.Error("nil Latest reports a collection")
	}
}
