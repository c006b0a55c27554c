package flowsinput

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// rollupFixture is a testdata/rollup case: a period's flows with their
// deltas, and the rollups wanted, written out by hand.
type rollupFixture struct {
	ExcludePort uint16 `json:"exclude_port"`
	Flows       []struct {
		flows.Flow
		Delta flows.FlowDelta `json:"delta"`
	} `json:"flows"`
	Want []rollupSummary `json:"want"`
}

// rollupSummary is a rollup in the fixtures' terms.
type rollupSummary struct {
	PID       int            `json:"pid"`
	Start     uint64         `json:"start"`
	Flows     int            `json:"flows"`
	Final     int            `json:"final"`
	States    map[string]int `json:"states"`
	Direction struct {
		Inbound, Outbound, Listening int
	} `json:"direction"`
	Delta flows.Delta `json:"delta"`
	RTT   *struct {
		Min, Mean, Max uint64
	} `json:"rtt_us,omitempty"`
	Peers int `json:"peers"`
}

func summarize(r *rollup) rollupSummary {
	s := rollupSummary{PID: r.proc.PID, Start: r.proc.StartTime, Flows: r.flows, Final: r.final,
		States: map[string]int{}, Delta: r.delta, Peers: r.peers}
	for st, n := range r.states {
		if n > 0 {
			s.States[flows.StateName(uint8(st))] = n
		}
	}
	s.Direction.Inbound, s.Direction.Outbound, s.Direction.Listening = r.inbound, r.outbound, r.listening
	if r.rttN > 0 {
		s.RTT = &struct{ Min, Mean, Max uint64 }{uint64(r.rttMin), r.rttMean(), uint64(r.rttMax)}
	}
	return s
}

// TestRollup runs the rollup over each period of testdata/rollup and
// compares with the sums written in the fixture; each case runs twice on
// one roller, since the input reuses it every period.
func TestRollup(t *testing.T) {
	paths, err := filepath.Glob("testdata/rollup/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	rl := newRoller()
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var fx rollupFixture
			if err := json.Unmarshal(raw, &fx); err != nil {
				t.Fatal(err)
			}
			fl := make([]flows.Flow, len(fx.Flows))
			ds := make([]flows.FlowDelta, len(fx.Flows))
			for i, f := range fx.Flows {
				fl[i], ds[i] = f.Flow, f.Delta
			}
			keep := func(f *flows.Flow) bool {
				return fx.ExcludePort == 0 || f.Local.Port() != fx.ExcludePort
			}
			for round := range 2 {
				got := []rollupSummary{}
				for _, r := range rl.roll(fl, ds, keep) {
					got = append(got, summarize(&r))
				}
				if want := fx.Want; !reflect.DeepEqual(got, want) {
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(want)
					t.Errorf("round %d:\n got %s\nwant %s", round, g, w)
				}
			}
		})
	}
}

// TestRollupEventGolden is the document of a rollup.
func TestRollupEventGolden(t *testing.T) {
	proc := &procindex.Process{PID: 4242, PPID: 1, Name: "nginx", Executable: "/usr/sbin/nginx",
		Args: []string{"nginx", "-g", "daemon off;"}, UID: 33, User: "www-data", StartTime: 123456}
	r := rollup{proc: proc, flows: 4, final: 1, inbound: 3, listening: 1,
		delta: flows.Delta{BytesIn: 1015, BytesOut: 20006, SegsIn: 6, SegsOut: 16, Retrans: 2},
		rttN:  3, rttSum: 900, rttMin: 200, rttMax: 400, peers: 2}
	r.states[stateEstablished] = 2
	r.states[stateClose] = 1
	r.states[stateListen] = 1
	ts := time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)
	cores := &input.CoreUse{Pct: 0.35, DominantCore: 2, Spread: 1.6853, Cores: []input.CoreShare{{CPU: 0, Pct: 0.105}, {CPU: 2, Pct: 0.245}}}
	e := rollupEvent(pipeline.NewBuilder(8, 40), &r, ts, input.Times{Window: 10 * time.Second, Collection: 1500 * time.Microsecond}, cores)
	doc := map[string]any{"@timestamp": e.Timestamp.Format(time.RFC3339Nano), "series": e.Series, "fields": e.Fields}
	got, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "rollup_process.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("event differs from %s (run with -update after checking):\n%s", path, got)
	}
}

// BenchmarkRollup is what rollups add to a period of 36,000 flows owned
// by 200 processes, talking to 1,000 peers: the sums, and the 200 events
// built from one Builder as the input builds them.
func BenchmarkRollup(b *testing.B) {
	const nFlows, nProcs, nPeers = 36000, 200, 1000
	procs := make([]*procindex.Process, nProcs)
	for i := range procs {
		procs[i] = &procindex.Process{PID: 1000 + i, Name: "worker", StartTime: uint64(i)}
	}
	fl := make([]flows.Flow, nFlows)
	ds := make([]flows.FlowDelta, nFlows)
	for i := range fl {
		peer := netip.AddrFrom4([4]byte{10, 1, byte(i % nPeers / 256), byte(i % nPeers)})
		fl[i] = flows.Flow{State: stateEstablished, Protocol: flows.ProtocolTCP, Direction: flows.Outbound,
			Local:  netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(20000+i%40000)),
			Remote: netip.AddrPortFrom(peer, 443), Process: procs[i%nProcs],
			HasTCP: true, TCP: flows.TCPInfo{RTTMicros: uint32(100 + i%900)}}
		ds[i] = flows.FlowDelta{OK: true, Delta: flows.Delta{BytesIn: 10, BytesOut: 20, SegsIn: 1, SegsOut: 1}}
	}
	rl := newRoller()
	bld := pipeline.NewBuilder(publishChunk*rollupObjects, publishChunk*rollupMembers)
	ts := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		rs := rl.roll(fl, ds, nil)
		bld.Reset()
		for i := range rs {
			if i%publishChunk == 0 {
				bld.Reset()
			}
			benchSink = rollupEvent(bld, &rs[i], ts, input.Times{Window: 10 * time.Second}, nil)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nFlows, "ns/flow")
}
