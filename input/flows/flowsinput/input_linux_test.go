package flowsinput

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type recorder struct {
	mu      sync.Mutex
	events  []pipeline.Event
	publish chan int
}

func (r *recorder) Publish(ctx context.Context, events ...pipeline.Event) error {
	r.mu.Lock()
	r.events = append(r.events, pipeline.CloneEvents(events)...)
	r.mu.Unlock()
	select {
	case r.publish <- len(events):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// collectOnce runs in, whose period is long enough for one collection,
// until that collection is published, and returns what was published.
func collectOnce(t *testing.T, in *flowsInput, m *pipeline.Metrics) *recorder {
	t.Helper()
	rec := &recorder{publish: make(chan int, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, rec) }()
	deadline := time.Now().Add(10 * time.Second)
	for m.Counter("input.flows.collections").Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rec
}

// newTestInput builds the input from YAML and points its collector at ns.
func newTestInput(t *testing.T, src string, ns *nstest.Netns, log *slog.Logger) *flowsInput {
	return newTestInputMetrics(t, src, ns, log, nil)
}

func newTestInputMetrics(t testing.TB, src string, ns *nstest.Netns, log *slog.Logger, m *pipeline.Metrics) *flowsInput {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	in, err := New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0"), input.Settings{Logger: log, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	fi := in.(*flowsInput)
	if !strings.Contains(src, "rollup:") {
		// The tests of flow events count them: without a rollup: key
		// the per-process rollups (rollup_linux_test.go) stay out.
		fi.roller = nil
	}
	if ns == nil {
		// The agent's own discovery (namespaces: all sees every one).
		return fi
	}
	nss := []flows.Namespace{namespaceOf(t, ns)}
	fi.opts.Namespaces = func() ([]flows.Namespace, error) { return nss, nil }
	return fi
}

func TestInputPublishesFilteredAndCapped(t *testing.T) {
	ns := nstest.New(t)
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5010")
	h.Do(t, "dial tcp 127.0.0.1:5010")
	h.Do(t, "accept")
	h2 := flowtest.Start(t, ns)
	h2.Do(t, "listen tcp 127.0.0.1:5020")
	h2.Do(t, "listen udp 127.0.0.1:5030")

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tests := []struct {
		name     string
		yaml     string
		want     int
		dropped  string
		overflow int64
	}{
		{"all of it", "period: 1h\n", 5, "", 0},
		{"tcp only", "period: 1h\nprotocols: [tcp]\n", 4, "", 0},
		{"ipv6 only", "period: 1h\nfamilies: [ipv6]\n", 0, "", 0},
		{"listening only", "period: 1h\nstates: [listening]\n", 3, "", 0},
		{"established only", "period: 1h\nstates: [established]\n", 2, "", 0},
		{"port 5010", "period: 1h\nports: {include: [5010]}\n", 3, "", 0},
		{"no loopback", "period: 1h\ninclude_loopback: false\n", 0, "", 0},
		{"capped", "period: 1h\nmax_flows: 2\n", 2, "dropped=3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			m := pipeline.NewMetrics()
			in := newTestInputMetrics(t, tt.yaml, ns, log, m)
			rec := collectOnce(t, in, m)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.events) != tt.want {
				t.Errorf("%d events, want %d", len(rec.events), tt.want)
			}
			for _, e := range rec.events {
				ds, _ := e.Fields.GetValue("event.dataset")
				if ds != Dataset || e.Series == "" || e.Timestamp.IsZero() {
					t.Errorf("event dataset %v series %q ts %v", ds, e.Series, e.Timestamp)
				}
			}
			if got := m.Counter("input.flows.dropped_over_max_flows").Load(); got != tt.overflow {
				t.Errorf("dropped_over_max_flows = %d, want %d", got, tt.overflow)
			}
			if got := m.Counter("input.flows.events").Load(); got != int64(tt.want) {
				t.Errorf("input.flows.events = %d, want %d", got, tt.want)
			}
			if tt.dropped != "" && strings.Count(logs.String(), tt.dropped) != 1 {
				t.Errorf("want one log line with %s, got:\n%s", tt.dropped, logs.String())
			}
		})
	}
}

func TestInputRunHonoursContextWhilePublishBlocks(t *testing.T) {
	ns := nstest.New(t)
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5040")
	in := newTestInput(t, "period: 1h\n", ns, slog.New(slog.DiscardHandler))
	rec := &recorder{publish: make(chan int)} // never read: Publish blocks
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, rec) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel while publishing")
	}
}

// TestInputChunksSurviveBuilderReuse: a collection of several publish
// chunks, each built in the memory of the chunk before once that was
// published (Builder.Reset). Every flow must reach the publisher once, as
// it was when published.
func TestInputChunksSurviveBuilderReuse(t *testing.T) {
	ns := nstest.New(t)
	const conns = 100 // 201 sockets: four chunks of publishChunk
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(exe)
	cmd.Env = append(os.Environ(), flowtest.Env+"=hold", "FLOWS_HOLD_CONNS="+strconv.Itoa(conns), "FLOWS_HOLD_ADDR=127.0.0.1:5000")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); !strings.HasPrefix(line, "ready") {
		t.Fatalf("holder: %q", line)
	}

	m := pipeline.NewMetrics()
	in := newTestInputMetrics(t, "period: 1h\nprotocols: [tcp]\n", ns, slog.New(slog.DiscardHandler), m)
	rec := collectOnce(t, in, m)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := 2*conns + 1; len(rec.events) != want {
		t.Fatalf("%d events, want %d", len(rec.events), want)
	}
	seen := map[string]int{}
	for _, e := range rec.events {
		lp, _ := e.Fields.GetValue("fleutan.flow.local.port")
		rp, _ := e.Fields.GetValue("fleutan.flow.remote.port")
		state, _ := e.Fields.GetString("fleutan.flow.state")
		seen[fmt.Sprint(lp, "-", rp)]++
		if state == "LISTEN" {
			continue
		}
		if lp != 5000 && rp != 5000 {
			t.Errorf("established flow %v-%v is not a connection of the :5000 listener", lp, rp)
		}
		// The event's parts must belong to one flow: ECS endpoints and the
		// host-centric view agree.
		sp, _ := e.Fields.GetValue("source.port")
		dp, _ := e.Fields.GetValue("destination.port")
		if !(sp == lp && dp == rp || sp == rp && dp == lp) {
			t.Errorf("source/destination %v/%v do not match local/remote %v/%v", sp, dp, lp, rp)
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("flow %s published %d times", k, n)
		}
	}
}

// TestInputEventDurationIsWindowAndLifetime runs the input on a real
// namespace: event.duration of a live flow is the time since the previous
// collection started (the period for the first), exactly; a final event's
// is the flow's lifetime since the collection that first saw it; the
// collection's own time is fleutan.collection.duration_us.
func TestInputEventDurationIsWindowAndLifetime(t *testing.T) {
	ns := nstest.New(t)
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5040")
	keep := flowtest.Start(t, ns)
	keep.Do(t, "listen tcp 127.0.0.1:5041")

	m := pipeline.NewMetrics()
	const period = 300 * time.Millisecond
	in := newTestInputMetrics(t, "period: 300ms\n", ns, slog.New(slog.DiscardHandler), m)
	rec := &recorder{publish: make(chan int, 1024)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, rec) }()
	waitCollections := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for m.Counter("input.flows.collections").Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d collections in 20s", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCollections(3)
	h.Do(t, "closelistener")
	waitCollections(m.Counter("input.flows.collections").Load() + 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var stamps []time.Time
	for _, e := range rec.events {
		if len(stamps) == 0 || !stamps[len(stamps)-1].Equal(e.Timestamp) {
			stamps = append(stamps, e.Timestamp)
		}
	}
	window := map[time.Time]time.Duration{stamps[0]: period}
	for i := 1; i < len(stamps); i++ {
		window[stamps[i]] = stamps[i].Sub(stamps[i-1])
	}
	finals := 0
	for _, e := range rec.events {
		port, _ := e.Fields.GetValue("fleutan.flow.local.port")
		final, _ := e.Fields.GetValue("fleutan.flow.final")
		d, _ := e.Fields.GetValue("event.duration")
		got := time.Duration(d.(int64))
		us, _ := e.Fields.GetValue("fleutan.collection.duration_us")
		if c, ok := us.(int64); !ok || c <= 0 || time.Duration(c)*time.Microsecond > window[e.Timestamp] {
			t.Errorf("port %v at %v: fleutan.collection.duration_us = %v, want above 0 and within the window", port, e.Timestamp, us)
		}
		if final != true {
			if got != window[e.Timestamp] {
				t.Errorf("port %v at %v: event.duration %v, want the window %v", port, e.Timestamp, got, window[e.Timestamp])
			}
			continue
		}
		finals++
		// First seen by the first collection, a little after its start.
		lifetime := e.Timestamp.Sub(stamps[0])
		if port != 5040 || got > lifetime || got < lifetime-100*time.Millisecond {
			t.Errorf("final event of port %v: event.duration %v, want the lifetime, at most %v", port, got, lifetime)
		}
	}
	if finals != 1 {
		t.Errorf("%d final events, want 1 (the closed listener)", finals)
	}
}

// TestInputPublishesLatestSnapshot: with the query API on (Settings.Latest)
// each collection leaves a copy of its snapshot there, which later
// collections do not change; without it nothing is stored.
func TestInputPublishesLatestSnapshot(t *testing.T) {
	ns := nstest.New(t)
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5050")
	in := newTestInput(t, "period: 1h\nstates: [listening]\n", ns, nil)
	if err := in.collect(context.Background(), &recorder{publish: make(chan int, 8)}); err != nil {
		t.Fatal(err)
	}
	if in.latest != nil {
		t.Fatal("a Latest without the API")
	}

	latest := input.NewLatest()
	in = newTestInput(t, "period: 1h\nstates: [listening]\n", ns, nil)
	in.latest = latest
	for range 2 {
		if err := in.collect(context.Background(), &recorder{publish: make(chan int, 8)}); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := latest.Get("flows")
	if !ok {
		t.Fatal("no flows collection in Latest")
	}
	snap, ok := got.Snapshot.(flows.Snapshot)
	if !ok || !got.Time.Equal(snap.Time) || len(snap.Flows) != 1 || snap.Flows[0].Local.String() != "127.0.0.1:5050" ||
		snap.Flows[0].Process == nil || snap.Flows[0].Process.PID != h.PID() {
		t.Fatalf("latest %v %+v, want the listener of pid %d", got.Time, got.Snapshot, h.PID())
	}
	// The stored copy is not the collector's buffer: two more
	// collections, with another listener in place of this one, reuse
	// both generations of it.
	flowtest.Start(t, ns).Do(t, "listen tcp 127.0.0.1:5051")
	h.Stop()
	for range 2 {
		if err := in.collect(context.Background(), &recorder{publish: make(chan int, 8)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(snap.Flows) != 1 || snap.Flows[0].Local.String() != "127.0.0.1:5050" {
		t.Errorf("an earlier Latest snapshot changed: %+v", snap.Flows)
	}
	if got, _ := latest.Get("flows"); len(got.Snapshot.(flows.Snapshot).Flows) != 1 || got.Snapshot.(flows.Snapshot).Flows[0].Local.Port() != 5051 {
		t.Errorf("latest has %+v, want the listener on 5051", got.Snapshot.(flows.Snapshot).Flows)
	}
}
