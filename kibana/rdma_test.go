package kibana

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// rdmaEvents is what the rdma and cpu inputs published in the kernel
// matrix's guest around rping over soft-RoCE (see testdata/README.md).
const rdmaEvents = "testdata/rdma-events.ndjson"

// isRDMAPanel: the RDMA dashboard's visualizations, checked against the
// recorded events (the host has no RDMA to ship them live).
func isRDMAPanel(id string) bool { return strings.HasPrefix(id, "fleutan-rdma-") }

type recorded struct {
	series string
	ts     time.Time
	fields pipeline.M
	flat   map[string]any // dotted keys; data_stream.dataset as the pipeline sets it
}

// loadRecorded reads the recording. Numbers stay int64 where they are
// integers, as the inputs publish them.
func loadRecorded(t *testing.T) []recorded {
	t.Helper()
	b, err := os.ReadFile(rdmaEvents)
	if err != nil {
		t.Fatal(err)
	}
	var out []recorded
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r struct {
			Series string          `json:"series"`
			Event  json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", rdmaEvents, line, err)
		}
		d := json.NewDecoder(bytes.NewReader(r.Event))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("%s:%d: event: %v", rdmaEvents, line, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, m["@timestamp"].(string))
		if err != nil {
			t.Fatalf("%s:%d: @timestamp: %v", rdmaEvents, line, err)
		}
		delete(m, "@timestamp")
		f := toM(m)
		rec := recorded{series: r.Series, ts: ts, fields: f, flat: map[string]any{}}
		f.Flatten(func(k string, v any) { rec.flat[k] = v })
		rec.flat["data_stream.dataset"] = rec.flat["event.dataset"]
		out = append(out, rec)
	}
	if len(out) == 0 {
		t.Fatalf("%s is empty", rdmaEvents)
	}
	return out
}

func toM(m map[string]any) pipeline.M {
	out := make(pipeline.M, len(m))
	for k, v := range m {
		out[k] = toValue(v)
	}
	return out
}

func toValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return toM(x)
	case []any:
		for i := range x {
			x[i] = toValue(x[i])
		}
		return x
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// num is a recorded value as a float64.
func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// key is a bucket key as the aggregation walk (leaves) writes it.
func key(v any) string {
	if n, ok := v.(int64); ok {
		return fmt.Sprint(float64(n)) // Elasticsearch returns numeric keys as JSON numbers
	}
	return fmt.Sprint(v)
}

// matchKQL evaluates the generator's KQL subset on one document, as
// kqlToQuery translates it for Elasticsearch, but on the recorded values.
func matchKQL(t *testing.T, kql string, doc map[string]any) bool {
	t.Helper()
	for _, cl := range strings.Split(kql, " and ") {
		m := kqlClause.FindStringSubmatch(strings.TrimSpace(cl))
		if m == nil {
			t.Fatalf("KQL clause %q outside the subset", cl)
		}
		v, ok := doc[m[1]]
		if !ok {
			return false
		}
		if m[2] == ":" {
			want := m[3]
			if s, err := strconv.Unquote(want); err == nil {
				if v != s {
					return false
				}
			} else if fmt.Sprint(v) != want {
				return false
			}
			continue
		}
		x, ok := num(v)
		lim, err := strconv.ParseFloat(m[3], 64)
		if !ok || err != nil {
			return false
		}
		if !map[string]bool{">": x > lim, ">=": x >= lim, "<": x < lim, "<=": x <= lim}[m[2]] {
			return false
		}
	}
	return true
}

// expectLeaves computes a layer's innermost buckets and metric values
// from the recorded documents the way Lens's aggregation defines them:
// terms by value (a bucket per distinct value; the test fails when there
// are more than the column's size, where the order would decide), the
// date histogram in one-second buckets, sum (0 without values), max and
// average (null without values) and unique count.
func expectLeaves(t *testing.T, l lensLayer, docs []map[string]any) map[string]leaf {
	t.Helper()
	var buckets, metrics []string
	for _, id := range l.ColumnOrder {
		if l.Columns[id].IsBucketed {
			buckets = append(buckets, id)
		} else {
			metrics = append(metrics, id)
		}
	}
	groups := map[string][]map[string]any{}
	paths := map[string][]string{}
	perParent := map[string]map[string]bool{} // distinct keys of column i under a parent path
	for _, d := range docs {
		var path []string
		ok := true
		for i, id := range buckets {
			c := l.Columns[id]
			v, has := d[c.SourceField]
			if !has {
				ok = false
				break
			}
			var k string
			switch c.OperationType {
			case "terms":
				k = key(v)
			case "date_histogram":
				ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v))
				if err != nil {
					t.Fatalf("%s %v: %v", c.SourceField, v, err)
				}
				k = ts.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05.000Z")
			default:
				t.Fatalf("bucket operation %s not evaluated here", c.OperationType)
			}
			parent := strconv.Itoa(i) + "|" + strings.Join(path, "|")
			if perParent[parent] == nil {
				perParent[parent] = map[string]bool{}
			}
			perParent[parent][k] = true
			if size, _ := c.Params["size"].(float64); c.OperationType == "terms" && len(perParent[parent]) > int(size) {
				t.Fatalf("column %s: more than %d values under %v: the bucket order would decide which show", id, int(size), path)
			}
			path = append(path, k)
		}
		if !ok {
			continue
		}
		pk := strings.Join(path, "|")
		groups[pk] = append(groups[pk], d)
		paths[pk] = path
	}
	out := map[string]leaf{}
	for pk, ds := range groups {
		lf := leaf{path: paths[pk], docs: len(ds), metrics: map[string]any{}}
		for _, id := range metrics {
			c := l.Columns[id]
			var vals []float64
			distinct := map[string]bool{}
			for _, d := range ds {
				v, has := d[c.SourceField]
				if !has {
					continue
				}
				distinct[fmt.Sprint(v)] = true
				if x, ok := num(v); ok {
					vals = append(vals, x)
				}
			}
			switch c.OperationType {
			case "sum":
				s := 0.0
				for _, x := range vals {
					s += x
				}
				lf.metrics[id] = s
			case "max":
				if len(vals) == 0 {
					lf.metrics[id] = nil
					continue
				}
				mx := vals[0]
				for _, x := range vals {
					mx = math.Max(mx, x)
				}
				lf.metrics[id] = mx
			case "average":
				if len(vals) == 0 {
					lf.metrics[id] = nil
					continue
				}
				s := 0.0
				for _, x := range vals {
					s += x
				}
				lf.metrics[id] = s / float64(len(vals))
			case "unique_count":
				lf.metrics[id] = float64(len(distinct))
			default:
				t.Fatalf("metric operation %s not evaluated here", c.OperationType)
			}
		}
		out[pk] = lf
	}
	return out
}

// TestRealRDMAPanelsFromRecordedEvents indexes the recorded rdma and cpu
// events into a real Elasticsearch through the agent's pipeline and
// Elasticsearch output (templates installed), runs every RDMA
// visualization's layer as its aggregation, and compares each bucket's
// document count and metric values with the same figures computed here
// from the recording; a few of them are also stated outright.
func TestRealRDMAPanelsFromRecordedEvents(t *testing.T) {
	url := estest.URL(t)
	recs := loadRecorded(t)
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ns := "kibrdma" + hex.EncodeToString(b)
	metrics := pipeline.NewMetrics()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := esPipeline(ctx, t, url, ns, metrics)
	clients := map[string]pipeline.Publisher{}
	for _, r := range recs {
		ds, _ := r.fields.GetString("event.dataset")
		c := clients[ds]
		if c == nil {
			c = p.Client(pipeline.ClientConfig{Input: strings.TrimPrefix(ds, "fleutan.")})
			clients[ds] = c
		}
		if err := c.Publish(ctx, pipeline.Event{Timestamp: r.ts, Fields: r.fields.Clone(), Series: r.series}); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Close(ctx); n != 0 {
		t.Fatalf("%d events undelivered", n)
	}
	acked, _ := metrics.Tree().GetValue("pipeline.events.acked")
	if n, _ := acked.(int64); n != int64(len(recs)) {
		t.Fatalf("%d events acked, want the %d recorded", n, len(recs))
	}
	db := estest.NewClient(t, url)
	target := "metrics-fleutan.*-" + ns
	db.JSON("POST", "/"+target+"/_refresh", nil, nil)
	var cnt struct {
		Count int `json:"count"`
	}
	db.JSON("POST", "/"+target+"/_count", map[string]any{}, &cnt)
	if cnt.Count != len(recs) {
		t.Fatalf("%d documents in %s, want %d", cnt.Count, target, len(recs))
	}
	docs := make([]map[string]any, len(recs))
	for i, r := range recs {
		d := map[string]any{"@timestamp": r.ts.UTC().Format(time.RFC3339Nano)}
		for k, v := range r.flat {
			d[k] = v
		}
		docs[i] = d
	}

	got := map[string]map[string]leaf{} // by visualization, then bucket path
	panels := 0
	for _, o := range parseBundle(t) {
		if o.Type != "lens" || !isRDMAPanel(o.ID) {
			continue
		}
		panels++
		st := o.Attributes["state"].(map[string]any)
		kql := st["query"].(map[string]any)["query"].(string)
		query, err := kqlToQuery(kql)
		if err != nil {
			t.Fatalf("%s: %v", o.ID, err)
		}
		var matching []map[string]any
		for _, d := range docs {
			if matchKQL(t, kql, d) {
				matching = append(matching, d)
			}
		}
		layers, _ := lensState(t, o)
		for lid, l := range layers {
			var fields []string
			for _, c := range l.Columns {
				fields = append(fields, c.SourceField)
			}
			sort.Strings(fields)
			types := db.FieldTypes(target, fields...)
			for id, c := range l.Columns {
				if typ, ok := types[c.SourceField]; !ok || !fitsES(c.OperationType, typ) {
					t.Errorf("%s column %s: %s on field %s mapped as %q", o.ID, id, c.OperationType, c.SourceField, typ)
				}
			}
			aggs, buckets, mets, err := layerAggs(l)
			if err != nil {
				t.Fatalf("%s layer %s: %v", o.ID, lid, err)
			}
			var res struct {
				Hits struct {
					Total struct {
						Value int `json:"value"`
					} `json:"total"`
				} `json:"hits"`
				Aggregations map[string]any `json:"aggregations"`
			}
			db.JSON("POST", "/"+target+"/_search", map[string]any{"size": 0, "track_total_hits": true, "query": query, "aggs": aggs}, &res)
			if res.Hits.Total.Value != len(matching) {
				t.Errorf("%s: %d documents match %q in Elasticsearch, %d in the recording", o.ID, res.Hits.Total.Value, kql, len(matching))
			}
			var ls []leaf
			leaves(res.Aggregations, buckets, mets, nil, res.Hits.Total.Value, &ls)
			want := expectLeaves(t, l, matching)
			if len(ls) == 0 || len(ls) != len(want) {
				t.Errorf("%s: %d buckets from Elasticsearch, %d computed from the recording", o.ID, len(ls), len(want))
			}
			have := map[string]leaf{}
			for _, lf := range ls {
				pk := strings.Join(lf.path, "|")
				have[pk] = lf
				w, ok := want[pk]
				if !ok {
					t.Errorf("%s: bucket %v (%d documents) is not in the recording", o.ID, lf.path, lf.docs)
					continue
				}
				if lf.docs != w.docs {
					t.Errorf("%s: bucket %v: %d documents, recording %d", o.ID, lf.path, lf.docs, w.docs)
				}
				for _, m := range mets {
					if !sameValue(lf.metrics[m], w.metrics[m]) {
						t.Errorf("%s: bucket %v: %s (%s of %s) is %v, recording gives %v", o.ID, lf.path, m,
							l.Columns[m].OperationType, l.Columns[m].SourceField, lf.metrics[m], w.metrics[m])
					}
				}
			}
			for pk, w := range want {
				if _, ok := have[pk]; !ok {
					t.Errorf("%s: recording has bucket %v (%d documents), Elasticsearch none", o.ID, w.path, w.docs)
				}
			}
			got[o.ID] = have
			t.Logf("%s: %d documents, %d buckets", o.ID, res.Hits.Total.Value, len(ls))
		}
	}
	if panels != 6 {
		t.Errorf("%d RDMA visualizations, want 6", panels)
	}

	// What the recording is known to hold (testdata/README.md): rping's
	// client and server, one RC queue pair each, connected from an
	// ephemeral port to 10.77.0.1:7474 over one rxe device.
	metric := func(vis, path, m string) any {
		lf, ok := got[vis][path]
		if !ok {
			t.Errorf("%s: no bucket %q", vis, path)
			return nil
		}
		return lf.metrics[m]
	}
	if v := metric("fleutan-rdma-process-qps-cores", "rping", "qps"); v != 1.0 {
		t.Errorf("rping's max queue pairs %v, want 1", v)
	}
	if v := metric("fleutan-rdma-endpoints", "10.77.0.1|10.77.0.1|7474", "conns"); v != 1.0 {
		t.Errorf("connections 10.77.0.1 -> 10.77.0.1:7474: %v, want 1", v)
	}
	if v, _ := metric("fleutan-rdma-endpoints", "10.77.0.1|10.77.0.1|7474", "sq").(float64); v <= 0 {
		t.Errorf("send PSN advance of the connection %v, want positive", v)
	}
	var dev string // the device rping's queue pairs are on
	for _, r := range recs {
		if r.flat["fleutan.rdma.scope"] == "qp" {
			dev, _ = r.flat["fleutan.rdma.device"].(string)
		}
	}
	sent, _ := metric("fleutan-rdma-port-counters", dev+"|sent_pkts", "delta").(float64)
	psn, _ := metric("fleutan-rdma-endpoints", "10.77.0.1|10.77.0.1|7474", "sq").(float64)
	// Both ends send on the one device: its sent packets are at least the
	// two queue pairs' send PSN advance.
	if sent < psn {
		t.Errorf("%s sent_pkts increase %v, less than the connection's send PSN advance %v", dev, sent, psn)
	}
}

// sameValue compares a metric from Elasticsearch with the computed one:
// equal, or both null, or within a relative 1e-9 for averages of
// fractions.
func sameValue(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, ok1 := a.(float64)
	y, ok2 := b.(float64)
	if !ok1 || !ok2 {
		return false
	}
	return x == y || math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
}
