package elasticsearch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// fakeES answers bulk requests with a status per item chosen by fn (the
// action's position in the request and the request's sequence number),
// with the error type Elasticsearch gives that status most often.
// Only for fault injection: behaviour is proven against the real server.
func fakeES(t *testing.T, fn func(req, item int) int) (*httptest.Server, *atomic.Int64) {
	return fakeESItems(t, func(req, item int) fakeItem {
		st := fn(req, item)
		return fakeItem{st, injectedType[st]}
	})
}

// fakeItem is the status and error type of one bulk item.
type fakeItem struct {
	status int
	typ    string
}

var injectedType = map[int]string{
	400: "document_parsing_exception",
	403: "cluster_block_exception",
	404: "index_not_found_exception",
	429: "es_rejected_execution_exception",
	503: "unavailable_shards_exception",
}

// fakeESItems is fakeES with the error type chosen by fn too.
func fakeESItems(t *testing.T, fn func(req, item int) fakeItem) (*httptest.Server, *atomic.Int64) {
	var reqs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		n := int(reqs.Add(1)) - 1
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = zr
		}
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		var items []string
		errs := false
		for line := 0; sc.Scan(); line++ {
			if line%2 == 1 {
				continue
			}
			it := fn(n, len(items))
			item := fmt.Sprintf(`{"create":{"status":%d}}`, it.status)
			if it.status >= 300 {
				errs = true
				item = fmt.Sprintf(`{"create":{"status":%d,"error":{"type":%q,"reason":"injected %d"}}}`, it.status, it.typ, it.status)
			}
			items = append(items, item)
		}
		fmt.Fprintf(w, `{"errors":%v,"items":[%s]}`, errs, strings.Join(items, ","))
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs
}

func faultConfig(hosts ...string) Config {
	c := testConfig(hosts[0])
	c.Hosts = hosts
	c.Template.Enabled = false
	c.Timeout = config.Duration(2 * time.Second)
	return c
}

// TestFault429StormRetriesUntilStored: items answered 429 are marked for
// retry and counted; once the storm ends the same events are stored.
func TestFault429StormRetriesUntilStored(t *testing.T) {
	srv, reqs := fakeES(t, func(req, item int) int {
		if req < 3 {
			return 429
		}
		return 201
	})
	cl := newTestClient(t, faultConfig(srv.URL))
	events := flowEvents(0, 50, time.Now())
	for attempt := 0; ; attempt++ {
		b := pipeline.NewBatch(events)
		if err := cl.Publish(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		st := statuses(b)
		if attempt < 3 {
			if st[pipeline.Retry] != 50 {
				t.Fatalf("attempt %d: %v, want 50 to retry", attempt, st)
			}
			continue
		}
		if st[pipeline.Acked] != 50 {
			t.Fatalf("after the storm: %v, want 50 acked", st)
		}
		break
	}
	if got, want := cl.Stats(), (Stats{Acked: 50, Retried: 150}); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if reqs.Load() != 4 {
		t.Fatalf("%d requests, want 4", reqs.Load())
	}
}

// TestFaultMixedItemsAreJudgedOneByOne: every outcome in one reply, each
// item judged by its status and error type.
func TestFaultMixedItemsAreJudgedOneByOne(t *testing.T) {
	items := []struct {
		fakeItem
		want pipeline.Status
	}{
		{fakeItem{201, ""}, pipeline.Acked},
		{fakeItem{409, "version_conflict_engine_exception"}, pipeline.Acked},
		{fakeItem{429, "es_rejected_execution_exception"}, pipeline.Retry},
		{fakeItem{503, "unavailable_shards_exception"}, pipeline.Retry},
		{fakeItem{400, "document_parsing_exception"}, pipeline.Dropped},
		{fakeItem{403, "cluster_block_exception"}, pipeline.Retry},
		{fakeItem{403, "security_exception"}, pipeline.Retry},
		{fakeItem{400, "index_closed_exception"}, pipeline.Retry},
		{fakeItem{404, "index_not_found_exception"}, pipeline.Dropped},
	}
	srv, _ := fakeESItems(t, func(req, item int) fakeItem { return items[item].fakeItem })
	cl := newTestClient(t, faultConfig(srv.URL))
	b := publish(t, cl, flowEvents(0, len(items), time.Now()))
	for i, it := range items {
		if st, _ := b.Status(i); st != it.want {
			t.Errorf("item %d (%d %s): %v, want %v", i, it.status, it.typ, st, it.want)
		}
	}
	if got, want := cl.Stats(), (Stats{Acked: 1, Duplicates: 1, Retried: 5, Blocked: 2, Dropped: 2}); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

// TestFaultWholeRequestFailuresReturnErrors: the batch comes back as an
// error (retried by the pipeline) with a message saying what to check.
func TestFaultWholeRequestFailuresReturnErrors(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"5xx", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":"unavailable"}`)
		}, "status 503"},
		{"bad credentials", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"type":"security_exception"}}`)
		}, "401 authentication failed"},
		{"bad JSON reply", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			io.WriteString(w, `{"errors":true,"items":[`)
		}, "bad bulk reply"},
		{"item count mismatch", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			io.WriteString(w, `{"errors":true,"items":[{"create":{"status":201}}]}`)
		}, "1 items for 3 actions"},
		{"not Elasticsearch", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"errors":false}`)
		}, "product check failed"},
		{"hung server", func(w http.ResponseWriter, r *http.Request) {
			// The server notices the client leaving only once the body
			// is read.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			defer srv.CloseClientConnections()
			c := faultConfig(srv.URL)
			c.Timeout = config.Duration(300 * time.Millisecond)
			cl := newTestClient(t, c)
			b := pipeline.NewBatch(flowEvents(0, 3, time.Now()))
			err := cl.Publish(context.Background(), b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if st := statuses(b); st[pipeline.Pending] != 3 {
				t.Fatalf("statuses %v, want all 3 pending (retried by the pipeline)", st)
			}
			if got := cl.Stats().Retried; got != 3 {
				t.Fatalf("retried %d, want 3", got)
			}
		})
	}
}

// TestFaultUnreachableFirstHostFailsOver: a refused connection on the
// first host moves the same request to the second one.
func TestFaultUnreachableFirstHostFailsOver(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	srv, reqs := fakeES(t, func(req, item int) int { return 201 })
	cl := newTestClient(t, faultConfig(dead, srv.URL))
	for i := range 4 {
		b := publish(t, cl, flowEvents(i*10, 10, time.Now()))
		if st := statuses(b); st[pipeline.Acked] != 10 {
			t.Fatalf("batch %d: %v, want 10 acked", i, st)
		}
	}
	if reqs.Load() != 4 {
		t.Fatalf("healthy host got %d requests, want 4", reqs.Load())
	}
}

// TestFaultOutputBacksOffWhenNothingIsStored: consecutive failures wait
// init, 2*init, ... capped at max, and a success resets the wait.
func TestFaultOutputBacksOffWhenNothingIsStored(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		if fail.Load() {
			w.WriteHeader(503)
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"errors":false}`)
	}))
	defer srv.Close()
	c := faultConfig(srv.URL)
	c.Backoff = Backoff{Init: config.Duration(time.Millisecond), Max: config.Duration(4 * time.Millisecond)}
	cl := newTestClient(t, c)
	var got []time.Duration
	for range 5 {
		_ = cl.Publish(context.Background(), pipeline.NewBatch(flowEvents(0, 1, time.Now())))
		got = append(got, cl.backoff)
	}
	fail.Store(false)
	publish(t, cl, flowEvents(0, 1, time.Now()))
	got = append(got, cl.backoff)
	want := []time.Duration{1, 2, 4, 4, 4, 0}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff sequence %v, want %v ms", got, want)
		}
	}
}

func TestFaultBulkBodyIsCreateWithIDAndNamespace(t *testing.T) {
	var body bytes.Buffer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		io.Copy(&body, r.Body)
		io.WriteString(w, `{"errors":false}`)
	}))
	defer srv.Close()
	c := faultConfig(srv.URL)
	c.CompressionLevel = 0
	c.Namespace = "prod"
	cl := newTestClient(t, c)
	e := flowEvent(7, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	e.Fields["data_stream"] = pipeline.M{"type": "metrics", "dataset": "fleutan.flows", "namespace": "default"}
	publish(t, cl, []pipeline.Event{e})
	lines := strings.Split(strings.TrimSuffix(body.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("body has %d lines, want 2", len(lines))
	}
	if want := `{"create":{"_index":"metrics-fleutan.flows-prod","_id":"flow-0000007"}}`; lines[0] != want {
		t.Fatalf("action %s, want %s", lines[0], want)
	}
	if !strings.Contains(lines[1], `"data_stream":{"dataset":"fleutan.flows","namespace":"prod","type":"metrics"}`) {
		t.Fatalf("document does not carry the configured namespace: %s", lines[1])
	}
}

// TestFaultAPIKeyIsSentBase64Encoded: api_key id:key travels as
// "APIKey base64(id:key)" (go-elasticsearch spelling; the scheme is
// case-insensitive), the encoding Elasticsearch's API key service
// expects; username/password as basic auth; headers as configured.
func TestFaultAPIKeyIsSentBase64Encoded(t *testing.T) {
	cases := []struct {
		name     string
		apiKey   string
		user     string
		wantAuth string
	}{
		{"api key", "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw", "", "APIKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="},
		{"basic", "", "elastic", "Basic ZWxhc3RpYzpzM2NyZXQ="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var auth, custom atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth.Store(r.Header.Get("Authorization"))
				custom.Store(r.Header.Get("X-Fleutan-Test"))
				w.Header().Set("X-Elastic-Product", "Elasticsearch")
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, `{"errors":false}`)
			}))
			defer srv.Close()
			c := faultConfig(srv.URL)
			c.APIKey = tc.apiKey
			if tc.user != "" {
				c.Username, c.Password = tc.user, "s3cret"
			}
			c.Headers = map[string]string{"X-Fleutan-Test": "yes"}
			cl := newTestClient(t, c)
			publish(t, cl, flowEvents(0, 1, time.Now()))
			if got := auth.Load(); got != tc.wantAuth {
				t.Fatalf("Authorization %q, want %q", got, tc.wantAuth)
			}
			if got := custom.Load(); got != "yes" {
				t.Fatalf("custom header %q, want yes", got)
			}
		})
	}
}

// countingHandler counts log records by message.
type countingHandler struct {
	n *sync.Map
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	v, _ := h.n.LoadOrStore(r.Message, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestFaultNonIndexableIsLoggedOncePerReason: two batches with refused
// events give one warning, while every drop is counted.
func TestFaultNonIndexableIsLoggedOncePerReason(t *testing.T) {
	srv, _ := fakeES(t, func(req, item int) int {
		if item%2 == 0 {
			return 400
		}
		return 201
	})
	var logs sync.Map
	s := testSettings()
	s.Logger = slog.New(countingHandler{n: &logs})
	cl, err := NewClient(faultConfig(srv.URL), s)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 2 {
		publish(t, cl, flowEvents(0, 4, time.Now()))
	}
	if got := cl.Stats(); got != (Stats{Acked: 4, Dropped: 4}) {
		t.Fatalf("stats %+v, want 4 acked and 4 dropped", got)
	}
	n := 0
	logs.Range(func(k, v any) bool {
		n += int(v.(*atomic.Int64).Load())
		return true
	})
	if n != 1 {
		t.Fatalf("%d log records, want 1", n)
	}
}

// TestFaultDeadLetterFailureRetriesTheEvent: when the dead-letter index
// refuses too, the event is retried, not lost.
func TestFaultDeadLetterFailureRetriesTheEvent(t *testing.T) {
	srv, reqs := fakeES(t, func(req, item int) int {
		if req == 0 && item == 0 {
			return 400 // the event is refused
		}
		if req == 1 {
			return 503 // and so is its dead letter
		}
		return 201
	})
	c := faultConfig(srv.URL)
	c.NonIndexablePolicy = NonIndexablePolicy{Action: PolicyDeadLetterIndex, Index: "dlq"}
	cl := newTestClient(t, c)
	b := publish(t, cl, flowEvents(0, 3, time.Now()))
	if st, _ := b.Status(0); st != pipeline.Retry {
		t.Fatalf("refused event with a failed dead letter: %v, want retry", st)
	}
	if got := cl.Stats(); got != (Stats{Acked: 2, Retried: 1}) {
		t.Fatalf("stats %+v, want 2 acked, 1 retried", got)
	}
	if reqs.Load() != 2 {
		t.Fatalf("%d requests, want 2", reqs.Load())
	}
}
