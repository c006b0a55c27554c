package elasticsearch

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func testSettings() output.Settings {
	return output.Settings{Logger: slog.New(slog.DiscardHandler), Beat: "fleutanbeat", Version: "test"}
}

var wantFlowTypes = map[string]string{
	"@timestamp":                   "date",
	"source.ip":                    "ip",
	"source.port":                  "long",
	"destination.ip":               "ip",
	"host.ip":                      "ip",
	"network.bytes":                "long",
	"network.transport":            "keyword",
	"event.dataset":                "keyword",
	"data_stream.namespace":        "keyword",
	"fleutan.flow.local.ip":        "ip",
	"fleutan.flow.final":           "boolean",
	"fleutan.flow.tcp.rtt_us":      "long",
	"fleutan.flow.tcp.congestion":  "keyword",
	"fleutan.flow.delta.bytes_out": "long",
	"process.args":                 "keyword",
}

func fieldNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRealBulkStoresEventsOnceWithMappings ships flows in both modes and
// replays them: the replay is all 409s, counted as duplicates, and the
// document count does not change.
func TestRealBulkStoresEventsOnceWithMappings(t *testing.T) {
	url := estest.URL(t)
	ns := uniqueName(t)
	cases := []struct {
		name   string
		mode   string
		index  string
		target string // what to count
	}{
		{name: "data_stream", mode: ModeDataStream, target: "metrics-fleutan.flows-" + ns},
		{name: "index", mode: ModeIndex, index: "fleutan-" + ns + "-%{[event.dataset]}-%{+yyyy.MM.dd}", target: "fleutan-" + ns + "-fleutan.flows-*"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(url)
			c.Mode, c.Namespace = tc.mode, ns
			if tc.index != "" {
				c.Index = tc.index
			}
			cl := newTestClient(t, c)
			ts := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			b1 := publish(t, cl, flowEvents(0, 1600, ts))
			b2 := publish(t, cl, flowEvents(1600, 400, ts))
			if got := statuses(b1)[pipeline.Acked] + statuses(b2)[pipeline.Acked]; got != 2000 {
				t.Fatalf("acked %d events, want 2000 (%v %v)", got, statuses(b1), statuses(b2))
			}
			db := estest.NewClient(t, url)
			if n := count(db, tc.target); n != 2000 {
				t.Fatalf("%s holds %d documents, want 2000", tc.target, n)
			}
			// A replay (a retried batch, a disk queue read twice) must not
			// add documents.
			b3 := publish(t, cl, flowEvents(1500, 500, ts))
			if got := statuses(b3)[pipeline.Acked]; got != 500 {
				t.Fatalf("replay acked %d, want 500", got)
			}
			if n := count(db, tc.target); n != 2000 {
				t.Fatalf("after replay %s holds %d documents, want 2000", tc.target, n)
			}
			want := Stats{Acked: 2000, Duplicates: 500}
			if got := cl.Stats(); got != want {
				t.Fatalf("stats %+v, want %+v", got, want)
			}
			got := db.FieldTypes(tc.target, fieldNames(wantFlowTypes)...)
			for f, typ := range wantFlowTypes {
				if got[f] != typ {
					t.Errorf("field %s mapped as %q, want %q", f, got[f], typ)
				}
			}
			if tc.mode == ModeDataStream {
				var r struct {
					Hits struct {
						Hits []struct {
							Index string `json:"_index"`
						} `json:"hits"`
					} `json:"hits"`
				}
				db.JSON("POST", "/"+tc.target+"/_search", map[string]any{"size": 1}, &r)
				if len(r.Hits.Hits) != 1 || !strings.HasPrefix(r.Hits.Hits[0].Index, ".ds-"+tc.target+"-") {
					t.Fatalf("documents are not in a data stream backing index: %+v", r.Hits.Hits)
				}
			}
		})
	}
}

// TestRealMappingConflictFollowsPolicy sends one event whose value cannot
// be indexed (a string in a long field) among good ones.
func TestRealMappingConflictFollowsPolicy(t *testing.T) {
	url := estest.URL(t)
	ns := uniqueName(t)
	bad := func(events []pipeline.Event) []pipeline.Event {
		events[3].Fields.Put("fleutan.flow.tcp.rtt_us", "not-a-number")
		return events
	}
	t.Run("drop", func(t *testing.T) {
		c := testConfig(url)
		c.Namespace = ns + "drop"
		cl := newTestClient(t, c)
		b := publish(t, cl, bad(flowEvents(0, 10, time.Now())))
		st, reason := b.Status(3)
		if st != pipeline.Dropped || !strings.Contains(reason, "document_parsing_exception") {
			t.Fatalf("bad event: status %v reason %q, want dropped with the error type", st, reason)
		}
		if got, want := cl.Stats(), (Stats{Acked: 9, Dropped: 1}); got != want {
			t.Fatalf("stats %+v, want %+v", got, want)
		}
		if n := count(estest.NewClient(t, url), "metrics-fleutan.flows-"+c.Namespace); n != 9 {
			t.Fatalf("stored %d, want 9", n)
		}
	})
	t.Run("dead_letter_index", func(t *testing.T) {
		c := testConfig(url)
		c.Namespace = ns + "dlq"
		c.NonIndexablePolicy = NonIndexablePolicy{Action: PolicyDeadLetterIndex, Index: "fleutan-dlq-" + ns}
		cl := newTestClient(t, c)
		events := bad(flowEvents(0, 10, time.Now()))
		b := publish(t, cl, events)
		if got := statuses(b)[pipeline.Acked]; got != 10 {
			t.Fatalf("acked %d, want 10 (9 stored, 1 dead-lettered)", got)
		}
		if got, want := cl.Stats(), (Stats{Acked: 9, DeadLettered: 1}); got != want {
			t.Fatalf("stats %+v, want %+v", got, want)
		}
		db := estest.NewClient(t, url)
		var r struct {
			Hits struct {
				Hits []struct {
					ID     string         `json:"_id"`
					Source map[string]any `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		db.JSON("POST", "/"+c.NonIndexablePolicy.Index+"/_refresh", nil, nil)
		db.JSON("POST", "/"+c.NonIndexablePolicy.Index+"/_search", map[string]any{}, &r)
		if len(r.Hits.Hits) != 1 || r.Hits.Hits[0].ID != "flow-0000003" {
			t.Fatalf("dead-letter index holds %+v, want the one bad event", r.Hits.Hits)
		}
		msg, _ := r.Hits.Hits[0].Source["message"].(string)
		if !strings.Contains(msg, `"rtt_us":"not-a-number"`) {
			t.Fatalf("dead-letter message lacks the original document: %q", msg)
		}
		// Sending the same bad event again is a duplicate in the
		// dead-letter index too, not a second copy.
		publish(t, cl, bad(flowEvents(0, 10, time.Now())))
		if n := count(db, c.NonIndexablePolicy.Index); n != 1 {
			t.Fatalf("dead-letter index holds %d after a replay, want 1", n)
		}
	})
}

// TestRealSetupIsIdempotentAndTestOutputReportsVersion runs Setup twice and
// reads back the index templates.
func TestRealSetupIsIdempotentAndTestOutputReportsVersion(t *testing.T) {
	url := estest.URL(t)
	c := testConfig(url)
	for range 2 {
		if err := Setup(context.Background(), c, testSettings()); err != nil {
			t.Fatalf("Setup: %v", err)
		}
	}
	db := estest.NewClient(t, url)
	var r struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				Priority   int            `json:"priority"`
				DataStream map[string]any `json:"data_stream"`
				ComposedOf []string       `json:"composed_of"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	db.JSON("GET", "/_index_template/metrics-fleutan.*", nil, &r)
	if len(r.IndexTemplates) != len(AllDatasets()) {
		t.Fatalf("found %d index templates, want %d", len(r.IndexTemplates), len(AllDatasets()))
	}
	for _, it := range r.IndexTemplates {
		if it.IndexTemplate.Priority != 150 || it.IndexTemplate.DataStream == nil || len(it.IndexTemplate.ComposedOf) != 2 {
			t.Errorf("template %s: %+v", it.Name, it.IndexTemplate)
		}
	}
	var out strings.Builder
	if err := TestOutput(context.Background(), c, &out); err != nil {
		t.Fatalf("TestOutput: %v\n%s", err, out.String())
	}
	if v := estest.Version(t); !strings.Contains(out.String(), "version: "+v) {
		t.Fatalf("TestOutput did not report version %s:\n%s", v, out.String())
	}
}
