package elasticsearch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func TestClassifyByErrorClass(t *testing.T) {
	tests := []struct {
		status int
		typ    string
		want   outcome
	}{
		{201, "", outStored},
		{200, "", outStored},
		{409, "version_conflict_engine_exception", outDuplicate},
		{400, "mapper_parsing_exception", outNonIndexable},
		{400, "document_parsing_exception", outNonIndexable},
		{400, "illegal_argument_exception", outNonIndexable},
		{400, "strict_dynamic_mapping_exception", outNonIndexable},
		{404, "index_not_found_exception", outNonIndexable},
		{413, typeTooLarge, outNonIndexable},
		{403, "cluster_block_exception", outBlocked},
		{403, "security_exception", outBlocked},
		// Everything else is retried: an error the output does not know
		// may well be one an operator fixes.
		{403, "some_new_exception", outRetry},
		{400, "index_closed_exception", outRetry},
		{400, "", outRetry},
		{404, "", outRetry},
		{401, "security_exception", outRetry},
		{413, "", outRetry},
		{429, "es_rejected_execution_exception", outRetry},
		{500, "", outRetry},
		{503, "unavailable_shards_exception", outRetry},
		{418, "", outRetry},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.typ); got != tt.want {
			t.Errorf("classify(%d, %q) = %d, want %d", tt.status, tt.typ, got, tt.want)
		}
	}
}

// recordingHandler keeps every log record with its attributes.
type recordingHandler struct {
	mu   *sync.Mutex
	recs *[]map[string]any
}

func newRecordingLogger() (*slog.Logger, func() []map[string]any) {
	h := recordingHandler{mu: &sync.Mutex{}, recs: &[]map[string]any{}}
	return slog.New(h), func() []map[string]any {
		h.mu.Lock()
		defer h.mu.Unlock()
		return append([]map[string]any(nil), *h.recs...)
	}
}

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, m)
	h.mu.Unlock()
	return nil
}
func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordingHandler) WithGroup(string) slog.Handler      { return h }

// TestFaultBlockedRetriesAreLoggedOncePerReasonPerInterval: a write block
// and a missing privilege on every item of three batches give one line
// each, naming the index and the fix; once the interval has passed, the
// next batch logs again. Nothing is dropped.
func TestFaultBlockedRetriesAreLoggedOncePerReasonPerInterval(t *testing.T) {
	srv, _ := fakeESItems(t, func(req, item int) fakeItem {
		if item%2 == 0 {
			return fakeItem{403, "cluster_block_exception"}
		}
		return fakeItem{403, "security_exception"}
	})
	log, records := newRecordingLogger()
	s := testSettings()
	s.Logger = log
	cl, err := NewClient(faultConfig(srv.URL), s)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 3 {
		b := publish(t, cl, flowEvents(0, 4, time.Now()))
		if st := statuses(b); st[pipeline.Retry] != 4 {
			t.Fatalf("statuses %v, want 4 to retry", st)
		}
	}
	if got, want := cl.Stats(), (Stats{Retried: 12, Blocked: 12}); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	want := map[string]string{
		"index metrics-fleutan.flows-default has a write block; events are kept and retried":            "index.blocks.write",
		"the output's user may not write to metrics-fleutan.flows-default; events are kept and retried": "create_doc",
	}
	check := func(n int) {
		t.Helper()
		got := map[string]int{}
		for _, r := range records() {
			msg, _ := r["msg"].(string)
			fix, _ := r["fix"].(string)
			if w, ok := want[msg]; !ok || !strings.Contains(fix, w) || r["index"] != "metrics-fleutan.flows-default" {
				t.Fatalf("unexpected log record %v", r)
			}
			got[msg]++
		}
		for msg := range want {
			if got[msg] != n {
				t.Fatalf("%q logged %d times, want %d", msg, got[msg], n)
			}
		}
	}
	check(1)
	cl.logEvery = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	publish(t, cl, flowEvents(0, 4, time.Now()))
	check(2)
}

// tooLargeES is a fault-injection server that answers 413 with an empty
// body, as Elasticsearch does, to a bulk request whose (decompressed)
// body is longer than limit, and stores the rest by _id.
type tooLargeES struct {
	limit    int
	mu       sync.Mutex
	ids      map[string]int // _id → times stored
	docs     map[string]string
	refused  int
	accepted int
	largest  int
}

func newTooLargeES(t *testing.T, limit int) (*tooLargeES, *httptest.Server) {
	f := &tooLargeES{limit: limit, ids: map[string]int{}, docs: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = zr
		}
		raw, _ := io.ReadAll(body)
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(raw) > f.limit {
			f.refused++
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		f.accepted++
		f.largest = max(f.largest, len(raw))
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		var items []string
		var id string
		for line := 0; sc.Scan(); line++ {
			if line%2 == 0 {
				var a struct {
					Create struct {
						Index string `json:"_index"`
						ID    string `json:"_id"`
					} `json:"create"`
				}
				_ = json.Unmarshal(sc.Bytes(), &a)
				id = a.Create.Index + "/" + a.Create.ID
				continue
			}
			f.ids[id]++
			f.docs[id] = sc.Text()
			items = append(items, `{"create":{"status":201}}`)
		}
		fmt.Fprintf(w, `{"errors":false,"items":[%s]}`, strings.Join(items, ","))
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// oversized is a flow event with a value of size bytes: more than a
// test server's limit on its own.
func oversized(e pipeline.Event, size int) pipeline.Event {
	e.Fields.Put("labels.blob", strings.Repeat("x", size))
	return e
}

// TestFault413SplitsInHalvesAndRefusesTheOversizedEvent: a batch of 40
// events, one of them alone above the limit, against a server that
// refuses bodies over 8 KiB: every other event is stored once, in
// requests under the limit, and the oversized one follows the policy.
func TestFault413SplitsInHalvesAndRefusesTheOversizedEvent(t *testing.T) {
	const limit = 8 << 10
	for _, policy := range []string{PolicyDrop, PolicyDeadLetterIndex} {
		t.Run(policy, func(t *testing.T) {
			f, srv := newTooLargeES(t, limit)
			c := faultConfig(srv.URL)
			if policy == PolicyDeadLetterIndex {
				c.NonIndexablePolicy = NonIndexablePolicy{Action: PolicyDeadLetterIndex, Index: "dlq"}
			}
			cl := newTestClient(t, c)
			events := flowEvents(0, 40, time.Now())
			events[17] = oversized(events[17], 40<<10)
			b := publish(t, cl, events)
			for i := range events {
				st, reason := b.Status(i)
				want, wantReason := pipeline.Acked, ""
				if i == 17 && policy == PolicyDrop {
					want, wantReason = pipeline.Dropped, "non_indexable:"+typeTooLarge
				}
				if st != want || reason != wantReason {
					t.Fatalf("event %d: %v %q, want %v %q", i, st, reason, want, wantReason)
				}
			}
			want := Stats{Acked: 39, Dropped: 1}
			if policy == PolicyDeadLetterIndex {
				want = Stats{Acked: 39, DeadLettered: 1}
			}
			if got := cl.Stats(); got != want {
				t.Fatalf("stats %+v, want %+v", got, want)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for i := range events {
				id := "metrics-fleutan.flows-default/" + events[i].ID
				if n := f.ids[id]; (i == 17) != (n == 0) || n > 1 {
					t.Errorf("event %d stored %d times", i, n)
				}
			}
			if f.largest > limit || f.refused == 0 {
				t.Fatalf("largest accepted body %d bytes (limit %d), %d refused", f.largest, limit, f.refused)
			}
			if policy == PolicyDeadLetterIndex {
				dl := f.docs["dlq/"+events[17].ID]
				if len(f.ids) != 40 || !strings.Contains(dl, `"type":"request_too_large"`) || !strings.Contains(dl, `"status":413`) ||
					!strings.Contains(dl, "first 4096 of the event's") || len(dl) > limit {
					t.Fatalf("dead letter of the oversized event (%d bytes): %.600s", len(dl), dl)
				}
			}
		})
	}
}

// TestFault413OnAWholeRequestKeepsPendingEventsWhenTheSplitFails: a
// network failure on the second half returns an error for the batch, so
// the pipeline retries all of it and the first half comes back as 409s.
func TestFault413WholeRequestErrorAfterSplitRetriesTheBatch(t *testing.T) {
	var reqs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		switch reqs.Add(1) {
		case 1:
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		case 2:
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			n := bytes.Count(raw, []byte("\n")) / 2
			fmt.Fprintf(w, `{"errors":false,"items":[%s]}`, strings.TrimSuffix(strings.Repeat(`{"create":{"status":201}},`, n), ","))
		default:
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	c := faultConfig(srv.URL)
	c.CompressionLevel = 0
	cl := newTestClient(t, c)
	b := pipeline.NewBatch(flowEvents(0, 10, time.Now()))
	if err := cl.Publish(context.Background(), b); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("Publish error %v, want the second half's 503", err)
	}
	if st := statuses(b); st[pipeline.Pending] != 10 {
		t.Fatalf("statuses %v, want all 10 pending for the pipeline's retry", st)
	}
	if reqs.Load() != 3 {
		t.Fatalf("%d requests, want 3 (whole, first half, second half)", reqs.Load())
	}
}

// shipper drives the output through pipeline.New with a producer of 20
// flow events every 200 ms (deterministic ids), as the agent would.
type shipper struct {
	t        *testing.T
	p        *pipeline.Pipeline
	metrics  *pipeline.Metrics
	produced atomic.Int64
	cancel   context.CancelFunc
	done     chan struct{}
}

// startPipeline starts a pipeline whose only output is this output with
// c, flushing batches from minEvents, retrying from 100 ms to 1 s, with
// its own metrics (also the output's).
func startPipeline(t *testing.T, c Config, s output.Settings, name string, minEvents int) (*pipeline.Pipeline, *pipeline.Metrics) {
	t.Helper()
	metrics := pipeline.NewMetrics()
	s.Metrics = metrics
	g, err := NewGroup(c, s)
	if err != nil {
		t.Fatal(err)
	}
	q := pipeline.MemQueueConfig{Events: 8192}
	q.Flush.MinEvents = minEvents
	q.Flush.Timeout = config.Duration(50 * time.Millisecond)
	p := pipeline.New(pipeline.Settings{
		Metrics: metrics, Queue: q, Outputs: g.Clients, BatchSize: g.BatchSize, Namespace: c.Namespace,
		Agent:     pipeline.AgentInfo{ID: name + "-agent", Name: name, Type: "fleutanbeat", Version: "test", EphemeralID: "e"},
		RetryInit: 100 * time.Millisecond, RetryMax: time.Second,
	})
	p.Start()
	return p, metrics
}

func startShipping(t *testing.T, c Config, s output.Settings) *shipper {
	t.Helper()
	sh := &shipper{t: t, done: make(chan struct{})}
	sh.p, sh.metrics = startPipeline(t, c, s, "blocks", 200)
	pub := sh.p.Client(pipeline.ClientConfig{Input: "test"})
	ctx, cancel := context.WithCancel(context.Background())
	sh.cancel = cancel
	go func() {
		defer close(sh.done)
		base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for j := range 20 {
				e := flowEvent(int(sh.produced.Load()), base.Add(time.Duration(k)*time.Second))
				e.ID = "" // the pipeline sets the deterministic id
				e.Series = fmt.Sprintf("flow-%d", j)
				if pub.Publish(ctx, e) != nil {
					return
				}
				sh.produced.Add(1)
			}
		}
	}()
	t.Cleanup(func() { sh.stop() })
	return sh
}

func (sh *shipper) stop() {
	sh.cancel()
	<-sh.done
}

func (sh *shipper) counter(name string) int64 {
	v, _ := sh.metrics.Tree().GetValue(name)
	n, _ := v.(int64)
	return n
}

// finish stops producing, lets the pipeline deliver everything and
// returns how many events were produced.
func (sh *shipper) finish() int {
	sh.t.Helper()
	sh.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if undelivered := sh.p.Close(ctx); undelivered != 0 {
		sh.t.Fatalf("%d events undelivered", undelivered)
	}
	return int(sh.produced.Load())
}

// checkStoredOnce asserts that target holds exactly produced documents,
// each id once, and that the pipeline dropped nothing.
func (sh *shipper) checkStoredOnce(db *estest.Client, target string, produced int) {
	sh.t.Helper()
	if v, ok := sh.metrics.Tree().GetValue("pipeline.events.dropped"); ok {
		sh.t.Errorf("pipeline dropped events: %v", v)
	}
	if n := sh.counter(MetricDropped); n != 0 {
		sh.t.Errorf("output dropped %d events", n)
	}
	ids := docIDs(db, target)
	docs := 0
	for id, k := range ids {
		docs += k
		if k != 1 {
			sh.t.Errorf("id %s stored %d times", id, k)
		}
	}
	if docs != produced || len(ids) != produced {
		sh.t.Fatalf("%s holds %d documents with %d distinct ids, %d events produced", target, docs, len(ids), produced)
	}
}

// blockSeconds is how long the block tests keep Elasticsearch refusing
// (FLEUTANBEAT_ES_BLOCK overrides the 20 s of the issue).
func blockSeconds() time.Duration {
	if s := os.Getenv("FLEUTANBEAT_ES_BLOCK"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 20 * time.Second
}

// waitUntil polls ok every 100 ms for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// backingIndices lists the indices behind a data stream (the _data_stream
// API is missing from the test distribution; _settings resolves it).
func backingIndices(db *estest.Client, stream string) []string {
	db.T.Helper()
	var m map[string]any
	db.JSON("GET", "/"+stream+"/_settings", nil, &m)
	var out []string
	for name := range m {
		out = append(out, name)
	}
	return out
}

// TestRealWriteBlockKeepsEvents ships flows while an operator sets
// index.blocks.write on the data stream's backing index for 20 s, then
// lifts it: every event produced is stored once, none dropped, and the
// blocked retries are counted and logged with the index.
func TestRealWriteBlockKeepsEvents(t *testing.T) {
	t.Parallel()
	url := estest.URL(t)
	db := estest.NewClient(t, url)
	c := testConfig(url)
	c.Namespace = uniqueName(t)
	c.BulkMaxSize = 200
	c.Backoff = Backoff{Init: config.Duration(100 * time.Millisecond), Max: config.Duration(time.Second)}
	stream := "metrics-fleutan.flows-" + c.Namespace
	log, records := newRecordingLogger()
	s := testSettings()
	s.Logger = log
	sh := startShipping(t, c, s)
	waitUntil(t, 30*time.Second, "the first documents in "+stream, func() bool {
		st, _ := db.Do("GET", "/"+stream+"/_count", nil)
		return st == 200 && sh.counter(MetricAcked) > 0
	})
	backing := backingIndices(db, stream)
	if len(backing) != 1 || !strings.HasPrefix(backing[0], ".ds-"+stream+"-") {
		t.Fatalf("backing indices of %s: %v", stream, backing)
	}
	db.JSON("PUT", "/"+backing[0]+"/_settings", map[string]any{"index.blocks.write": true}, nil)
	blockedAt := sh.produced.Load()
	time.Sleep(blockSeconds())
	blocked := sh.counter(MetricBlocked)
	db.JSON("PUT", "/"+backing[0]+"/_settings", map[string]any{"index.blocks.write": nil}, nil)
	if blocked == 0 {
		t.Error("no blocked retry counted while the write block was set")
	}
	if sh.produced.Load() <= blockedAt {
		t.Fatal("nothing produced while blocked")
	}
	time.Sleep(2 * time.Second)
	produced := sh.finish()
	sh.checkStoredOnce(db, stream, produced)
	lines := 0
	for _, r := range records() {
		if r["msg"] == "index "+stream+" has a write block; events are kept and retried" {
			lines++
			if e, _ := r["error"].(string); !strings.Contains(e, backing[0]) || r["error.type"] != "cluster_block_exception" || r["status"] != int64(403) {
				t.Errorf("write block log line %v", r)
			}
		}
	}
	if lines != 1 {
		t.Fatalf("write block logged %d times in %s, want once", lines, blockSeconds())
	}
	t.Logf("%d events produced (%d before the block), %d blocked retries", produced, blockedAt, blocked)
}

// limitedNode is a dedicated node with security on and a small
// http.max_content_length (64 KB), shared by the tests that need either:
// one node start instead of two.
type limitedNode struct {
	url   string
	roles string // roles.yml, which the node reloads within 5 s
}

const (
	limitedAdmin   = "fleutan_admin"
	limitedShipper = "fleutan_shipper"
)

// shipperRole is the role of limitedShipper: create_doc and
// auto_configure on the index names given.
func shipperRole(names string) []byte {
	return []byte(limitedShipper + ":\n  cluster: [monitor]\n  indices:\n    - names: [" + names + "]\n      privileges: [create_doc, auto_configure]\n")
}

// TestRealLimitedNode runs the tests that need a write refused for a
// missing privilege or a request refused as too large, in parallel on one
// dedicated node.
func TestRealLimitedNode(t *testing.T) {
	t.Parallel()
	version := estest.Version(t)
	dir := estest.NodeDir(t, "limited")
	home := estest.Script(t, "fetch", version)
	java := estest.Script(t, "java", version)
	if out, err := exec.Command("cp", "-r", filepath.Join(home, "config"), filepath.Join(dir, "config")).CombinedOutput(); err != nil {
		t.Fatalf("copy config: %v: %s", err, out)
	}
	ln := &limitedNode{roles: filepath.Join(dir, "config", "roles.yml")}
	// Some index privilege, so that a bulk request as a whole is allowed
	// and each item is refused for its index.
	if err := os.WriteFile(ln.roles, shipperRole(`"fleutan-other-*"`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, u := range [][2]string{{limitedAdmin, "superuser"}, {limitedShipper, limitedShipper}} {
		cmd := exec.Command(filepath.Join(home, "bin", "elasticsearch-users"), "useradd", u[0], "-p", secPass, "-r", u[1])
		cmd.Env = append(os.Environ(), "ES_PATH_CONF="+filepath.Join(dir, "config"), "ES_JAVA_HOME="+java)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("elasticsearch-users: %v: %s", err, out)
		}
	}
	ln.url = estest.StartNode(t, "limited", dir, "-Expack.security.enabled=true", "-Ehttp.max_content_length=64kb").URL
	t.Run("MissingPrivilegeKeepsEvents", func(t *testing.T) {
		t.Parallel()
		testMissingPrivilegeKeepsEvents(t, ln)
	})
	t.Run("413SplitsAndRefusesTheOversizedEvent", func(t *testing.T) {
		t.Parallel()
		test413SplitsAndRefusesTheOversizedEvent(t, ln)
	})
}

// adminClient is an assertion client of the node as limitedAdmin.
func (ln *limitedNode) adminClient(t *testing.T) *estest.Client {
	db := estest.NewClient(t, ln.url)
	db.User, db.Password = limitedAdmin, secPass
	return db
}

// testMissingPrivilegeKeepsEvents ships flows as a file-realm user whose
// role may not write to the data stream, for 20 s, then changes the role
// (roles.yml) to grant create_doc and auto_configure: every event produced
// is stored once, none dropped.
func testMissingPrivilegeKeepsEvents(t *testing.T, ln *limitedNode) {
	db := ln.adminClient(t)
	c := testConfig(ln.url)
	c.Namespace = uniqueName(t)
	// 20 flow events stay under the node's 64 KB limit: no split here.
	c.BulkMaxSize = 20
	c.Backoff = Backoff{Init: config.Duration(100 * time.Millisecond), Max: config.Duration(time.Second)}
	c.Username, c.Password = limitedAdmin, secPass
	if err := Setup(context.Background(), c, testSettings()); err != nil {
		t.Fatalf("Setup as %s: %v", limitedAdmin, err)
	}
	// The shipper may not manage templates either: they are in place.
	c.Username = limitedShipper
	c.Template.Enabled = false
	stream := "metrics-fleutan.flows-" + c.Namespace
	log, records := newRecordingLogger()
	s := testSettings()
	s.Logger = log
	sh := startShipping(t, c, s)
	time.Sleep(blockSeconds())
	blocked := sh.counter(MetricBlocked)
	if err := os.WriteFile(ln.roles, shipperRole(`"metrics-fleutan.*-*"`), 0o644); err != nil {
		t.Fatal(err)
	}
	if blocked == 0 {
		t.Error("no blocked retry counted while the user lacked the privilege")
	}
	if acked := sh.counter(MetricAcked); acked != 0 {
		t.Errorf("%d events acked before the privilege was granted", acked)
	}
	// The node reads roles.yml again within resource.reload.interval.high
	// (5 s).
	waitUntil(t, 30*time.Second, "events stored once the role grants create_doc", func() bool { return sh.counter(MetricAcked) > 0 })
	time.Sleep(2 * time.Second)
	produced := sh.finish()
	sh.checkStoredOnce(db, stream, produced)
	lines := 0
	for _, r := range records() {
		if r["msg"] == "the output's user may not write to "+stream+"; events are kept and retried" {
			lines++
			if e, _ := r["error"].(string); !strings.Contains(e, limitedShipper) || r["error.type"] != "security_exception" || r["status"] != int64(403) {
				t.Errorf("missing privilege log line %v", r)
			}
		}
	}
	if lines != 1 {
		t.Fatalf("missing privilege logged %d times in %s, want once", lines, blockSeconds())
	}
	t.Logf("%d events produced, %d blocked retries before the grant", produced, blocked)
}

// test413SplitsAndRefusesTheOversizedEvent sends a batch of 400 flow
// events (about 650 KB) with one 100 KB event to a node whose
// http.max_content_length is 64 KB: the 399 others are stored once, in
// requests that fit, and the oversized one follows non_indexable_policy.
func test413SplitsAndRefusesTheOversizedEvent(t *testing.T, ln *limitedNode) {
	db := ln.adminClient(t)
	cases := []struct {
		policy      string
		compression int
	}{
		{PolicyDrop, 1},
		{PolicyDeadLetterIndex, 1},
		{PolicyDrop, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/compression_level=%d", tc.policy, tc.compression), func(t *testing.T) {
			c := testConfig(ln.url)
			c.Username, c.Password = limitedAdmin, secPass
			c.Namespace = uniqueName(t)
			c.CompressionLevel = tc.compression
			// The events are found by the ids the output gave them: a
			// time series data stream would store its own. The other
			// subtest installs the default templates meanwhile, so this
			// stream gets a standard template of its own, above them.
			c.Template.IndexMode = IndexModeStandard
			c.Template.Enabled = false
			admin := c
			admin.Username, admin.Password = limitedAdmin, secPass
			if err := Setup(context.Background(), admin, testSettings()); err != nil {
				t.Fatal(err)
			}
			ts, err := Templates(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, tm := range ts {
				if tm.Kind == KindIndex && tm.Name == IndexTemplateName(c, "fleutan.flows") {
					tm.Body["index_patterns"] = []string{"metrics-fleutan.flows-" + c.Namespace}
					tm.Body["priority"] = tm.Body["priority"].(int) + 50
					db.JSON("PUT", "/_index_template/"+c.Namespace, tm.Body, nil)
				}
			}
			dlq := "fleutan-dlq-" + c.Namespace
			if tc.policy == PolicyDeadLetterIndex {
				c.NonIndexablePolicy = NonIndexablePolicy{Action: PolicyDeadLetterIndex, Index: dlq}
			}
			log, records := newRecordingLogger()
			s := testSettings()
			s.Logger = log
			cl, err := NewClient(c, s)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			events := flowEvents(0, 400, time.Now())
			events[123] = oversized(events[123], 100<<10)
			b := publish(t, cl, events)
			st, reason := b.Status(123)
			want := Stats{Acked: 399, Dropped: 1}
			if tc.policy == PolicyDeadLetterIndex {
				want = Stats{Acked: 399, DeadLettered: 1}
				if st != pipeline.Acked {
					t.Fatalf("oversized event: %v %q, want acked (dead-lettered)", st, reason)
				}
			} else if st != pipeline.Dropped || reason != "non_indexable:request_too_large" {
				t.Fatalf("oversized event: %v %q, want dropped as non_indexable:request_too_large", st, reason)
			}
			if got := cl.Stats(); got != want {
				t.Fatalf("stats %+v, want %+v", got, want)
			}
			ids := docIDs(db, "metrics-fleutan.flows-"+c.Namespace)
			if len(ids) != 399 {
				t.Fatalf("%d distinct ids stored, want 399", len(ids))
			}
			for i, e := range events {
				if k := ids[e.ID]; (i == 123 && k != 0) || (i != 123 && k != 1) {
					t.Fatalf("event %d stored %d times", i, k)
				}
			}
			split := 0
			for _, r := range records() {
				if strings.HasPrefix(r["msg"].(string), "Elasticsearch refused a bulk request as too large (413)") {
					split++
				}
			}
			if split != 1 {
				t.Fatalf("split logged %d times, want once", split)
			}
			if tc.policy != PolicyDeadLetterIndex {
				return
			}
			var r struct {
				Hits struct {
					Hits []struct {
						ID     string `json:"_id"`
						Source struct {
							Message string         `json:"message"`
							Error   map[string]any `json:"error"`
						} `json:"_source"`
					} `json:"hits"`
				} `json:"hits"`
			}
			db.JSON("POST", "/"+dlq+"/_refresh", nil, nil)
			db.JSON("POST", "/"+dlq+"/_search", map[string]any{}, &r)
			if len(r.Hits.Hits) != 1 || r.Hits.Hits[0].ID != events[123].ID {
				t.Fatalf("dead-letter index holds %+v, want the oversized event", r.Hits.Hits)
			}
			h := r.Hits.Hits[0].Source
			if h.Error["type"] != typeTooLarge || h.Error["status"] != float64(413) || len(h.Message) > deadLetterMax ||
				!strings.HasPrefix(h.Message, `{"@timestamp":`) {
				t.Fatalf("dead letter: error %v, message of %d bytes: %.200s", h.Error, len(h.Message), h.Message)
			}
		})
	}
}
