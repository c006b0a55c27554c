package flowsinput

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu/cpuinput"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/qdisc/qdiscinput"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/fleutan/fleutanbeat/pipeline/processor"
)

// The fleet profile (issue #20): one host as a fleet has thousands of,
// generated in network namespaces. The host namespace holds 2,000
// established TCP connections to a peer namespace, through two veths of
// four TX queues under mq, and 150 listening sockets, held by 40 of its
// 200 processes; each period 5% of the connections, a different
// deterministic choice each time, exchange fleetBytes with their peer.
// The agent runs inside the host namespace, as on a real host: the flows,
// cpu and qdisc inputs with their defaults, period 1 s, the Elasticsearch
// output reaching the real Elasticsearch through a relay.
const (
	fleetConns     = 2000
	fleetHolders   = 40
	fleetListeners = 150
	fleetProcesses = 200
	// fleetActive is how many connections send in a period: 5%.
	fleetActive = fleetConns / 20
	// fleetBytes is what an active connection sends, echoed back.
	fleetBytes = 200
	fleetSeed  = 20
	// fleetPeriod is the agent's period in the profile; fleetDayPeriod the
	// default period, at which a host-day has 8,640 collections.
	fleetPeriod    = time.Second
	fleetDayPeriod = 10 * time.Second
	fleetHeartbeat = 30

	fleetEnv = "FLEUTANBEAT_FLEET"
)

// fleetMain runs the profile's processes when the test binary was started
// as one of them; it reports false for a normal test run.
func fleetMain() bool {
	var code int
	switch os.Getenv(fleetEnv) {
	case "holder":
		code = runFleetHolder()
	case "peer":
		code = runFleetPeer()
	case "agent":
		code = runFleetAgent()
	default:
		return false
	}
	os.Exit(code)
	return true
}

// fleetRecord is what the agent process hands the test: the generator's
// record of which connection sent in which period, and the collections'
// times, from which the documents in Elasticsearch are predicted.
type fleetRecord struct {
	Periods int `json:"periods"`
	// Conns are the connections' local addresses, by index; Listeners the
	// listening sockets'.
	Conns     []string `json:"conns"`
	Listeners []string `json:"listeners"`
	// Sent lists, per collection, the connections that exchanged
	// fleetBytes since the previous one; Closed those that were closed
	// before the last collection.
	Sent   [][]int `json:"sent"`
	Closed []int   `json:"closed"`
	// Times are each mode's collection times (ms since the epoch): the
	// @timestamp of that collection's events.
	Times map[string][]int64 `json:"times"`
	// Collections counts each input's collections (cpu and qdisc run on
	// their own clock).
	Collections map[string]int64 `json:"collections"`
	Published   map[string]int64 `json:"published"`
}

// fleetPrediction is the number of flow events (rollups aside) a report
// mode gives for the record, by reason.
type fleetPrediction struct {
	New, Active, Heartbeat, Final, Total int
}

// predictFleet replays the record through the report rule: report: all
// has every live flow each collection (and the final ones); report:
// active has a flow when it is new, sent since its last event, ended, or
// went heartbeat collections without an event.
func predictFleet(r *fleetRecord, mode string) fleetPrediction {
	var p fleetPrediction
	n := len(r.Conns) + len(r.Listeners)
	last := make([]int, n)
	closed := make(map[int]bool, len(r.Closed))
	for _, c := range r.Closed {
		closed[c] = true
	}
	collections := len(r.Sent)
	for c := 0; c < collections; c++ {
		sent := make(map[int]bool, len(r.Sent[c]))
		for _, f := range r.Sent[c] {
			sent[f] = true
		}
		lastOne := c == collections-1
		for f := 0; f < n; f++ {
			switch {
			case c == 0:
				p.New++
			case lastOne && f < len(r.Conns) && closed[f]:
				p.Final++
			case mode == ReportAll:
				if f < len(r.Conns) && sent[f] {
					p.Active++
				} else {
					p.Heartbeat++
				}
			case f < len(r.Conns) && sent[f]:
				p.Active++
				last[f] = c
			case c-last[f] >= fleetHeartbeat:
				p.Heartbeat++
				last[f] = c
			}
		}
	}
	p.Total = p.New + p.Active + p.Heartbeat + p.Final
	return p
}

// perHostDay scales a figure measured over collections collections to a
// host-day at the default period: 86,400 s / 10 s = 8,640 collections.
func perHostDay(v float64, collections int64) float64 {
	if collections <= 0 {
		return 0
	}
	return v * float64(24*time.Hour/fleetDayPeriod) / float64(collections)
}

func TestPerHostDayScaling(t *testing.T) {
	for _, c := range []struct {
		v           float64
		collections int64
		want        float64
	}{
		{2150, 1, 18_576_000},             // report: all, one collection's flows
		{2150 * 61, 61, 18_576_000},       // the short profile's 61 collections
		{1_000_000, 1801, 4_797_334.8139}, // bytes over the full profile's collections
		{8640, 8640, 8640},                // a day at the default period is itself
		{5, 0, 0},                         // no collection, no figure
	} {
		if got := perHostDay(c.v, c.collections); math.Abs(got-c.want) > 0.001 {
			t.Errorf("perHostDay(%v, %d) = %.4f, want %.4f", c.v, c.collections, got, c.want)
		}
	}
}

func TestPredictFleetCountsEachReason(t *testing.T) {
	// Two connections and a listener over 62 collections: connection 0
	// sends in collections 1 and 40, connection 1 never and is closed
	// before the last.
	r := &fleetRecord{Conns: []string{"a", "b"}, Listeners: []string{"l"}, Sent: make([][]int, 62), Closed: []int{1}}
	r.Sent[1] = []int{0}
	r.Sent[40] = []int{0}
	got := predictFleet(r, ReportActive)
	// New: 3 at 0. Connection 0: 1, 31 (heartbeat), 40, and nothing at 61
	// (21 since 40). Connection 1: heartbeats 30, 60, final at 61. The
	// listener: 30, 60.
	want := fleetPrediction{New: 3, Active: 2, Heartbeat: 5, Final: 1, Total: 11}
	if got != want {
		t.Errorf("active: %+v, want %+v", got, want)
	}
	got = predictFleet(r, ReportAll)
	want = fleetPrediction{New: 3, Active: 2, Heartbeat: 60*3 - 2 + 2, Final: 1, Total: 3 + 2 + 180 + 1}
	if got != want {
		t.Errorf("all: %+v, want %+v", got, want)
	}
}

// TestFleetProfileShort is the fleet profile's benchmark for 60 periods
// (BenchmarkFleetProfile runs 1,800): the documents of each report mode
// and index mode equal what the generator's record predicts, no
// connection that sent is missing from a collection it sent in, and the
// time series data streams hold exactly the standard ones' documents.
func TestFleetProfileShort(t *testing.T) {
	url := estest.URL(t)
	nstest.RequireRoot(t)
	res := runFleet(t, url, 60)
	res.log(t)
}

// fleetStream is one data stream of the profile and what it holds.
type fleetStream struct {
	Dataset, Mode, IndexMode string
	Name                     string
	Docs                     int64
	Bytes                    int64
	Collections              int64
}

type fleetResult struct {
	Record  *fleetRecord
	Streams []fleetStream
}

// total sums a report mode's streams (its flows, and the cpu and qdisc
// streams both modes share) in one index mode: documents and bytes per
// host-day.
func (r *fleetResult) total(mode, indexMode string) (docs, bytes float64) {
	for _, s := range r.Streams {
		if s.IndexMode != indexMode || (s.Mode != mode && s.Mode != "") {
			continue
		}
		docs += perHostDay(float64(s.Docs), s.Collections)
		bytes += perHostDay(float64(s.Bytes), s.Collections)
	}
	return docs, bytes
}

// log prints the table of the README's Sizing section.
func (r *fleetResult) log(t testing.TB) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "fleet profile: %d collections of %d connections (%d sending each), %d listeners, %d processes (%d holding sockets)\n",
		r.Record.Periods+1, fleetConns, fleetActive, fleetListeners, fleetProcesses, fleetHolders)
	fmt.Fprintf(&b, "%-8s %-12s %-14s %12s %10s %14s %12s\n", "report", "index_mode", "stream", "documents", "bytes/doc", "docs/host-day", "MB/host-day")
	for _, s := range r.Streams {
		mode := s.Mode
		if mode == "" {
			mode = "both"
		}
		fmt.Fprintf(&b, "%-8s %-12s %-14s %12d %10.1f %14.0f %12.2f\n", mode, s.IndexMode, s.Dataset, s.Docs,
			float64(s.Bytes)/math.Max(1, float64(s.Docs)), perHostDay(float64(s.Docs), s.Collections), perHostDay(float64(s.Bytes), s.Collections)/1e6)
	}
	_, base := r.total(ReportAll, elasticsearch.IndexModeStandard)
	for _, mode := range []string{ReportAll, ReportActive} {
		for _, im := range []string{elasticsearch.IndexModeStandard, elasticsearch.IndexModeTimeSeries} {
			docs, bytes := r.total(mode, im)
			fmt.Fprintf(&b, "host-day, report: %-6s %-11s: %12.0f documents %9.1f MB (%5.1f%% of report: all standard); 1,000 hosts: %6.2f G documents %8.1f GB/day %9.1f GB/30 days; 10,000 hosts: %7.1f GB/day %8.0f GB/30 days\n",
				mode, im, docs, bytes/1e6, 100*bytes/base, docs*1000/1e9, bytes*1000/1e9, bytes*1000*30/1e9, bytes*10000/1e9, bytes*10000*30/1e9)
		}
	}
	t.Log("\n" + b.String())
}

// runFleet builds the host, runs the agent in it for periods periods
// plus the first collection, checks the documents against the record,
// force-merges the streams and measures them.
func runFleet(t testing.TB, esURL string, periods int) *fleetResult {
	t.Helper()
	host, peer := nstest.New(t), nstest.New(t)
	for _, n := range []*nstest.Netns{host, peer} {
		n.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	// Two multi-queue devices, as a host's two NICs: veths of four TX
	// queues, mq at the root on the host side.
	for i := 1; i <= 2; i++ {
		dev := fmt.Sprintf("eth%d", i-1)
		host.Run(t, "ip", "link", "add", dev, "numtxqueues", "4", "numrxqueues", "4", "type", "veth", "peer", "name", "p"+dev, "netns", peer.Name)
		host.Run(t, "ip", "addr", "add", fmt.Sprintf("10.201.%d.1/24", i), "dev", dev)
		peer.Run(t, "ip", "addr", "add", fmt.Sprintf("10.201.%d.2/24", i), "dev", "p"+dev)
		host.Run(t, "ip", "link", "set", dev, "up")
		peer.Run(t, "ip", "link", "set", "p"+dev, "up")
		host.Run(t, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "mq")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The peers: one process echoing every connection.
	pc := peer.Command(exe)
	pc.Env = append(os.Environ(), fleetEnv+"=peer", "FLEET_ADDRS=10.201.1.2:7000,10.201.2.2:7000")
	pc.Stderr = os.Stderr
	pin, _ := pc.StdinPipe()
	pout, _ := pc.StdoutPipe()
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pin.Close(); _ = pc.Wait() })
	if line, _ := bufio.NewReader(pout).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("peer: %q", line)
	}
	// The host's processes that hold no socket.
	for range fleetProcesses - fleetHolders {
		c := host.Command("sleep", "infinity")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	relay := fleetRelay(t, host, esURL)

	var rb [3]byte
	_, _ = rand.Read(rb[:])
	run := "fleet" + hex.EncodeToString(rb[:])
	db := estest.NewClient(t, esURL)
	db.HTTP.Timeout = 30 * time.Minute
	installFleetTemplates(t, esURL, run)

	dir := t.TempDir()
	ac := host.Command(exe)
	ac.Env = append(os.Environ(), fleetEnv+"=agent", "FLEET_ES="+relay, "FLEET_RUN="+run,
		"FLEET_PERIODS="+strconv.Itoa(periods), "FLEET_OUT="+filepath.Join(dir, "record.json"))
	ac.Stdout, ac.Stderr = os.Stderr, os.Stderr
	if err := ac.Run(); err != nil {
		t.Fatalf("fleet agent: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "record.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &fleetRecord{}
	if err := json.Unmarshal(raw, rec); err != nil {
		t.Fatal(err)
	}
	res := &fleetResult{Record: rec}
	for _, ds := range []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"} {
		for _, im := range []string{elasticsearch.IndexModeStandard, elasticsearch.IndexModeTimeSeries} {
			modes := []string{""}
			if ds == "fleutan.flows" {
				modes = []string{ReportAll, ReportActive}
			}
			for _, mode := range modes {
				name := "metrics-" + ds + "-" + fleetNamespace(run, ds, mode, im)
				coll := rec.Collections[strings.TrimPrefix(ds, "fleutan.")]
				res.Streams = append(res.Streams, fleetStream{Dataset: ds, Mode: mode, IndexMode: im, Name: name, Collections: coll})
			}
		}
	}
	for i := range res.Streams {
		s := &res.Streams[i]
		db.JSON("POST", "/"+s.Name+"/_refresh", nil, nil)
		s.Docs = fleetCount(db, s.Name, nil)
	}
	checkFleetDocuments(t, db, res)
	for i := range res.Streams {
		s := &res.Streams[i]
		db.JSON("POST", "/"+s.Name+"/_forcemerge?max_num_segments=1", nil, nil)
		var st struct {
			All struct {
				Primaries struct {
					Store struct {
						Bytes int64 `json:"size_in_bytes"`
					} `json:"store"`
				} `json:"primaries"`
			} `json:"_all"`
		}
		db.JSON("GET", "/"+s.Name+"/_stats/store", nil, &st)
		s.Bytes = st.All.Primaries.Store.Bytes
	}
	return res
}

// checkFleetDocuments compares each flows stream with the record: the
// number of flow events, and the set of (collection, connection) with
// traffic, which must be exactly the generator's.
func checkFleetDocuments(t testing.TB, db *estest.Client, res *fleetResult) {
	t.Helper()
	rec := res.Record
	// Flow events, not the rollups beside them (which have no address).
	perFlow := map[string]any{"exists": map[string]any{"field": "fleutan.flow.local.ip"}}
	byName := map[string]int64{}
	for _, s := range res.Streams {
		byName[s.Dataset+"/"+s.Mode+"/"+s.IndexMode] = s.Docs
	}
	for _, s := range res.Streams {
		if s.Dataset != "fleutan.flows" {
			if other := byName[s.Dataset+"//"+otherIndexMode(s.IndexMode)]; s.Docs == 0 || (s.IndexMode == elasticsearch.IndexModeTimeSeries && other != s.Docs) {
				t.Errorf("%s: %d documents, the %s stream %d (the time series stream must hold every event once)", s.Name, s.Docs, otherIndexMode(s.IndexMode), other)
			}
			continue
		}
		// Rollups are over every flow in both modes: as many in each.
		rollups := fleetCount(db, s.Name, map[string]any{"exists": map[string]any{"field": "fleutan.flow.scope"}})
		otherMode := ReportAll
		if s.Mode == ReportAll {
			otherMode = ReportActive
		}
		if r := fleetCount(db, strings.Replace(s.Name, s.Mode, otherMode, 1), map[string]any{"exists": map[string]any{"field": "fleutan.flow.scope"}}); r != rollups {
			t.Errorf("%s: %d rollup events, report: %s %d", s.Name, rollups, otherMode, r)
		}
		t.Logf("%s: %d rollup events", s.Name, rollups)
		want := predictFleet(rec, s.Mode)
		got := fleetCount(db, s.Name, perFlow)
		if got != int64(want.Total) {
			t.Errorf("%s: %d flow events, the record predicts %d (%+v)", s.Name, got, want.Total, want)
		} else {
			t.Logf("%s: %d flow events = %d new + %d sent + %d heartbeat (unchanged, in report: all) + %d final, as predicted", s.Name, got, want.New, want.Active, want.Heartbeat, want.Final)
		}
		if other := byName[s.Dataset+"/"+s.Mode+"/"+otherIndexMode(s.IndexMode)]; other != s.Docs {
			t.Errorf("%s: %d documents, the %s stream of report: %s %d", s.Name, s.Docs, otherIndexMode(s.IndexMode), s.Mode, other)
		}
		// Every (collection, connection) with traffic, from the documents
		// whose delta is not zero, against the generator's record.
		times := rec.Times[s.Mode]
		wantPairs := map[string]bool{}
		for c, sent := range rec.Sent {
			for _, f := range sent {
				wantPairs[strconv.FormatInt(times[c], 10)+" "+rec.Conns[f]] = true
			}
		}
		gotPairs := fleetTrafficPairs(db, s.Name)
		var missing, extra []string
		for k := range wantPairs {
			if !gotPairs[k] {
				missing = append(missing, k)
			}
		}
		for k := range gotPairs {
			if !wantPairs[k] {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing) > 0 {
			t.Errorf("%s: %d of %d (collection, connection) with traffic have no event with a delta, first %v", s.Name, len(missing), len(wantPairs), missing[:min(5, len(missing))])
		}
		if len(extra) > 0 {
			t.Errorf("%s: %d events with a delta the generator did not cause, first %v", s.Name, len(extra), extra[:min(5, len(extra))])
		}
		if len(missing) == 0 && len(extra) == 0 {
			t.Logf("%s: each of the %d (collection, connection) with traffic has its event with a delta, and no other has one", s.Name, len(wantPairs))
		}
		var sum struct {
			Aggregations struct {
				Out struct {
					Value float64 `json:"value"`
				} `json:"out"`
			} `json:"aggregations"`
		}
		db.JSON("POST", "/"+s.Name+"/_search", map[string]any{"size": 0, "query": perFlow,
			"aggs": map[string]any{"out": map[string]any{"sum": map[string]any{"field": "fleutan.flow.delta.bytes_out"}}}}, &sum)
		if got, want := int64(sum.Aggregations.Out.Value), int64(len(wantPairs))*fleetBytes; got != want {
			t.Errorf("%s: the deltas add up to %d bytes sent, the generator sent %d", s.Name, got, want)
		}
	}
}

func otherIndexMode(im string) string {
	if im == elasticsearch.IndexModeStandard {
		return elasticsearch.IndexModeTimeSeries
	}
	return elasticsearch.IndexModeStandard
}

func fleetCount(db *estest.Client, target string, query any) int64 {
	var r struct {
		Count int64 `json:"count"`
	}
	var body any
	if query != nil {
		body = map[string]any{"query": query}
	}
	db.JSON("POST", "/"+target+"/_count", body, &r)
	return r.Count
}

// fleetTrafficPairs lists "timestamp_ms ip:port" of every flow event with
// bytes sent in its window, by composite aggregation pages.
func fleetTrafficPairs(db *estest.Client, target string) map[string]bool {
	out := map[string]bool{}
	var after map[string]any
	for {
		comp := map[string]any{"size": 10000, "sources": []any{
			map[string]any{"ts": map[string]any{"terms": map[string]any{"field": "@timestamp"}}},
			map[string]any{"ip": map[string]any{"terms": map[string]any{"field": "fleutan.flow.local.ip"}}},
			map[string]any{"port": map[string]any{"terms": map[string]any{"field": "fleutan.flow.local.port"}}},
		}}
		if after != nil {
			comp["after"] = after
		}
		var r struct {
			Aggregations struct {
				Pairs struct {
					AfterKey map[string]any `json:"after_key"`
					Buckets  []struct {
						Key struct {
							TS   float64 `json:"ts"`
							IP   string  `json:"ip"`
							Port float64 `json:"port"`
						} `json:"key"`
					} `json:"buckets"`
				} `json:"pairs"`
			} `json:"aggregations"`
		}
		db.JSON("POST", "/"+target+"/_search", map[string]any{"size": 0,
			"query": map[string]any{"range": map[string]any{"fleutan.flow.delta.bytes_out": map[string]any{"gt": 0}}},
			"aggs":  map[string]any{"pairs": map[string]any{"composite": comp}}}, &r)
		for _, b := range r.Aggregations.Pairs.Buckets {
			out[fmt.Sprintf("%d %s:%d", int64(b.Key.TS), b.Key.IP, int64(b.Key.Port))] = true
		}
		if len(r.Aggregations.Pairs.Buckets) == 0 || r.Aggregations.Pairs.AfterKey == nil {
			return out
		}
		after = r.Aggregations.Pairs.AfterKey
	}
}

// fleetNamespace names the data stream namespace of a stream: one
// per report mode for flows, one for cpu and qdisc, in each index mode.
func fleetNamespace(run, dataset, mode, indexMode string) string {
	ns := run
	if dataset == "fleutan.flows" {
		ns += mode
	} else {
		ns += "both"
	}
	if indexMode == elasticsearch.IndexModeTimeSeries {
		return ns + "tsds"
	}
	return ns + "std"
}

// installFleetTemplates installs the agent's templates, and index
// templates of a higher priority that make the run's *std streams
// standard and its *tsds streams time series data streams.
func installFleetTemplates(t testing.TB, esURL, run string) {
	t.Helper()
	c := elasticsearch.DefaultConfig()
	c.Hosts = []string{esURL}
	ctx := context.Background()
	if err := elasticsearch.Setup(ctx, c, output.Settings{Beat: "fleutanbeat"}); err != nil {
		t.Fatalf("templates: %v", err)
	}
	db := estest.NewClient(t, esURL)
	for _, im := range []string{elasticsearch.IndexModeStandard, elasticsearch.IndexModeTimeSeries} {
		c.Template.IndexMode = im
		ts, err := elasticsearch.Templates(c)
		if err != nil {
			t.Fatal(err)
		}
		suffix := "std"
		if im == elasticsearch.IndexModeTimeSeries {
			suffix = "tsds"
		}
		for _, tp := range ts {
			ds, _ := tp.Body["_meta"].(map[string]any)["dataset"].(string)
			if tp.Kind != elasticsearch.KindIndex || ds == "" {
				continue
			}
			tp.Body["index_patterns"] = []string{"metrics-" + ds + "-" + run + "*" + suffix}
			tp.Body["priority"] = 500
			if v := os.Getenv("FLEUTANBEAT_FLEET_VARIANT"); v != "" {
				tmpl, _ := tp.Body["template"].(map[string]any)
				if tmpl == nil {
					tmpl = map[string]any{}
					tp.Body["template"] = tmpl
				}
				tmpl["mappings"] = map[string]any{"properties": variantProperties(v)}
			}
			db.JSON("PUT", "/"+elasticsearch.KindIndex+"/"+run+"-"+ds+"-"+suffix, tp.Body, nil)
		}
	}
	t.Cleanup(func() {
		for _, ds := range []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"} {
			if os.Getenv("FLEUTANBEAT_FLEET_KEEP") != "" {
				return
			}
			db.Do("DELETE", "/_data_stream/metrics-"+ds+"-"+run+"*", nil)
			for _, suffix := range []string{"std", "tsds"} {
				db.Do("DELETE", "/"+elasticsearch.KindIndex+"/"+run+"-"+ds+"-"+suffix, nil)
			}
		}
	})
}

// fleetRelay listens on 127.0.0.1:9200 inside the host namespace and
// forwards each connection to Elasticsearch, which listens on the test
// machine's loopback: the agent runs in the namespace as on a host.
func fleetRelay(t testing.TB, ns *nstest.Netns, esURL string) string {
	t.Helper()
	target := strings.TrimPrefix(strings.TrimPrefix(esURL, "http://"), "https://")
	fd := ns.Socket(t, unix.AF_INET, unix.SOCK_STREAM)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 9200, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "relay")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return "http://127.0.0.1:9200"
}

// runFleetPeer echoes every connection to its listening addresses.
func runFleetPeer() int {
	lc := net.ListenConfig{KeepAlive: -1}
	for _, a := range strings.Split(os.Getenv("FLEET_ADDRS"), ",") {
		ln, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet peer:", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
			}
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// runFleetHolder holds its connections and listeners and answers
// commands: "send I J ..." (the connections of those indices exchange
// fleetBytes with their peer) and "close" (every connection).
func runFleetHolder() int {
	lc := net.ListenConfig{KeepAlive: -1}
	var lns []net.Listener
	if l := os.Getenv("FLEET_LISTEN"); l != "" {
		for _, a := range strings.Split(l, ",") {
			ln, err := lc.Listen(context.Background(), "tcp", a)
			if err != nil {
				fmt.Fprintln(os.Stderr, "fleet holder:", err)
				return 1
			}
			lns = append(lns, ln)
		}
	}
	n, _ := strconv.Atoi(os.Getenv("FLEET_CONNS"))
	d := net.Dialer{KeepAlive: -1}
	conns := make([]*net.TCPConn, n)
	addrs := make([]string, n)
	for i := range conns {
		c, err := d.Dial("tcp", os.Getenv("FLEET_PEER"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet holder:", err)
			return 1
		}
		conns[i] = c.(*net.TCPConn)
		addrs[i] = c.LocalAddr().String()
	}
	fmt.Println("ready " + strings.Join(addrs, " "))
	buf := make([]byte, fleetBytes)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch f[0] {
		case "send":
			for _, s := range f[1:] {
				i, _ := strconv.Atoi(s)
				if err = exchange(conns[i], buf); err != nil {
					break
				}
			}
		case "close":
			for _, c := range conns {
				c.Close()
			}
		}
		if err != nil {
			fmt.Println("err", err)
			continue
		}
		fmt.Println("ok")
	}
	for _, ln := range lns {
		ln.Close()
	}
	return 0
}

// exchange sends buf and reads its echo. TCP_QUICKACK makes the kernel
// acknowledge the echo at once rather than up to 200 ms later (a delayed
// ACK), so that the socket's counters are final when the reply comes and
// the next collection sees no segment the generator did not record.
func exchange(c *net.TCPConn, buf []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) })
	if _, err := c.Write(buf); err != nil {
		return err
	}
	_, err = io.ReadFull(c, buf)
	_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) })
	return err
}

// fleetHolder is the agent's handle on one holder process.
type fleetHolder struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	first int // index of its first connection
}

func (h *fleetHolder) do(cmd string) error {
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		return err
	}
	line, err := h.out.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "ok" {
		return fmt.Errorf("holder %q: %s", cmd, strings.TrimSpace(line))
	}
	return nil
}

// teePublisher publishes each event to every client; the first ones get
// copies, as a client takes the events' maps. mark, when set, records the
// first event's @timestamp.
type teePublisher struct {
	clients []pipeline.Publisher
	mu      sync.Mutex
	mark    *[]int64
}

func (p *teePublisher) Publish(ctx context.Context, events ...pipeline.Event) error {
	p.mu.Lock()
	if p.mark != nil && len(events) > 0 {
		*p.mark = append(*p.mark, events[0].Timestamp.UnixMilli())
		p.mark = nil
	}
	p.mu.Unlock()
	for i, c := range p.clients {
		evs := events
		if i < len(p.clients)-1 {
			evs = pipeline.CloneEvents(events)
		}
		if err := c.Publish(ctx, evs...); err != nil {
			return err
		}
	}
	return nil
}

func rawConfig(src, key string) (config.Raw, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return config.Raw{}, err
	}
	return config.NewRaw(doc.Content[0], "fleet.yml", key), nil
}

// runFleetAgent is the agent process of the profile, inside the host
// namespace: it starts the holders, runs the inputs into the pipelines
// and drives the traffic, one period at a time.
func runFleetAgent() int {
	if err := fleetAgent(); err != nil {
		fmt.Fprintln(os.Stderr, "fleet agent:", err)
		return 1
	}
	return 0
}

func fleetAgent() error {
	periods, _ := strconv.Atoi(os.Getenv("FLEET_PERIODS"))
	run := os.Getenv("FLEET_RUN")
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	rec := &fleetRecord{Periods: periods, Times: map[string][]int64{}, Collections: map[string]int64{}, Published: map[string]int64{}}

	// The holders: connection c belongs to holder c%40's (c/40)-th slot,
	// through eth0 for even holders and eth1 for odd ones; listener l to
	// holder l%40.
	per := fleetConns / fleetHolders
	holders := make([]*fleetHolder, fleetHolders)
	rec.Conns = make([]string, fleetConns)
	for k := range holders {
		var listen []string
		for l := k; l < fleetListeners; l += fleetHolders {
			a := fmt.Sprintf("10.201.%d.1:%d", l%2+1, 8000+l)
			listen = append(listen, a)
			rec.Listeners = append(rec.Listeners, a)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), fleetEnv+"=holder", "FLEET_CONNS="+strconv.Itoa(per),
			fmt.Sprintf("FLEET_PEER=10.201.%d.2:7000", k%2+1), "FLEET_LISTEN="+strings.Join(listen, ","))
		cmd.Stderr = os.Stderr
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return err
		}
		h := &fleetHolder{cmd: cmd, in: in, out: bufio.NewReader(out), first: k * per}
		holders[k] = h
		defer func() { in.Close(); _ = cmd.Wait() }()
		line, err := h.out.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "ready ") {
			return fmt.Errorf("holder %d: %q %v", k, line, err)
		}
		for i, a := range strings.Fields(strings.TrimPrefix(line, "ready ")) {
			rec.Conns[k*per+i] = a
		}
	}

	// One pipeline per stream, as the agent wires its output.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	procs, err := processor.New([]config.Raw{mustRaw("add_host_metadata: {}", "processors.0")}, processor.Settings{Logger: log})
	if err != nil {
		return err
	}
	metrics := pipeline.NewMetrics()
	var pipes []*pipeline.Pipeline
	clients := func(ds, mode, input string) (*teePublisher, error) {
		tee := &teePublisher{}
		for _, im := range []string{elasticsearch.IndexModeStandard, elasticsearch.IndexModeTimeSeries} {
			c := elasticsearch.DefaultConfig()
			c.Hosts = []string{os.Getenv("FLEET_ES")}
			c.Namespace = fleetNamespace(run, ds, mode, im)
			c.Timeout = config.Duration(5 * time.Minute)
			c.Template.Enabled = false
			osets := output.Settings{Logger: log, Beat: "fleutanbeat", Version: "fleet", Metrics: pipeline.NewMetrics()}
			g, err := elasticsearch.NewGroup(c, osets)
			if err != nil {
				return nil, err
			}
			p := pipeline.New(pipeline.Settings{
				Metrics: pipeline.NewMetrics(), Queue: pipeline.MemQueueConfig{Events: 4096},
				Outputs: g.Clients, BatchSize: g.BatchSize,
				Namespace: g.Namespace, Encode: codec.AppendFields, Logger: log,
				Agent: pipeline.AgentInfo{ID: run + "-agent", Name: "fleet-host", Type: "fleutanbeat", Version: "fleet", EphemeralID: run},
			})
			p.Start()
			pipes = append(pipes, p)
			tee.clients = append(tee.clients, p.Client(pipeline.ClientConfig{Input: input, Processors: procs}))
		}
		return tee, nil
	}
	teeAll, err := clients("fleutan.flows", ReportAll, "flows")
	if err != nil {
		return err
	}
	teeActive, err := clients("fleutan.flows", ReportActive, "flows")
	if err != nil {
		return err
	}
	teeOthers, err := clients("fleutan.cpu", "", "cpu")
	if err != nil {
		return err
	}

	// The flows input twice on the same snapshots: the first adapter's
	// collector takes them, the second reads the same one.
	is := input.Settings{Logger: log, ProcRoot: "/proc", SysRoot: "/sys", Metrics: metrics, Cores: input.NewProcessCores()}
	adapters := map[string]*flowsInput{}
	for _, mode := range []string{ReportAll, ReportActive} {
		// Loopback left out: it carries the agent's own connections to
		// Elasticsearch (through the relay), not the profile's.
		in, err := New(mustRaw("period: 1s\ninclude_loopback: false\nreport: "+mode+"\n", "fleutanbeat.inputs.0"), is)
		if err != nil {
			return err
		}
		fi := in.(*flowsInput)
		fi.method = MethodProcfs
		adapters[mode] = fi
	}
	coll, err := adapters[ReportAll].collector()
	if err != nil {
		return err
	}
	defer coll.Close()
	var last flows.Snapshot
	var lastErr error
	adapters[ReportAll].source = func(ctx context.Context) (flows.Snapshot, error) {
		last, lastErr = coll.Collect(ctx)
		return last, lastErr
	}
	adapters[ReportActive].source = func(context.Context) (flows.Snapshot, error) { return last, lastErr }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	others := []struct {
		name string
		new  input.Factory
	}{{"cpu", cpuinput.New}, {"qdisc", qdiscinput.New}}
	errs := make(chan error, len(others))
	for _, o := range others {
		in, err := o.new(mustRaw("period: 1s\n", "fleutanbeat.inputs.1"), is)
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.Run(ctx, teeOthers); err != nil {
				errs <- fmt.Errorf("%s: %w", o.name, err)
			}
		}()
	}

	rng := mrand.New(mrand.NewPCG(fleetSeed, 0))
	tick := time.NewTicker(fleetPeriod)
	defer tick.Stop()
	times := map[string]*[]int64{ReportAll: new([]int64), ReportActive: new([]int64)}
	for c := 0; c <= periods; c++ {
		if c > 0 {
			<-tick.C
		}
		var sent []int
		if c > 0 {
			sent = rng.Perm(fleetConns)[:fleetActive]
			if c == periods {
				// The first holder's connections close before the last
				// collection; their final events carry what the
				// previous collection saw (method procfs), so they do
				// not send in it.
				sent = slices.DeleteFunc(sent, func(f int) bool { return f < per })
			}
			sort.Ints(sent)
		}
		byHolder := make([][]string, fleetHolders)
		for _, f := range sent {
			byHolder[f/per] = append(byHolder[f/per], strconv.Itoa(f%per))
		}
		var hwg sync.WaitGroup
		herr := make([]error, fleetHolders)
		for k, h := range holders {
			if len(byHolder[k]) == 0 && !(c == periods && k == 0 && c > 0) {
				continue
			}
			hwg.Add(1)
			go func() {
				defer hwg.Done()
				if len(byHolder[k]) > 0 {
					herr[k] = h.do("send " + strings.Join(byHolder[k], " "))
				}
				// Before the last collection, the first holder closes
				// its connections: their final events.
				if herr[k] == nil && c == periods && k == 0 && c > 0 {
					herr[k] = h.do("close")
				}
			}()
		}
		hwg.Wait()
		if err := errors.Join(herr...); err != nil {
			return err
		}
		if c == periods && c > 0 {
			for f := 0; f < per; f++ {
				rec.Closed = append(rec.Closed, f)
			}
			// The close handshake with the peer ends within a round trip;
			// a little more so that no socket is still established.
			time.Sleep(200 * time.Millisecond)
		}
		rec.Sent = append(rec.Sent, sent)
		for _, mode := range []string{ReportAll, ReportActive} {
			tee := teeAll
			if mode == ReportActive {
				tee = teeActive
			}
			tee.mu.Lock()
			tee.mark = times[mode]
			tee.mu.Unlock()
			if err := adapters[mode].collect(ctx, tee); err != nil {
				return fmt.Errorf("flows %s: %w", mode, err)
			}
		}
		select {
		case err := <-errs:
			return err
		default:
		}
	}
	cancel()
	wg.Wait()
	for _, p := range pipes {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Minute)
		n := p.Close(cctx)
		ccancel()
		if n != 0 {
			return fmt.Errorf("%d events undelivered", n)
		}
	}
	for mode, ts := range times {
		rec.Times[mode] = *ts
		if len(*ts) != periods+1 {
			return fmt.Errorf("%s: %d collections timed, want %d", mode, len(*ts), periods+1)
		}
	}
	rec.Collections["flows"] = int64(periods + 1)
	rec.Collections["cpu"] = metrics.Counter("input.cpu.collections").Load()
	rec.Collections["qdisc"] = metrics.Counter("input.qdisc.collections").Load()
	for _, k := range []string{"flows", "cpu", "qdisc"} {
		rec.Published[k] = metrics.Counter("input." + k + ".events").Load()
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(os.Getenv("FLEET_OUT"), b, 0o644)
}

func mustRaw(src, key string) config.Raw {
	r, err := rawConfig(src, key)
	if err != nil {
		panic(err)
	}
	return r
}

// variantProperties are mapping overrides for measuring storage choices
// (FLEUTANBEAT_FLEET_VARIANT): "numeric" maps every numeric measurement
// index: false, "keyword" the keyword fields no query or panel uses,
// "both" both.
func variantProperties(v string) map[string]any {
	root := map[string]any{}
	put := func(name string, leaf map[string]any) {
		parts := strings.Split(name, ".")
		cur := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{"properties": map[string]any{}}
				cur[p] = next
			}
			cur = next["properties"].(map[string]any)
		}
		cur[parts[len(parts)-1]] = leaf
	}
	unused := map[string]bool{"agent.ephemeral_id": true, "agent.version": true, "agent.type": true, "agent.name": true,
		"event.kind": true, "event.module": true, "data_stream.type": true, "data_stream.namespace": true,
		"host.os.type": true, "host.os.family": true, "host.os.name": true, "host.os.platform": true,
		"host.os.version": true, "host.os.kernel": true, "host.os.codename": true, "host.architecture": true,
		"host.hostname": true, "host.id": true, "process.args": true, "process.executable": true}
	for _, f := range elasticsearch.Fields() {
		numeric := (f.Type == "long" || f.Type == "double") && f.Unit != "" && f.Unit != elasticsearch.UnitID
		if (v == "numeric" || v == "both") && numeric {
			leaf := map[string]any{"type": f.Type, "index": false}
			put(f.Name, leaf)
		}
		if (v == "keyword" || v == "both") && unused[f.Name] {
			put(f.Name, map[string]any{"type": "keyword", "index": false, "ignore_above": 1024})
		}
	}
	return root
}
