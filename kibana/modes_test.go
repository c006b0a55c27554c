package kibana

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows/flowsinput"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestFlowLensesAgreeAcrossReportModes runs the flows input twice on the
// same loopback connections, once with report: all and once with report:
// active (heartbeat 3), each into its own data stream namespace of the
// real Elasticsearch. One connection sends every period, one in two
// periods only, one never. Every Lens layer on fleutan.flows, run as the
// aggregation Kibana sends (time buckets of one period), gives the same
// buckets and values on both, while active stores fewer documents.
func TestFlowLensesAgreeAcrossReportModes(t *testing.T) {
	url := estest.URL(t)
	nstest.RequireRoot(t) // process attribution reads every process's fds
	const periods = 10
	// Two seconds, not one: the two inputs tick on their own clocks, and a
	// collection delayed by more than half a period on a loaded machine
	// (seen at 1 s under a load average of 30) lands in the next bucket
	// for one mode only.
	const period = 2 * time.Second

	// The connections exist before the first collection, so that both
	// inputs see them from the start; no keep-alive probes, so that only
	// the test's exchanges move their counters.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	d := net.Dialer{KeepAlive: -1}
	var conns []net.Conn
	for range 3 {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	exchange := func(c net.Conn, n int) {
		buf := make([]byte, n)
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	modes := []string{flowsinput.ReportAll, flowsinput.ReportActive}
	type run struct {
		ns      string
		p       *pipeline.Pipeline
		metrics *pipeline.Metrics
		done    chan error
	}
	runs := make([]*run, len(modes))
	inCtx, stop := context.WithCancel(ctx)
	defer stop()
	for i, mode := range modes {
		r := &run{ns: "mode" + mode + id, metrics: pipeline.NewMetrics(), done: make(chan error, 1)}
		r.p = esPipeline(ctx, t, url, r.ns, r.metrics)
		src := fmt.Sprintf("period: %s\nprotocols: [tcp]\nstates: [established]\nports: {include: [%s]}\nreport: %s\nheartbeat: 3\n", period, port, mode)
		is := input.Settings{Logger: slog.New(slog.DiscardHandler), ProcRoot: "/proc", SysRoot: "/sys", DataPath: t.TempDir(), Metrics: r.metrics}
		in, err := flowsinput.New(decodeRaw(t, src), is)
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = r
		go func() { r.done <- in.Run(inCtx, r.p.Client(pipeline.ClientConfig{Input: "flows"})) }()
	}
	// Both inputs tick together; the traffic of a period runs after both
	// collected and settles (delayed ACKs) well before the next tick.
	waitAll := func(n int64) {
		t.Helper()
		for _, r := range runs {
			for r.metrics.Counter("input.flows.collections").Load() < n {
				select {
				case err := <-r.done:
					t.Fatalf("%s: Run ended: %v", r.ns, err)
				case <-ctx.Done():
					t.Fatalf("%s: collection %d not published", r.ns, n)
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}
	for i := 1; i <= periods; i++ {
		waitAll(int64(i))
		exchange(conns[0], 1000*i)
		if i%2 == 0 {
			exchange(conns[1], 333)
		}
		time.Sleep(300 * time.Millisecond)
	}
	waitAll(periods + 1)
	stop()
	for _, r := range runs {
		if err := <-r.done; err != nil {
			t.Fatalf("%s: %v", r.ns, err)
		}
		closeCtx, closeCancel := context.WithTimeout(context.Background(), time.Minute)
		n := r.p.Close(closeCtx)
		closeCancel()
		if n != 0 {
			t.Fatalf("%s: %d events undelivered", r.ns, n)
		}
	}

	db := estest.NewClient(t, url)
	docs := map[string]int{}
	var first time.Time
	for _, r := range runs {
		target := "metrics-fleutan.flows-" + r.ns
		db.JSON("POST", "/"+target+"/_refresh", nil, nil)
		var res struct {
			Hits struct {
				Total struct {
					Value int `json:"value"`
				} `json:"total"`
				Hits []struct {
					Source struct {
						Timestamp time.Time `json:"@timestamp"`
					} `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		// Flow events only: the per-process rollups are compared below.
		db.JSON("POST", "/"+target+"/_search", map[string]any{"size": 1, "track_total_hits": true,
			"query": map[string]any{"bool": map[string]any{"must_not": map[string]any{"term": map[string]any{"fleutan.flow.scope": "process"}}}},
			"sort":  []any{map[string]any{"@timestamp": "asc"}}}, &res)
		docs[r.ns] = res.Hits.Total.Value
		if len(res.Hits.Hits) > 0 && (first.IsZero() || res.Hits.Hits[0].Source.Timestamp.Before(first)) {
			first = res.Hits.Hits[0].Source.Timestamp
		}
	}
	all, active := docs[runs[0].ns], docs[runs[1].ns]
	t.Logf("documents: report: all %d, report: active %d", all, active)
	// Six sockets for 11 collections under all; under active the idle
	// connection's two sockets only at collections 0, 3, 6, 9.
	if all != 6*(periods+1) || active >= all {
		t.Errorf("documents: all %d (want %d), active %d (want fewer)", all, 6*(periods+1), active)
	}
	// The six sockets are this test process's: one rollup per collection
	// in both modes, with the same sums, equal to those of the flow
	// events (report: all).
	var rolled [2][3]float64
	for i, r := range runs {
		var res struct {
			Aggregations map[string]struct {
				Value float64 `json:"value"`
			} `json:"aggregations"`
		}
		sum := func(f string) map[string]any { return map[string]any{"sum": map[string]any{"field": f}} }
		db.JSON("POST", "/metrics-fleutan.flows-"+r.ns+"/_search", map[string]any{"size": 0,
			"query": map[string]any{"term": map[string]any{"fleutan.flow.scope": "process"}},
			"aggs": map[string]any{"n": map[string]any{"value_count": map[string]any{"field": "fleutan.flow.scope"}},
				"out": sum("fleutan.flow.rollup.delta.bytes_out"), "in": sum("fleutan.flow.rollup.delta.bytes_in")}}, &res)
		rolled[i] = [3]float64{res.Aggregations["n"].Value, res.Aggregations["out"].Value, res.Aggregations["in"].Value}
	}
	var flowSums struct {
		Aggregations map[string]struct {
			Value float64 `json:"value"`
		} `json:"aggregations"`
	}
	db.JSON("POST", "/metrics-fleutan.flows-"+runs[0].ns+"/_search", map[string]any{"size": 0,
		"aggs": map[string]any{"out": map[string]any{"sum": map[string]any{"field": "fleutan.flow.delta.bytes_out"}},
			"in": map[string]any{"sum": map[string]any{"field": "fleutan.flow.delta.bytes_in"}}}}, &flowSums)
	t.Logf("rollups: all %v, active %v (count, bytes out, bytes in); flow events %v out, %v in",
		rolled[0], rolled[1], flowSums.Aggregations["out"].Value, flowSums.Aggregations["in"].Value)
	if rolled[0] != rolled[1] || rolled[0][0] != periods+1 || rolled[0][1] != flowSums.Aggregations["out"].Value ||
		rolled[0][2] != flowSums.Aggregations["in"].Value || rolled[0][1] == 0 {
		t.Errorf("rollups: all %v, active %v (count, bytes out, bytes in), want %d rollups in both with the flow events' sums %v, %v",
			rolled[0], rolled[1], periods+1, flowSums.Aggregations["out"].Value, flowSums.Aggregations["in"].Value)
	}

	// Time buckets of one period, their bounds half a period away from
	// the collections, as Kibana's interval would be at this zoom.
	offset := (first.Sub(first.Truncate(period)) + period/2) % period

	compared := 0
	for _, o := range parseBundle(t) {
		st, _ := o.Attributes["state"].(map[string]any)
		if o.Type != "lens" || !strings.Contains(fmt.Sprint(st["query"]), "fleutan.flows") {
			continue
		}
		kql := st["query"].(map[string]any)["query"].(string)
		query, err := kqlToQuery(kql)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := lensState(t, o)
		for lid, l := range layers {
			aggs, buckets, metrics, err := layerAggs(l)
			if err != nil {
				t.Fatalf("%s layer %s: %v", o.ID, lid, err)
			}
			setHistogram(aggs, fmt.Sprintf("%dms", period.Milliseconds()), fmt.Sprintf("%dms", offset.Milliseconds()))
			got := make([][]leaf, len(runs))
			for i, r := range runs {
				var res struct {
					Aggregations map[string]any `json:"aggregations"`
				}
				db.JSON("POST", "/metrics-fleutan.flows-"+r.ns+"/_search", map[string]any{"size": 0, "query": query, "aggs": aggs}, &res)
				leaves(res.Aggregations, buckets, metrics, nil, 0, &got[i])
				// What the panel shows: bucket keys and metric values, not
				// how many documents made them.
				for j := range got[i] {
					got[i][j].docs = 0
				}
			}
			if len(got[0]) == 0 {
				t.Errorf("%s layer %s: no buckets from this test's traffic", o.ID, lid)
			}
			if !reflect.DeepEqual(got[0], got[1]) {
				t.Errorf("%s layer %s differs between the modes:\nall:    %+v\nactive: %+v", o.ID, lid, got[0], got[1])
			}
			compared++
		}
	}
	if compared != 8 {
		t.Errorf("%d flows Lens layers compared, want 8", compared)
	}
}

// setHistogram sets the interval and offset of every date histogram in aggs.
func setHistogram(aggs map[string]any, interval, offset string) {
	for k, v := range aggs {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if k == "date_histogram" {
			m["fixed_interval"] = interval
			m["offset"] = offset
			continue
		}
		setHistogram(m, interval, offset)
	}
}

// esPipeline is a pipeline whose only output is the real Elasticsearch
// output with its templates installed, into data streams of namespace
// ns, wired as the agent wires it.
func esPipeline(ctx context.Context, t *testing.T, url, ns string, metrics *pipeline.Metrics) *pipeline.Pipeline {
	t.Helper()
	osets := output.Settings{Logger: slog.New(slog.DiscardHandler), Beat: "fleutanbeat", Version: "test", Metrics: metrics}
	c := elasticsearch.DefaultConfig()
	c.Hosts = []string{url}
	c.Namespace = ns
	c.Timeout = config.Duration(30 * time.Second)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := elasticsearch.Setup(ctx, c, osets); err != nil {
		t.Fatalf("installing templates: %v", err)
	}
	g, err := elasticsearch.NewGroup(c, osets)
	if err != nil {
		t.Fatal(err)
	}
	q := pipeline.MemQueueConfig{Events: 4096}
	q.Flush.MinEvents = 64
	q.Flush.Timeout = config.Duration(100 * time.Millisecond)
	p := pipeline.New(pipeline.Settings{
		Metrics: metrics, Queue: q, Outputs: g.Clients, BatchSize: g.BatchSize,
		Namespace: g.Namespace, Encode: codec.AppendFields,
		Agent: pipeline.AgentInfo{ID: "kibana-test-agent", Name: "kibana-test", Type: "fleutanbeat", Version: "test", EphemeralID: ns},
	})
	p.Start()
	return p
}
