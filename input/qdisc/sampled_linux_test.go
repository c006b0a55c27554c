package qdisc

import (
	"context"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
)

func TestMain(m *testing.M) { qdisctest.Main(m) }

// Sample is a qdisc of a collection with its delta, as the adapter reads
// them.
type Sample struct {
	Qdisc
	HasDelta bool
	Delta    Counters
	Reset    bool
	Elapsed  time.Duration
}

// testCollector is a collector with its previous snapshot, for Diff.
type testCollector struct {
	*Collector
	prev Snapshot
}

// newTestCollector collects the given namespaces only; it is closed
// when the test ends.
func newTestCollector(t testing.TB, o Options, nss func() ([]flows.Namespace, error)) *testCollector {
	t.Helper()
	o.Namespaces = nss
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &testCollector{Collector: c}
}

// collectOnce collects and diffs against the previous collection.
func collectOnce(t *testing.T, c *testCollector) []Sample {
	t.Helper()
	snap, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ds := Diff(c.prev, snap)
	c.prev = snap
	s := make([]Sample, len(snap.Qdiscs))
	for i := range s {
		d := ds[i]
		s[i] = Sample{Qdisc: snap.Qdiscs[i], HasDelta: d.OK, Delta: d.Delta, Reset: d.Reset, Elapsed: d.Elapsed}
		// Unsigned counters cannot go negative; a wrapped subtraction
		// would show as an absurd value instead.
		if s[i].Delta.Bytes > 1<<40 || s[i].Delta.Packets > 1<<40 {
			t.Fatalf("%s %s %s: delta %+v", s[i].Device.Name, s[i].Scope, FormatHandle(s[i].Handle), s[i].Delta)
		}
	}
	return s
}

func findSample(samples []Sample, scope Scope, dev string, match func(*Sample) bool) *Sample {
	for i := range samples {
		s := &samples[i]
		if s.Scope == scope && s.Device.Name == dev && match(s) {
			return s
		}
	}
	return nil
}
