package elasticsearch

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestTimeSeriesStreamStoresEachEventOnce ships to the time series data
// stream that setup.template.index_mode: time_series (the default) makes
// of fleutan.flows, beside the standard one of fleutan.paths, in one
// batch. The stream refuses the output's _id; the output learns it,
// sends those events without one, and every event is stored once. A
// replay of the same events (a retry, or the disk queue after a restart,
// by a client that learned nothing) is all duplicates (409: the stream's
// _id comes from the dimensions and @timestamp), never a second document.
// A flow's final event and the event of the new flow on the same
// addresses, at one @timestamp, are two documents because their
// fleutan.flow.id differ; without it they would be one.
func TestTimeSeriesStreamStoresEachEventOnce(t *testing.T) {
	url := estest.URL(t)
	c := testConfig(url)
	c.Namespace = uniqueName(t)
	if c.Template.IndexMode != IndexModeTimeSeries {
		t.Fatalf("default index_mode %q, want time_series", c.Template.IndexMode)
	}
	db := estest.NewClient(t, url)
	flowsStream := "metrics-fleutan.flows-" + c.Namespace
	pathsStream := "metrics-fleutan.paths-" + c.Namespace

	// Three collections of 100 flows, all events of a collection at one
	// @timestamp, and 10 paths events.
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var events []pipeline.Event
	for col := range 3 {
		ts := base.Add(time.Duration(col) * time.Second)
		for f := range 100 {
			e := flowEvent(f, ts)
			e.ID = fmt.Sprintf("flow-%d-%d", col, f)
			e.Fields.Put("fleutan.flow.id", fmt.Sprintf("%016x", f))
			events = append(events, e)
		}
	}
	// A final event and a new flow's event on the same addresses.
	final, again := flowEvent(7, base.Add(3*time.Second)), flowEvent(7, base.Add(3*time.Second))
	final.ID, again.ID = "final-7", "again-7"
	final.Fields.Put("fleutan.flow.id", "00000000000000f7")
	final.Fields.Put("fleutan.flow.final", true)
	again.Fields.Put("fleutan.flow.id", "00000000000001f7")
	again.Fields.Put("fleutan.flow.final", false)
	events = append(events, final, again)
	for i := range 10 {
		events = append(events, pathEvent(i, base.Add(time.Duration(i)*time.Millisecond)))
	}
	n := len(events)
	clone := func() []pipeline.Event { return pipeline.CloneEvents(events) }

	cl := newTestClient(t, c)
	b := publish(t, cl, clone())
	if got := statuses(b); got[pipeline.Acked] != n {
		t.Fatalf("first publish: %v, want %d acked", got, n)
	}
	if got := cl.Stats(); got != (Stats{Acked: int64(n)}) {
		t.Fatalf("first publish: stats %+v, want %d acked and nothing else", got, n)
	}
	if got := count(db, flowsStream); got != 302 {
		t.Fatalf("%s holds %d documents, want 302", flowsStream, got)
	}
	// The standard stream keeps the output's ids; the time series one has
	// its own.
	ids := docIDs(db, pathsStream)
	for _, e := range events[302:] {
		if ids[e.ID] != 1 {
			t.Fatalf("%s: event %s stored %d times under its id", pathsStream, e.ID, ids[e.ID])
		}
	}
	for id := range docIDs(db, flowsStream) {
		if len(id) == len("flow-0-0") || id[:4] == "flow" {
			t.Fatalf("%s stored an event under the output's id %s", flowsStream, id)
		}
	}

	for _, tc := range []struct {
		name string
		cl   *Client
	}{{"retry by the same client", cl}, {"replay by a new client", newTestClient(t, c)}} {
		before := tc.cl.Stats()
		b := publish(t, tc.cl, clone())
		if got := statuses(b); got[pipeline.Acked] != n {
			t.Fatalf("%s: %v, want %d acked", tc.name, got, n)
		}
		got := tc.cl.Stats()
		if got.Duplicates-before.Duplicates != int64(n) || got.Acked != before.Acked || got.Dropped != 0 || got.Retried != before.Retried {
			t.Fatalf("%s: stats %+v (before %+v), want %d more duplicates and nothing stored", tc.name, got, before, n)
		}
	}
	if got, want := count(db, flowsStream), 302; got != want {
		t.Fatalf("after the replays %s holds %d documents, want %d", flowsStream, got, want)
	}
	if got := count(db, pathsStream); got != 10 {
		t.Fatalf("after the replays %s holds %d documents, want 10", pathsStream, got)
	}

	// The trap fleutan.flow.id avoids: two different events with the same
	// dimensions and @timestamp are one document, the second a 409.
	x, y := flowEvent(9, base.Add(5*time.Second)), flowEvent(9, base.Add(5*time.Second))
	x.ID, y.ID = "x", "y"
	y.Fields.Put("fleutan.flow.delta.bytes_out", uint64(1))
	before := cl.Stats()
	publish(t, cl, []pipeline.Event{x, y})
	if got := cl.Stats(); got.Acked-before.Acked != 1 || got.Duplicates-before.Duplicates != 1 {
		t.Fatalf("two events with equal dimensions: stats %+v (before %+v), want one stored and one duplicate", got, before)
	}
}

// pathEvent is a fleutan.paths event (a standard data stream).
func pathEvent(i int, ts time.Time) pipeline.Event {
	return pipeline.Event{
		Timestamp: ts,
		ID:        fmt.Sprintf("path-%03d", i),
		Fields: pipeline.M{
			"event": pipeline.M{"dataset": "fleutan.paths", "module": "fleutan", "kind": "metric"},
			"agent": pipeline.M{"type": "fleutanbeat", "id": "5d1f3c1e-agent", "name": "bench-host"},
			"fleutan": pipeline.M{"paths": pipeline.M{
				"type": "path", "peer": pipeline.M{"ip": "10.0.0.2"}, "hop_count": 3 + i%2,
			}},
		},
	}
}
