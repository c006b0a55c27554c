package kibana

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/paths/pathsinput"
	"github.com/fleutan/fleutanbeat/input/paths/pathtest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// pathsPort is the server port of the flows whose paths the Kibana tests
// trace: the paths input selects them by it, so no other namespace's
// flows on this host are traced.
const pathsPort = 8181

// pathsInputConfig traces every second the peers of the client's flows
// to the server (the server's own flows have the client as their peer).
const pathsInputConfig = "interval: 1s\nnamespaces: all\nrate: 1000\nprobe_timeout: 1s\nmax_ttl: 8\nports: {include: [\"8181\"]}\ncidrs: {include: [10.80.4.0/24, \"fd80:4::/64\"]}\n"

// pathsTraffic builds the routed topology with one TCP flow from the
// client to the server on IPv4 and one on IPv6, and returns a function
// that moves both onto the parallel router r2b (the route change the
// paths events then report).
func pathsTraffic(t *testing.T) (reroute func()) {
	t.Helper()
	tp := pathtest.New(t)
	tp.Connect(t, pathsPort)
	return func() { tp.Reroute(t) }
}

// rerouting passes events on and, once the first round's two path events
// are published, changes the route, so the next round reports both paths
// changed.
type rerouting struct {
	pipeline.Publisher
	reroute func()
	mu      sync.Mutex
	paths   int
}

func (r *rerouting) Publish(ctx context.Context, events ...pipeline.Event) error {
	// Counted before the pipeline takes the events.
	n := 0
	for _, e := range events {
		if v, _ := e.Fields.GetValue("fleutan.paths.type"); v == "path" {
			n++
		}
	}
	if err := r.Publisher.Publish(ctx, events...); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paths < 2 && r.paths+n >= 2 {
		r.reroute()
	}
	r.paths += n
	return nil
}

func (r *rerouting) pathEvents() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paths
}

// shipPathsEvents ships real paths events (two peers, a round before and
// rounds after a route change) through the Elasticsearch output into a
// namespace of their own and returns the data stream.
func shipPathsEvents(t *testing.T, url string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ns := "paths" + hex.EncodeToString(b)
	reroute := pathsTraffic(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	metrics := pipeline.NewMetrics()
	p := esPipeline(ctx, t, url, ns, metrics)
	in, err := pathsinput.New(decodeRaw(t, pathsInputConfig), input.Settings{Logger: slog.New(slog.DiscardHandler), ProcRoot: "/proc", Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	pub := &rerouting{Publisher: p.Client(pipeline.ClientConfig{Input: "paths"}), reroute: reroute}
	inCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- in.Run(inCtx, pub) }()
	// The round before the change, the changed one and one after it.
	for pub.pathEvents() < 6 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), time.Minute)
	defer closeCancel()
	if n := p.Close(closeCtx); n != 0 {
		t.Fatalf("%d events undelivered", n)
	}
	target := "metrics-fleutan.paths-" + ns
	estest.NewClient(t, url).JSON("POST", "/"+target+"/_refresh", nil, nil)
	return target
}

// TestPathsEventsMappedAsTemplated reads back the type the server gave
// every fleutan.paths field of real paths events: each is the template's.
func TestPathsEventsMappedAsTemplated(t *testing.T) {
	url := estest.URL(t)
	nstest.RequireRoot(t)
	target := shipPathsEvents(t, url)
	db := estest.NewClient(t, url)
	var count struct {
		Count int `json:"count"`
	}
	db.JSON("POST", "/"+target+"/_count", map[string]any{"query": map[string]any{"term": map[string]any{"fleutan.paths.changed": true}}}, &count)
	if count.Count != 2 {
		t.Errorf("%d changed path documents, want 2 (the v4 and the v6 peer after the route change)", count.Count)
	}
	want := map[string]string{}
	for _, f := range elasticsearch.Fields() {
		if f.Dataset == "fleutan.paths" {
			want[f.Name] = f.Type
		}
	}
	// What the issue asks of the mapping, whatever the template says.
	for n, typ := range map[string]string{
		"fleutan.paths.peer.ip": "ip", "fleutan.paths.hops.addrs": "ip", "fleutan.paths.hop.addrs": "ip",
		"fleutan.paths.hops.rtt_min_us": "double", "fleutan.paths.hop.rtt_mean_us": "double",
		"fleutan.paths.hash": "keyword", "fleutan.paths.changed": "boolean",
		"fleutan.paths.first_divergent_hop.addrs": "ip", "fleutan.paths.flows.community_ids": "keyword",
	} {
		if want[n] != typ {
			t.Errorf("template maps %s as %q, want %s", n, want[n], typ)
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	got := db.FieldTypes(target, names...)
	for _, n := range names {
		if got[n] != want[n] {
			t.Errorf("%s: mapped %q, the template says %q", n, got[n], want[n])
		}
	}
	// Nothing under fleutan.paths was mapped dynamically.
	dyn := db.FieldTypes(target, "fleutan.paths.*")
	for n, typ := range dyn {
		if _, ok := want[n]; !ok && !strings.HasSuffix(n, ".keyword") {
			t.Errorf("%s (%s) is mapped but not in the template", n, typ)
		}
	}
	t.Logf("%d fleutan.paths fields mapped as templated", len(names))
}

// TestPathsDashboardAnswersWithTheTopologysNumbers runs every layer of
// the Paths dashboard on real paths events of the routed topology, as
// the real-event test does for all lenses, and compares each bucket with
// what the topology and the route change make: two peers whose path
// changed once each, through r2b (10.80.5.2, fd80:5::2) from the second
// hop on; eleven hop addresses with a positive RTT, each on one peer's
// paths; two distinct four-hop paths per peer, each used by one flow.
func TestPathsDashboardAnswersWithTheTopologysNumbers(t *testing.T) {
	url := estest.URL(t)
	nstest.RequireRoot(t)
	target := shipPathsEvents(t, url)
	db := estest.NewClient(t, url)
	v4, v6 := "10.80.4.2", "fd80:4::2"
	hops := map[string]float64{}
	for _, a := range []string{"10.80.1.2", "10.80.2.2", "10.80.3.2", "10.80.4.2", "10.80.5.2",
		"fd80:1::2", "fd80:2::2", "fd80:3::2", "fd80:4::2", "fd80:5::2", "fd80:6::2"} {
		hops[a] = 1
	}
	for _, tc := range []struct {
		id string
		// key picks a leaf's bucket key (the last), metric the value to
		// compare; want is every key with its value.
		metric string
		want   map[string]float64
	}{
		{"fleutan-paths-changes", "paths", map[string]float64{v4: 1, v6: 1}},
		{"fleutan-paths-divergent-hops", "peers", map[string]float64{"10.80.5.2": 1, "fd80:5::2": 1}},
		{"fleutan-paths-hops-by-rtt", "peers", hops},
		{"fleutan-paths-per-peer", "paths", map[string]float64{v4: 2, v6: 2}},
		{"fleutan-paths-per-peer", "hops", map[string]float64{v4: 4, v6: 4}},
		{"fleutan-paths-per-peer", "flows", map[string]float64{v4: 1, v6: 1}},
	} {
		t.Run(tc.id+"/"+tc.metric, func(t *testing.T) {
			got := map[string]float64{}
			for _, lf := range lensLeaves(t, db, target, tc.id) {
				key := lf.path[len(lf.path)-1]
				v, _ := lf.metrics[tc.metric].(float64)
				if _, dup := got[key]; dup && tc.id != "fleutan-paths-changes" {
					t.Errorf("bucket %s twice", key)
				}
				// The timeline's buckets are per time and peer: a peer
				// changed once, in one of them.
				got[key] += v
				if rtt, _ := lf.metrics["rtt"].(float64); tc.id == "fleutan-paths-hops-by-rtt" && rtt <= 0 {
					t.Errorf("hop %s: average RTT %v", key, lf.metrics["rtt"])
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("%s by bucket: %v, want %v", tc.metric, got, tc.want)
			}
		})
	}
}

// lensLeaves runs the one layer of visualization id on target, as
// TestRealLensLayersReturnBucketsFromShippedEvents does.
func lensLeaves(t *testing.T, db *estest.Client, target, id string) []leaf {
	t.Helper()
	for _, o := range parseBundle(t) {
		if o.ID != id {
			continue
		}
		st := o.Attributes["state"].(map[string]any)
		query, err := kqlToQuery(st["query"].(map[string]any)["query"].(string))
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := lensState(t, o)
		for _, l := range layers {
			aggs, buckets, metrics, err := layerAggs(l)
			if err != nil {
				t.Fatal(err)
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
			var ls []leaf
			leaves(res.Aggregations, buckets, metrics, nil, res.Hits.Total.Value, &ls)
			return ls
		}
	}
	t.Fatalf("no visualization %s in the bundle", id)
	return nil
}
