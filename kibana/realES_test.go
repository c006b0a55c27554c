package kibana

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu/cpuinput"
	"github.com/fleutan/fleutanbeat/input/flows/flowsinput"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/paths/pathsinput"
	"github.com/fleutan/fleutanbeat/input/qdisc/qdiscinput"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func decodeRaw(t *testing.T, src string) config.Raw {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0")
}

// loopbackTraffic keeps a TCP connection on 127.0.0.1 busy until ctx ends,
// so the flows input sees a flow of this test with bytes both ways and an
// RTT sample, whatever else the host does.
func loopbackTraffic(ctx context.Context, t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-ctx.Done(); c.Close() }()
		_, _ = io.Copy(c, c) // echo
	}()
	go func() {
		defer wg.Done()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-ctx.Done(); c.Close() }()
		buf := make([]byte, 4096)
		for ctx.Err() == nil {
			if _, err := c.Write(buf); err != nil {
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

// shipRealEvents runs the real flows, cpu and qdisc inputs for a few
// periods into a pipeline whose only output is the real Elasticsearch
// output, as the agent wires them, and returns how many events were acked.
func shipRealEvents(t *testing.T, url, ns string, run time.Duration) int64 {
	t.Helper()
	metrics := pipeline.NewMetrics()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := esPipeline(ctx, t, url, ns, metrics)

	is := input.Settings{Logger: slog.New(slog.DiscardHandler), ProcRoot: "/proc", SysRoot: "/sys", DataPath: t.TempDir(), Metrics: metrics}
	inputs := []struct {
		name string
		new  input.Factory
		src  string
	}{
		// Loopback is included: on a test host the only TCP flows with RTT
		// samples are local ones (this test's, Elasticsearch's).
		{"flows", flowsinput.New, "period: 1s\ninclude_loopback: true\n"},
		{"cpu", cpuinput.New, "period: 1s\n"},
		// namespaces: all finds the test's named namespace with the mq
		// device (mqTraffic); flow_attribution: ebpf fails at start rather
		// than silently producing no scope: flow events.
		{"qdisc", qdiscinput.New, "period: 1s\nnamespaces: all\nflow_attribution: ebpf\n"},
		// Two peers through the routed topology, their paths changed
		// after the first round (pathsTraffic).
		{"paths", pathsinput.New, pathsInputConfig},
	}
	// The inputs run for at least run and until each has published three
	// collections (deltas need two): on a loaded machine loading the eBPF
	// programs alone can take longer than run.
	inCtx, stop := context.WithTimeout(ctx, run+time.Minute)
	defer stop()
	loopbackTraffic(inCtx, t)
	mqNetns := mqTraffic(inCtx, t)
	reroute := pathsTraffic(t)
	t.Logf("mq veth vk0 in network namespace %s", mqNetns)
	var wg sync.WaitGroup
	var counters []*collectionCounter
	errs := make([]error, len(inputs))
	for i, in := range inputs {
		it, err := in.new(decodeRaw(t, in.src), is)
		if err != nil {
			t.Fatalf("%s: %v", in.name, err)
		}
		out := p.Client(pipeline.ClientConfig{Input: in.name})
		if in.name == "paths" {
			out = &rerouting{Publisher: out, reroute: reroute}
		}
		pub := &collectionCounter{Publisher: out}
		counters = append(counters, pub)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := it.Run(inCtx, pub); err != nil && inCtx.Err() == nil {
				errs[i] = fmt.Errorf("%s: %w", in.name, err)
			}
		}()
	}
	start := time.Now()
	for inCtx.Err() == nil {
		enough := time.Since(start) >= run
		for _, c := range counters {
			enough = enough && c.collections() >= 3
		}
		if enough {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	wg.Wait()
	for i, c := range counters {
		t.Logf("%s: %d collections published", inputs[i].name, c.collections())
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), time.Minute)
	defer closeCancel()
	if n := p.Close(closeCtx); n != 0 {
		t.Fatalf("%d events undelivered", n)
	}
	acked, _ := metrics.Tree().GetValue("pipeline.events.acked")
	n, _ := acked.(int64)
	return n
}

// collectionCounter counts the collections an input published: the
// distinct timestamps of its events.
type collectionCounter struct {
	pipeline.Publisher
	mu    sync.Mutex
	last  time.Time
	count int
}

func (c *collectionCounter) Publish(ctx context.Context, events ...pipeline.Event) error {
	c.mu.Lock()
	for _, e := range events {
		if !e.Timestamp.Equal(c.last) {
			c.last = e.Timestamp
			c.count++
		}
	}
	c.mu.Unlock()
	return c.Publisher.Publish(ctx, events...)
}

func (c *collectionCounter) collections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// kqlClause is the KQL the generator writes: `field : "value"`,
// `field : true|false` or `field OP number`, joined by " and ".
var kqlClause = regexp.MustCompile(`^([a-z_.@]+) (:|>=|<=|>|<) ("[^"]*"|-?[0-9.]+|true|false)$`)

// kqlToQuery translates that subset into a bool filter; anything else is
// an error so that a new construct in the generator cannot go unchecked.
func kqlToQuery(kql string) (map[string]any, error) {
	var filter []any
	for _, cl := range strings.Split(kql, " and ") {
		m := kqlClause.FindStringSubmatch(strings.TrimSpace(cl))
		if m == nil {
			return nil, fmt.Errorf("KQL clause %q is outside the subset this test translates", cl)
		}
		field, op, val := m[1], m[2], m[3]
		if op == ":" {
			var v any = val
			if s, err := strconv.Unquote(val); err == nil {
				v = s
			} else if b, err := strconv.ParseBool(val); err == nil {
				v = b
			}
			filter = append(filter, map[string]any{"term": map[string]any{field: v}})
			continue
		}
		num, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("KQL clause %q: %s needs a number", cl, op)
		}
		rop := map[string]string{">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
		filter = append(filter, map[string]any{"range": map[string]any{field: map[string]any{rop: num}}})
	}
	return map[string]any{"bool": map[string]any{"filter": filter}}, nil
}

type lensColumn = struct {
	OperationType string         `json:"operationType"`
	SourceField   string         `json:"sourceField"`
	IsBucketed    bool           `json:"isBucketed"`
	DataType      string         `json:"dataType"`
	Params        map[string]any `json:"params"`
}

// metricAgg is the Elasticsearch metric aggregation of a Lens metric
// column, as Lens's esaggs expression builds it.
func metricAgg(c lensColumn) (map[string]any, error) {
	f := map[string]any{"field": c.SourceField}
	switch c.OperationType {
	case "average":
		return map[string]any{"avg": f}, nil
	case "sum", "max", "min":
		return map[string]any{c.OperationType: f}, nil
	case "unique_count":
		return map[string]any{"cardinality": f}, nil
	case "median":
		f["percents"] = []float64{50}
		return map[string]any{"percentiles": f}, nil
	case "percentile":
		p, ok := c.Params["percentile"].(float64)
		if !ok {
			return nil, fmt.Errorf("percentile column without params.percentile")
		}
		f["percents"] = []float64{p}
		return map[string]any{"percentiles": f}, nil
	}
	return nil, fmt.Errorf("metric operation %q not translated", c.OperationType)
}

// bucketAgg is the bucket aggregation of a Lens bucketed column; orderAgg
// is the metric it orders by when that metric is not its direct child.
func bucketAgg(l lensLayer, id string) (map[string]any, error) {
	c := l.Columns[id]
	switch c.OperationType {
	case "terms":
		size, _ := c.Params["size"].(float64)
		t := map[string]any{"field": c.SourceField, "size": int(size)}
		if ob, ok := c.Params["orderBy"].(map[string]any); ok && ob["type"] == "column" {
			oid, _ := ob["columnId"].(string)
			dir, _ := c.Params["orderDirection"].(string)
			path := "order_" + oid
			if oc := l.Columns[oid]; oc.OperationType == "percentile" {
				path += fmt.Sprintf("[%.1f]", oc.Params["percentile"].(float64))
			} else if oc.OperationType == "median" {
				path += "[50.0]"
			}
			t["order"] = map[string]any{path: dir}
		}
		return map[string]any{"terms": t}, nil
	case "date_histogram":
		// Lens's "auto" interval depends on the time picker; one second
		// is the collection period of this test.
		return map[string]any{"date_histogram": map[string]any{"field": c.SourceField, "fixed_interval": "1s", "min_doc_count": 1}}, nil
	case "range":
		var ranges []any
		rs, _ := c.Params["ranges"].([]any)
		for _, r := range rs {
			rm, _ := r.(map[string]any)
			out := map[string]any{}
			if v, ok := rm["from"].(float64); ok {
				out["from"] = v
			}
			if v, ok := rm["to"].(float64); ok {
				out["to"] = v
			}
			ranges = append(ranges, out)
		}
		if len(ranges) == 0 {
			return nil, fmt.Errorf("range column without ranges")
		}
		return map[string]any{"range": map[string]any{"field": c.SourceField, "ranges": ranges}}, nil
	}
	return nil, fmt.Errorf("bucket operation %q not translated", c.OperationType)
}

// layerAggs nests the bucket columns in column order and puts the metric
// columns in the innermost bucket (or at the top without buckets), as
// Lens does; a terms column ordered by a metric gets that metric as its
// own child too (Lens's orderAgg).
func layerAggs(l lensLayer) (aggs map[string]any, buckets, metrics []string, err error) {
	for _, id := range l.ColumnOrder {
		if l.Columns[id].IsBucketed {
			buckets = append(buckets, id)
		} else {
			metrics = append(metrics, id)
		}
	}
	inner := map[string]any{}
	for _, id := range metrics {
		a, err := metricAgg(l.Columns[id])
		if err != nil {
			return nil, nil, nil, fmt.Errorf("column %s: %w", id, err)
		}
		inner[id] = a
	}
	for i := len(buckets) - 1; i >= 0; i-- {
		id := buckets[i]
		b, err := bucketAgg(l, id)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("column %s: %w", id, err)
		}
		if ob, ok := l.Columns[id].Params["orderBy"].(map[string]any); ok && ob["type"] == "column" {
			oid, _ := ob["columnId"].(string)
			if oc, ok := l.Columns[oid]; !ok || oc.IsBucketed {
				return nil, nil, nil, fmt.Errorf("column %s orders by %s, not a metric column", id, oid)
			}
			a, err := metricAgg(l.Columns[oid])
			if err != nil {
				return nil, nil, nil, err
			}
			inner["order_"+oid] = a
		}
		b["aggs"] = inner
		inner = map[string]any{id: b}
	}
	return inner, buckets, metrics, nil
}

// leaf is one innermost bucket: its document count and the value of each
// metric column (nil when Elasticsearch returned null).
type leaf struct {
	path    []string
	docs    int
	metrics map[string]any
}

func metricValue(v map[string]any) any {
	if vals, ok := v["values"].(map[string]any); ok {
		for _, x := range vals { // one percent per column
			return x
		}
		return nil
	}
	return v["value"]
}

// leaves walks the response along the bucket columns.
func leaves(res map[string]any, buckets, metrics []string, path []string, docs int, out *[]leaf) {
	if len(buckets) == 0 {
		l := leaf{path: path, docs: docs, metrics: map[string]any{}}
		for _, m := range metrics {
			v, _ := res[m].(map[string]any)
			l.metrics[m] = metricValue(v)
		}
		*out = append(*out, l)
		return
	}
	agg, _ := res[buckets[0]].(map[string]any)
	bs, _ := agg["buckets"].([]any)
	for _, b := range bs {
		bm, _ := b.(map[string]any)
		n, _ := bm["doc_count"].(float64)
		if n == 0 {
			continue // a range with no flows in it
		}
		key := fmt.Sprint(bm["key"])
		if s, ok := bm["key_as_string"].(string); ok {
			key = s
		}
		leaves(bm, buckets[1:], metrics, append(append([]string(nil), path...), key), int(n), out)
	}
}

// ownTraffic is what the test itself produced, per visualization: a leaf
// whose bucket keys contain every key and whose metric is positive. It
// makes the buckets found this test's data, not whatever the host did.
func ownTraffic(self string) map[string]struct {
	keys   []string
	metric string
} {
	type want = struct {
		keys   []string
		metric string
	}
	return map[string]want{
		"fleutan-qdisc-queue-bytes":     {nil, "bytes"},
		"fleutan-qdisc-queue-packets":   {nil, "packets"},
		"fleutan-qdisc-top-flows":       {[]string{"10.78.0.2"}, "bytes"},
		"fleutan-flow-top-talkers-out":  {[]string{"127.0.0.1"}, "out"},
		"fleutan-flow-top-talkers-in":   {[]string{"127.0.0.1"}, "in"},
		"fleutan-flow-rtt-by-process":   {[]string{self}, "p50"},
		"fleutan-flow-rtt-by-peer":      {[]string{"127.0.0.1"}, "p50"},
		"fleutan-flow-bdp":              {[]string{self, "127.0.0.1"}, "bdp"},
		"fleutan-cpu-flows-per-process": {[]string{self}, "flows"},
	}
}

func hasOwn(ls []leaf, keys []string, metric string) bool {
	for _, lf := range ls {
		have := map[string]bool{}
		for _, k := range lf.path {
			have[k] = true
		}
		ok := true
		for _, k := range keys {
			ok = ok && have[k]
		}
		if v, _ := lf.metrics[metric].(float64); ok && v > 0 {
			return true
		}
	}
	return false
}

// TestRealLensLayersReturnBucketsFromShippedEvents ships real events of
// the three inputs through the Elasticsearch output, then checks every
// Lens visualization against that data: each field it uses is mapped with
// a type its operation accepts, and its layer, run as the equivalent
// aggregation with its query, returns non-empty buckets with values.
func TestRealLensLayersReturnBucketsFromShippedEvents(t *testing.T) {
	url := estest.URL(t)
	nstest.RequireRoot(t) // the inputs read every process's sockets and /proc entries
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ns := "kib" + hex.EncodeToString(b)
	acked := shipRealEvents(t, url, ns, 3500*time.Millisecond)
	t.Logf("namespace %s: %d events acked", ns, acked)
	if acked == 0 {
		t.Fatal("no event acked")
	}
	db := estest.NewClient(t, url)
	target := "metrics-fleutan.*-" + ns
	db.JSON("POST", "/"+target+"/_refresh", nil, nil)
	var counts struct {
		Aggregations struct {
			DS struct {
				Buckets []struct {
					Key   string `json:"key"`
					Count int    `json:"doc_count"`
				} `json:"buckets"`
			} `json:"ds"`
		} `json:"aggregations"`
	}
	db.JSON("POST", "/"+target+"/_search", map[string]any{"size": 0,
		"aggs": map[string]any{"ds": map[string]any{"terms": map[string]any{"field": "data_stream.dataset"}}}}, &counts)
	got := map[string]int{}
	for _, b := range counts.Aggregations.DS.Buckets {
		got[b.Key] = b.Count
	}
	t.Logf("documents per dataset: %v", got)
	for _, ds := range elasticsearch.Datasets {
		if got[ds] == 0 {
			t.Errorf("no %s documents in %s", ds, target)
		}
	}

	// The comm of this process (TASK_COMM_LEN 16 with the NUL), which is
	// process.name of its flows and CPU events.
	self := filepath.Base(os.Args[0])
	if len(self) > 15 {
		self = self[:15]
	}
	lenses, withBuckets := 0, 0
	for _, o := range parseBundle(t) {
		// The RDMA panels read events only the kernel matrix's guest
		// produces: TestRealRDMAPanelsFromRecordedEvents checks them.
		if o.Type != "lens" || isRDMAPanel(o.ID) {
			continue
		}
		lenses++
		t.Run(o.ID, func(t *testing.T) {
			st := o.Attributes["state"].(map[string]any)
			kql := st["query"].(map[string]any)["query"].(string)
			if fs, _ := st["filters"].([]any); len(fs) != 0 {
				t.Fatalf("filters %v: this test translates only the query", fs)
			}
			query, err := kqlToQuery(kql)
			if err != nil {
				t.Fatal(err)
			}
			layers, _ := lensState(t, o)
			for lid, l := range layers {
				// Every field the layer reads, as the real server maps it.
				var fields []string
				for _, c := range l.Columns {
					fields = append(fields, c.SourceField)
				}
				sort.Strings(fields)
				types := db.FieldTypes(target, fields...)
				for _, id := range l.ColumnOrder {
					c := l.Columns[id]
					typ, ok := types[c.SourceField]
					switch {
					case !ok:
						t.Errorf("layer %s column %s: field %s is not mapped in %s", lid, id, c.SourceField, target)
					case !fitsES(c.OperationType, typ):
						t.Errorf("layer %s column %s: %s on %s field %s", lid, id, c.OperationType, typ, c.SourceField)
					}
				}

				aggs, buckets, metrics, err := layerAggs(l)
				if err != nil {
					t.Fatalf("layer %s: %v", lid, err)
				}
				var res struct {
					Hits struct {
						Total struct {
							Value int `json:"value"`
						} `json:"total"`
					} `json:"hits"`
					Aggregations map[string]any `json:"aggregations"`
				}
				body := map[string]any{"size": 0, "track_total_hits": true, "query": query, "aggs": aggs}
				db.JSON("POST", "/"+target+"/_search", body, &res)
				var ls []leaf
				leaves(res.Aggregations, buckets, metrics, nil, res.Hits.Total.Value, &ls)
				if len(ls) == 0 {
					t.Errorf("layer %s: no non-empty bucket (%d documents match %q)", lid, res.Hits.Total.Value, kql)
					continue
				}
				nulls := 0
				for _, lf := range ls {
					for _, m := range metrics {
						if lf.metrics[m] == nil {
							nulls++
							t.Errorf("layer %s: bucket %v (%d documents): metric %s (%s of %s) is null",
								lid, lf.path, lf.docs, m, l.Columns[m].OperationType, l.Columns[m].SourceField)
						}
					}
				}
				if w, ok := ownTraffic(self)[o.ID]; ok && !hasOwn(ls, w.keys, w.metric) {
					t.Errorf("layer %s: no bucket with keys %v and %s > 0 from this test's traffic: %+v", lid, w.keys, w.metric, ls)
				}
				if nulls == 0 {
					withBuckets++
				}
				t.Logf("layer %s: %d documents, %d buckets, first %v %v", lid, res.Hits.Total.Value, len(ls), ls[0].path, ls[0].metrics)
			}
		})
	}
	if lenses != 21 {
		t.Errorf("%d Lens visualizations, want 21", lenses)
	}
	if withBuckets != 21 {
		t.Errorf("%d of %d visualizations return buckets with values, want all 21", withBuckets, lenses)
	}
}

// fitsES says whether an operation can run on a field the server maps as
// typ: the aggregatable types each aggregation accepts.
func fitsES(op, typ string) bool {
	numeric := typ == "long" || typ == "double" || typ == "integer" || typ == "float" || typ == "scaled_float" || typ == "unsigned_long"
	switch op {
	case "sum", "average", "max", "min", "median", "percentile", "range":
		return numeric
	case "terms":
		return numeric || typ == "keyword" || typ == "ip" || typ == "boolean"
	case "unique_count":
		return numeric || typ == "keyword" || typ == "ip" || typ == "boolean" || typ == "date"
	case "date_histogram":
		return typ == "date" || typ == "date_nanos"
	}
	return false
}
