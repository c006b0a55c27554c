package benchmark

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func newInput(t *testing.T, src string, m *pipeline.Metrics) (input.Input, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0"), input.Settings{Metrics: m})
}

func TestNewRejectsBadOptionsWithPositions(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"unknown key", "cuont: 5\n", []string{"test.yml:1:1", "cuont"}},
		{"neither count nor eps", "flows: 10\n", []string{"count: set count, eps or both"}},
		{"negative count", "count: -1\n", []string{"test.yml:1:8", "count: must not be negative"}},
		{"negative eps", "count: 1\neps: -5\n", []string{"test.yml:2:6", "eps: must not be negative"}},
		{"no flows", "count: 1\nflows: 0\n", []string{"test.yml:2:8", "flows: must be between 1 and 1000000"}},
		{"string count", "count: many\n", []string{"test.yml:1:8", `"many" is not an integer`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newInput(t, tc.src, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

type collector struct {
	mu     sync.Mutex
	events []pipeline.Event
}

func (c *collector) Publish(_ context.Context, evs ...pipeline.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range evs {
		// The input reuses the events' objects after Publish (as the
		// pipeline allows): keep what the test reads.
		e.Fields = pipeline.M{"json": string(codec.AppendFields(nil, e.Fields))}
		c.events = append(c.events, e)
	}
	return nil
}

// TestCountEventsEachWithItsOwnIdentity: count events, in rounds of one
// event per flow, each with a (timestamp, series) of its own, so each gets
// its own deterministic id; the counters say what was published.
func TestCountEventsEachWithItsOwnIdentity(t *testing.T) {
	m := pipeline.NewMetrics()
	in, err := newInput(t, "count: 2500\nflows: 1000\n", m)
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	if err := in.Run(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.events) != 2500 {
		t.Fatalf("%d events, want 2500", len(c.events))
	}
	seen := map[string]bool{}
	series := map[string]bool{}
	for i, e := range c.events {
		k := e.Timestamp.Format(time.RFC3339Nano) + " " + e.Series
		if seen[k] {
			t.Fatalf("event %d repeats timestamp and series %s", i, k)
		}
		seen[k] = true
		series[e.Series] = true
		js := e.Fields["json"].(string)
		for _, want := range []string{`"dataset":"fleutan.benchmark"`, `"community_id":"1:`, `"process":{`, `"tcp":{`, `"delta":{`, `"transport":"tcp"`} {
			if !strings.Contains(js, want) {
				t.Fatalf("event %d lacks %s: %s", i, want, js)
			}
		}
	}
	if len(series) != 1000 {
		t.Errorf("%d series, want 1000", len(series))
	}
	tree := m.Tree()
	if v, _ := tree.GetValue("input.benchmark.events"); v != int64(2500) {
		t.Errorf("input.benchmark.events = %v", v)
	}
	if v, _ := tree.GetValue("input.benchmark.collections"); v != int64(3) {
		t.Errorf("input.benchmark.collections = %v, want 3 rounds", v)
	}
}

// TestEPSPacesThePublishing: 600 events at 2000/s cannot be published in
// less than 0.3 s (a lower bound only: a loaded machine may take longer).
func TestEPSPacesThePublishing(t *testing.T) {
	in, err := newInput(t, "count: 600\neps: 2000\nflows: 50\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	t0 := time.Now()
	if err := in.Run(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took < 290*time.Millisecond {
		t.Errorf("600 events at eps 2000 published in %s", took)
	}
	if len(c.events) != 600 {
		t.Errorf("%d events", len(c.events))
	}
}

// TestEPSWithoutCountStopsWithItsContext: an unbounded input ends, with
// nil, when the agent stops it.
func TestEPSWithoutCountStopsWithItsContext(t *testing.T) {
	in, err := newInput(t, "eps: 1000\nflows: 10\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var c collector
	if err := in.Run(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.events) == 0 || len(c.events) > 400 {
		t.Errorf("%d events in 0.3 s at eps 1000", len(c.events))
	}
}
