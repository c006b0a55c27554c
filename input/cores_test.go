package input

import (
	"testing"
	"time"
)

func TestProcessCores(t *testing.T) {
	var none *ProcessCores
	if _, ok := none.Get(ProcessKey{1, 1}, time.Now()); ok {
		t.Error("a nil store holds something")
	}
	none.Set(time.Now(), time.Second, nil) // no panic

	c := NewProcessCores()
	t0 := time.Unix(1_700_000_000, 0)
	if _, ok := c.Get(ProcessKey{1, 1}, t0); ok {
		t.Error("an empty store holds something")
	}
	use := CoreUse{Pct: 0.5, DominantCore: 3, Spread: 1.2, Cores: []CoreShare{{1, 0.125}, {3, 0.375}}}
	c.Set(t0, 10*time.Second, map[ProcessKey]CoreUse{{42, 7}: use})
	for _, tt := range []struct {
		name string
		k    ProcessKey
		now  time.Time
		ok   bool
	}{
		{"measured", ProcessKey{42, 7}, t0.Add(5 * time.Second), true},
		{"two periods later", ProcessKey{42, 7}, t0.Add(20 * time.Second), true},
		{"stale", ProcessKey{42, 7}, t0.Add(20*time.Second + 1), false},
		{"pid reused", ProcessKey{42, 8}, t0, false},
		{"not measured", ProcessKey{43, 7}, t0, false},
	} {
		u, ok := c.Get(tt.k, tt.now)
		if ok != tt.ok || (ok && u.DominantCore != 3) {
			t.Errorf("%s: %+v, %v; want ok %v", tt.name, u, ok, tt.ok)
		}
	}
}
