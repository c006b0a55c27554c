package opensearch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/output/opensearch/ostest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func testSettings(m *pipeline.Metrics) output.Settings {
	return output.Settings{Logger: slog.New(slog.DiscardHandler), Beat: "fleutanbeat", Version: "test", Metrics: m}
}

func testConfig(url string) Config {
	c := DefaultConfig()
	c.Hosts = []string{url}
	c.Backoff = elasticsearch.Backoff{Init: config.Duration(10 * time.Millisecond), Max: config.Duration(100 * time.Millisecond)}
	c.Timeout = config.Duration(30 * time.Second)
	return c
}

func uniqueName(t testing.TB) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

func newTestClient(t testing.TB, c Config, m *pipeline.Metrics) *elasticsearch.Client {
	t.Helper()
	cl, err := elasticsearch.NewClient(c, testSettings(m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// flowEvents are n flows events from number from on, with fixed ids.
func flowEvents(from, n int) []pipeline.Event {
	out := make([]pipeline.Event, n)
	for i := range out {
		out[i] = codectest.FlowEvent(from + i)
	}
	return out
}

func publish(t testing.TB, c *elasticsearch.Client, events []pipeline.Event) *pipeline.Batch {
	t.Helper()
	b := pipeline.NewBatch(events)
	if err := c.Publish(context.Background(), b); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return b
}

func statuses(b *pipeline.Batch) map[pipeline.Status]int {
	out := map[pipeline.Status]int{}
	for i := range b.Len() {
		st, _ := b.Status(i)
		out[st]++
	}
	return out
}

// count refreshes index (data stream backing indices too) and counts its
// documents.
func count(db *estest.Client, index string) int {
	db.T.Helper()
	db.JSON("POST", "/"+index+"/_refresh?expand_wildcards=all", nil, nil)
	var r struct {
		Count int `json:"count"`
	}
	db.JSON("GET", "/"+index+"/_count", nil, &r)
	return r.Count
}

// docIDs returns how often each _id is stored in index (up to 10000).
func docIDs(db *estest.Client, index string) map[string]int {
	db.T.Helper()
	db.JSON("POST", "/"+index+"/_refresh", nil, nil)
	var r struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	db.JSON("POST", "/"+index+"/_search", map[string]any{"size": 10000, "_source": false, "query": map[string]any{"match_all": map[string]any{}}}, &r)
	out := map[string]int{}
	for _, h := range r.Hits.Hits {
		out[h.ID]++
	}
	return out
}

var wantFlowTypes = map[string]string{
	"@timestamp":                   "date",
	"source.ip":                    "ip",
	"source.port":                  "long",
	"destination.ip":               "ip",
	"network.bytes":                "long",
	"network.transport":            "keyword",
	"event.dataset":                "keyword",
	"data_stream.namespace":        "keyword",
	"fleutan.flow.tcp.rtt_us":      "long",
	"fleutan.flow.tcp.congestion":  "keyword",
	"fleutan.flow.delta.bytes_out": "long",
}

func fieldNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRealBulkStoresEventsOnceInADataStream ships 2,000 flows to each
// OpenSearch and replays 500: the replay is all 409s, counted as
// duplicates under output.opensearch.*, the documents sit in a data
// stream's backing index with the templates' mapping types.
func TestRealBulkStoresEventsOnceInADataStream(t *testing.T) {
	for _, srv := range ostest.Servers(t) {
		t.Run(srv.Version, func(t *testing.T) {
			ns := uniqueName(t)
			c := testConfig(srv.URL)
			c.Namespace = ns
			m := pipeline.NewMetrics()
			cl := newTestClient(t, c, m)
			b1 := publish(t, cl, flowEvents(0, 1600))
			b2 := publish(t, cl, flowEvents(1600, 400))
			if got := statuses(b1)[pipeline.Acked] + statuses(b2)[pipeline.Acked]; got != 2000 {
				t.Fatalf("acked %d events, want 2000 (%v %v)", got, statuses(b1), statuses(b2))
			}
			target := "metrics-fleutan.flows-" + ns
			db := estest.NewClient(t, srv.URL)
			if n := count(db, target); n != 2000 {
				t.Fatalf("%s holds %d documents, want 2000", target, n)
			}
			b3 := publish(t, cl, flowEvents(1500, 500))
			if got := statuses(b3)[pipeline.Acked]; got != 500 {
				t.Fatalf("replay acked %d, want 500", got)
			}
			if n := count(db, target); n != 2000 {
				t.Fatalf("after replay %s holds %d documents, want 2000", target, n)
			}
			if got, want := cl.Stats(), (elasticsearch.Stats{Acked: 2000, Duplicates: 500}); got != want {
				t.Fatalf("stats %+v, want %+v", got, want)
			}
			tree := m.Tree()
			for name, want := range map[string]int64{"output.opensearch.events.acked": 2000, "output.opensearch.events.duplicates": 500} {
				if v, _ := tree.GetValue(name); v != want {
					t.Errorf("%s = %v, want %d", name, v, want)
				}
			}
			if v, ok := tree.GetValue(elasticsearch.MetricAcked); ok {
				t.Errorf("%s = %v: OpenSearch's counters went under Elasticsearch's name", elasticsearch.MetricAcked, v)
			}
			got := db.FieldTypes(target, fieldNames(wantFlowTypes)...)
			for f, typ := range wantFlowTypes {
				if got[f] != typ {
					t.Errorf("field %s mapped as %q, want %q", f, got[f], typ)
				}
			}
			var r struct {
				Hits struct {
					Hits []struct {
						Index string `json:"_index"`
					} `json:"hits"`
				} `json:"hits"`
			}
			db.JSON("POST", "/"+target+"/_search", map[string]any{"size": 1}, &r)
			if len(r.Hits.Hits) != 1 || !strings.HasPrefix(r.Hits.Hits[0].Index, ".ds-"+target+"-") {
				t.Fatalf("documents are not in a data stream backing index: %+v", r.Hits.Hits)
			}
		})
	}
}

// TestRealMappingConflictFollowsPolicy sends one event whose value cannot
// be indexed (a string in a long field) among nine good ones, under each
// non_indexable_policy, to each OpenSearch.
func TestRealMappingConflictFollowsPolicy(t *testing.T) {
	bad := func(events []pipeline.Event) []pipeline.Event {
		events[3].Fields.Put("fleutan.flow.tcp.rtt_us", "not-a-number")
		return events
	}
	for _, srv := range ostest.Servers(t) {
		ns := uniqueName(t)
		t.Run(srv.Version+"/drop", func(t *testing.T) {
			c := testConfig(srv.URL)
			c.Namespace = ns + "drop"
			cl := newTestClient(t, c, nil)
			b := publish(t, cl, bad(flowEvents(0, 10)))
			st, reason := b.Status(3)
			if st != pipeline.Dropped || !strings.Contains(reason, "mapper_parsing_exception") {
				t.Fatalf("bad event: status %v reason %q, want dropped with the error type", st, reason)
			}
			if got, want := cl.Stats(), (elasticsearch.Stats{Acked: 9, Dropped: 1}); got != want {
				t.Fatalf("stats %+v, want %+v", got, want)
			}
			if n := count(estest.NewClient(t, srv.URL), "metrics-fleutan.flows-"+c.Namespace); n != 9 {
				t.Fatalf("stored %d, want 9", n)
			}
		})
		t.Run(srv.Version+"/dead_letter_index", func(t *testing.T) {
			c := testConfig(srv.URL)
			c.Namespace = ns + "dlq"
			c.NonIndexablePolicy = elasticsearch.NonIndexablePolicy{Action: elasticsearch.PolicyDeadLetterIndex, Index: "fleutan-dlq-" + ns}
			cl := newTestClient(t, c, nil)
			b := publish(t, cl, bad(flowEvents(0, 10)))
			if got := statuses(b)[pipeline.Acked]; got != 10 {
				t.Fatalf("acked %d, want 10 (9 stored, 1 dead-lettered)", got)
			}
			if got, want := cl.Stats(), (elasticsearch.Stats{Acked: 9, DeadLettered: 1}); got != want {
				t.Fatalf("stats %+v, want %+v", got, want)
			}
			db := estest.NewClient(t, srv.URL)
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
			if len(r.Hits.Hits) != 1 || r.Hits.Hits[0].ID != "fl-3" {
				t.Fatalf("dead-letter index holds %+v, want the one bad event", r.Hits.Hits)
			}
			msg, _ := r.Hits.Hits[0].Source["message"].(string)
			if !strings.Contains(msg, `"rtt_us":"not-a-number"`) {
				t.Fatalf("dead-letter message lacks the original document: %q", msg)
			}
			errType, _ := r.Hits.Hits[0].Source["error"].(map[string]any)["type"].(string)
			if errType != "mapper_parsing_exception" {
				t.Errorf("dead letter error.type = %q, want mapper_parsing_exception", errType)
			}
			// The same bad event again is a duplicate in the dead-letter
			// index too, not a second copy.
			publish(t, cl, bad(flowEvents(0, 10)))
			if n := count(db, c.NonIndexablePolicy.Index); n != 1 {
				t.Fatalf("dead-letter index holds %d after a replay, want 1", n)
			}
		})
	}
}

// TestRealSetupAndTestOutput installs the templates twice through Setup,
// reads one back, and checks `test output` names the version.
func TestRealSetupAndTestOutput(t *testing.T) {
	for _, srv := range ostest.Servers(t) {
		t.Run(srv.Version, func(t *testing.T) {
			c := testConfig(srv.URL)
			ctx := context.Background()
			for range 2 {
				if err := elasticsearch.Setup(ctx, c, testSettings(nil)); err != nil {
					t.Fatal(err)
				}
			}
			db := estest.NewClient(t, srv.URL)
			var r struct {
				IndexTemplates []struct {
					Name          string `json:"name"`
					IndexTemplate struct {
						IndexPatterns []string       `json:"index_patterns"`
						ComposedOf    []string       `json:"composed_of"`
						DataStream    map[string]any `json:"data_stream"`
					} `json:"index_template"`
				} `json:"index_templates"`
			}
			db.JSON("GET", "/_index_template/metrics-fleutan.flows", nil, &r)
			if len(r.IndexTemplates) != 1 || r.IndexTemplates[0].IndexTemplate.DataStream == nil ||
				strings.Join(r.IndexTemplates[0].IndexTemplate.ComposedOf, ",") != "fleutan@mappings,fleutan.flows@mappings" {
				t.Fatalf("index template read back as %+v", r.IndexTemplates)
			}
			var out bytes.Buffer
			if err := TestOutput(ctx, c, &out); err != nil {
				t.Fatalf("test output: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "opensearch: "+srv.URL) || !strings.Contains(out.String(), "version: "+srv.Version+"\n") {
				t.Fatalf("test output printed:\n%s", out.String())
			}
		})
	}
}

// TestRealCrossEngineFailsAtOnce points each output at the other
// product: the first request fails with ErrWrongProduct, naming the output
// to use, instead of events being retried.
func TestRealCrossEngineFailsAtOnce(t *testing.T) {
	esURL := estest.URL(t)
	for _, srv := range ostest.Servers(t) {
		t.Run("elasticsearch output to OpenSearch "+srv.Version, func(t *testing.T) {
			c := elasticsearch.DefaultConfig()
			c.Hosts = []string{srv.URL}
			cl := newTestClient(t, c, nil)
			err := cl.Probe(context.Background())
			if !errors.Is(err, elasticsearch.ErrWrongProduct) || !strings.Contains(err.Error(), "use output.opensearch") {
				t.Fatalf("Probe: %v, want the product check naming output.opensearch", err)
			}
		})
	}
	t.Run("opensearch output to Elasticsearch", func(t *testing.T) {
		c := testConfig(esURL)
		cl := newTestClient(t, c, nil)
		err := cl.Probe(context.Background())
		if !errors.Is(err, elasticsearch.ErrWrongProduct) || !strings.Contains(err.Error(), "use output.elasticsearch") {
			t.Fatalf("Probe: %v, want the product check naming output.elasticsearch", err)
		}
		// Publish fails the same way, and stores nothing.
		b := pipeline.NewBatch(flowEvents(0, 3))
		c.Template.Enabled = false
		cl = newTestClient(t, c, nil)
		err = cl.Publish(context.Background(), b)
		if err == nil || !strings.Contains(err.Error(), "use output.elasticsearch") {
			t.Fatalf("Publish: %v, want the product check naming output.elasticsearch", err)
		}
	})
}

// outageSeconds is how long OpenSearch is down in the outage test
// (FLEUTANBEAT_OS_OUTAGE overrides the 30 s of the issue).
func outageSeconds() time.Duration {
	if s := os.Getenv("FLEUTANBEAT_OS_OUTAGE"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 30 * time.Second
}

// TestRealOutageLosesAndDuplicatesNothing drives the output through the
// pipeline while a dedicated OpenSearch of each version is stopped for
// 30 s and started again on the same data: every event produced is stored
// exactly once.
func TestRealOutageLosesAndDuplicatesNothing(t *testing.T) {
	for _, srv := range ostest.Servers(t) {
		t.Run(srv.Version, func(t *testing.T) {
			n := ostest.StartNode(t, srv.Version, "outage")
			c := testConfig(n.URL)
			c.Worker = 2
			c.BulkMaxSize = 200
			c.Timeout = config.Duration(5 * time.Second)
			c.Backoff = elasticsearch.Backoff{Init: config.Duration(100 * time.Millisecond), Max: config.Duration(time.Second)}
			metrics := pipeline.NewMetrics()
			g, err := elasticsearch.NewGroup(c, testSettings(metrics))
			if err != nil {
				t.Fatal(err)
			}
			q := pipeline.MemQueueConfig{Events: 8192}
			q.Flush.MinEvents = 200
			q.Flush.Timeout = config.Duration(50 * time.Millisecond)
			p := pipeline.New(pipeline.Settings{
				Metrics: metrics, Queue: q, Outputs: g.Clients, BatchSize: g.BatchSize, Namespace: c.Namespace,
				Agent:     pipeline.AgentInfo{ID: "outage-agent", Name: "outage", Type: "fleutanbeat", Version: "test", EphemeralID: "e"},
				RetryInit: 100 * time.Millisecond, RetryMax: time.Second,
			})
			p.Start()
			pub := p.Client(pipeline.ClientConfig{Input: "test"})

			// 20 flow events every 200 ms, each with its series so that
			// the pipeline gives it a deterministic id.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var produced atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for k := 0; ; k++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					for j := range 20 {
						e := codectest.FlowEvent(int(produced.Load()))
						e.ID = ""
						e.Series = fmt.Sprintf("flow-%d", j)
						if pub.Publish(ctx, e) != nil {
							return
						}
						produced.Add(1)
					}
				}
			}()
			acked := elasticsearch.MetricName(Engine, elasticsearch.MetricAcked)
			waitFor(t, 2*time.Minute, "a first stored event", func() bool {
				v, _ := metrics.Tree().GetValue(acked)
				return v != nil && v.(int64) > 0
			})
			n.Stop()
			stoppedAt := produced.Load()
			time.Sleep(outageSeconds())
			n.Start()
			time.Sleep(3 * time.Second)
			cancel()
			<-done
			closeCtx, closeCancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer closeCancel()
			if undelivered := p.Close(closeCtx); undelivered != 0 {
				t.Fatalf("%d events undelivered after the outage", undelivered)
			}
			total := int(produced.Load())
			if total <= int(stoppedAt) {
				t.Fatalf("nothing produced during the outage (%d before, %d total)", stoppedAt, total)
			}
			db := estest.NewClient(t, n.URL)
			target := "metrics-fleutan.flows-default"
			if got := count(db, target); got != total {
				t.Fatalf("OpenSearch holds %d documents, produced %d", got, total)
			}
			ids := docIDs(db, target)
			if len(ids) != total {
				t.Fatalf("OpenSearch holds %d distinct ids, produced %d", len(ids), total)
			}
			for id, k := range ids {
				if k != 1 {
					t.Fatalf("id %s stored %d times", id, k)
				}
			}
			tree := metrics.Tree()
			a, _ := tree.GetValue(acked)
			d, _ := tree.GetValue(elasticsearch.MetricName(Engine, elasticsearch.MetricDuplicates))
			r, _ := tree.GetValue(elasticsearch.MetricName(Engine, elasticsearch.MetricRetried))
			t.Logf("produced %d (%d before the stop), acked %v, duplicates %v, retried %v", total, stoppedAt, a, d, r)
			if a.(int64)+d.(int64) != int64(total) {
				t.Fatalf("acked %v + duplicates %v for %d events", a, d, total)
			}
			if r.(int64) == 0 {
				t.Fatal("no retry counted across the outage")
			}
		})
	}
}

func waitFor(t *testing.T, max time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(max); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, max)
		}
	}
}
