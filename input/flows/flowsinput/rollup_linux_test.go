package flowsinput

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// rollupTotals is what a period's events say about one process: from its
// rollup event, or summed over its flow events.
type rollupTotals struct {
	events                                            int
	flows, final                                      int
	bytesIn, bytesOut, segsIn, segsOut, retrans       uint64
	established, listen, inbound, outbound, listening int
	rttMin, rttMax                                    uint64
}

// TestRollupOnRealTraffic: a server process (a listener and three
// accepted connections) and a client process (the three connections) in a
// namespace over six periods with known traffic: nothing in period 0 (no
// delta at a first collection), the client sends 1000 bytes and the server
// answers 300 on the first connection in 1, the client sends 2000 and 4000
// on the other two in 2, nothing in 3, 500 on the first in 4, and closes
// the third in 5. Each period has one rollup per process. In report: all
// its deltas, flow counts by state and direction, finals and RTT range
// equal those of the process's flow events of the same collection, to the
// byte; in both modes its deltas are the bytes sent and it counts every
// flow, also the idle ones report: active left without an event.
func TestRollupOnRealTraffic(t *testing.T) {
	const periods = 6
	type send struct {
		conn       int
		out, reply int
	}
	sends := map[int][]send{1: {{0, 1000, 300}}, 2: {{1, 2000, 0}, {2, 4000, 0}}, 4: {{0, 500, 0}}}
	// wantOut and wantIn are the client's payload bytes out and in per
	// period (the server's in and out).
	wantOut := []uint64{0, 1000, 6000, 0, 500, 0}
	wantIn := []uint64{0, 300, 0, 0, 0, 0}
	for _, mode := range []string{ReportAll, ReportActive} {
		t.Run(mode, func(t *testing.T) {
			ns := nstest.New(t)
			server, client := flowtest.Start(t, ns), flowtest.Start(t, ns)
			addr := server.Do(t, "listen tcp 127.0.0.1:0")
			for range 3 {
				client.Do(t, "dial tcp %s", addr)
				server.Do(t, "accept")
			}
			m := pipeline.NewMetrics()
			src := fmt.Sprintf("period: 1h\nprotocols: [tcp]\nreport: %s\nheartbeat: 30\nrollup: true\n", mode)
			in := newTestInputMetrics(t, src, ns, slog.New(slog.DiscardHandler), m)
			in.method = MethodProcfs
			rec := &recorder{publish: make(chan int, 1<<10)}
			ctx := context.Background()
			byPeriod := make([][]pipeline.Event, periods)
			for p := range periods {
				for _, s := range sends[p] {
					client.Do(t, "use %d", s.conn)
					client.Do(t, "send %d", s.out)
					client.Do(t, "sync")
					server.Do(t, "use %d", s.conn)
					server.Do(t, "recv %d", s.out)
					if s.reply > 0 {
						server.Do(t, "send %d", s.reply)
						server.Do(t, "sync")
						client.Do(t, "recv %d", s.reply)
					}
				}
				if p == periods-1 {
					client.Do(t, "use 2")
					client.Do(t, "close")
				}
				rec.mu.Lock()
				before := len(rec.events)
				rec.mu.Unlock()
				if err := in.collect(ctx, rec); err != nil {
					t.Fatal(err)
				}
				rec.mu.Lock()
				byPeriod[p] = rec.events[before:]
				rec.mu.Unlock()
				if p == 0 {
					// From period 1 on, the cpu input (its shared store)
					// has measured the client, not the server.
					shareClientCores(t, in, byPeriod[0], client.PID())
				}
			}
			var rollups int64
			skippedSeen := false
			for p, evs := range byPeriod {
				for _, h := range []struct {
					name    string
					pid     int
					out, in uint64
					est     int
				}{
					{"client", client.PID(), wantOut[p], wantIn[p], 3},
					{"server", server.PID(), wantIn[p], wantOut[p], 3},
				} {
					roll, sum, n := totalsOf(t, evs, h.pid)
					if n != 1 {
						t.Fatalf("period %d, %s: %d rollup events, want 1", p, h.name, n)
					}
					rollups++
					if roll.bytesOut != h.out || roll.bytesIn != h.in {
						t.Errorf("period %d, %s: rollup bytes out %d, in %d; want %d, %d", p, h.name, roll.bytesOut, roll.bytesIn, h.out, h.in)
					}
					// The deltas of the flow events add up to the
					// rollup's in both modes: a skipped flow had none.
					if roll.bytesOut != sum.bytesOut || roll.bytesIn != sum.bytesIn || roll.segsIn != sum.segsIn ||
						roll.segsOut != sum.segsOut || roll.retrans != sum.retrans {
						t.Errorf("period %d, %s: rollup deltas %+v, flow events sum to %+v", p, h.name, roll, sum)
					}
					wantFlows, wantFinal := 3, 0
					if h.name == "server" {
						wantFlows++ // the listener
					}
					if p == periods-1 {
						wantFinal = 1
					}
					if roll.flows != wantFlows || roll.final != wantFinal {
						t.Errorf("period %d, %s: rollup of %d flows, %d final; want %d, %d", p, h.name, roll.flows, roll.final, wantFlows, wantFinal)
					}
					if p < periods-1 {
						want := rollupTotals{established: 3, outbound: 3}
						if h.name == "server" {
							want = rollupTotals{established: 3, listen: 1, inbound: 3, listening: 1}
						}
						got := rollupTotals{established: roll.established, listen: roll.listen, inbound: roll.inbound, outbound: roll.outbound, listening: roll.listening}
						if got != want {
							t.Errorf("period %d, %s: rollup counts %+v, want %+v", p, h.name, got, want)
						}
					}
					if got, ok := rollupCores(byPeriod[p], h.pid); (ok && got != sharedCores) || ok != (p > 0 && h.name == "client") {
						t.Errorf("period %d, %s: rollup cpu %q (present %v), want %q from period 1 for the client only", p, h.name, got, ok, sharedCores)
					}
					if mode == ReportAll {
						if sum.events != roll.flows || sum.final != roll.final ||
							sum.established != roll.established || sum.listen != roll.listen ||
							sum.inbound != roll.inbound || sum.outbound != roll.outbound || sum.listening != roll.listening {
							t.Errorf("period %d, %s: rollup %+v, flow events %+v", p, h.name, roll, sum)
						}
						if roll.rttMin != sum.rttMin || roll.rttMax != sum.rttMax || roll.rttMin == 0 {
							t.Errorf("period %d, %s: rollup RTT %d..%d µs, flow events %d..%d", p, h.name, roll.rttMin, roll.rttMax, sum.rttMin, sum.rttMax)
						}
					} else if sum.events < roll.flows {
						skippedSeen = true
					}
				}
			}
			if mode == ReportActive && !skippedSeen {
				t.Error("report: active left no flow without an event: the test proves nothing about skipped flows")
			}
			if got := m.Counter("input.flows.rollup_events").Load(); got != rollups {
				t.Errorf("input.flows.rollup_events = %d, want %d", got, rollups)
			}
		})
	}
}

// sharedCores is the core distribution the test shares for the client,
// as rollupCores prints it.
const sharedCores = "pct 0.25 dominant 3 spread 1.5 cores 2: 1=0.0625 3=0.1875"

// shareClientCores puts a core distribution for the client in the input's
// shared store, keyed as the cpu input keys it: pid and start time, which
// the series of the client's rollup in evs names.
func shareClientCores(t *testing.T, in *flowsInput, evs []pipeline.Event, pid int) {
	t.Helper()
	for _, e := range evs {
		var k input.ProcessKey
		if _, err := fmt.Sscanf(e.Series, "process/%d/%d", &k.PID, &k.StartTime); err != nil || k.PID != pid {
			continue
		}
		in.cores = input.NewProcessCores()
		in.cores.Set(time.Now(), time.Hour, map[input.ProcessKey]input.CoreUse{k: {
			Pct: 0.25, DominantCore: 3, Spread: 1.5, Cores: []input.CoreShare{{CPU: 1, Pct: 0.0625}, {CPU: 3, Pct: 0.1875}},
		}})
		return
	}
	t.Fatalf("no rollup of pid %d", pid)
}

// rollupCores prints fleutan.flow.rollup.cpu of pid's rollup in evs.
func rollupCores(evs []pipeline.Event, pid int) (string, bool) {
	for _, e := range evs {
		if v, _ := e.Fields.GetValue("process.pid"); fmt.Sprint(v) != strconv.Itoa(pid) {
			continue
		}
		c, ok := e.Fields.GetValue("fleutan.flow.rollup.cpu")
		if !ok {
			continue
		}
		m := c.(*pipeline.Object).M()
		s := fmt.Sprintf("pct %v dominant %v spread %v cores %v:", m["pct"], m["dominant_core"], m["spread"], m["cores_used"])
		for _, pc := range m["per_core"].([]any) {
			o := pc.(*pipeline.Object).M()
			s += fmt.Sprintf(" %v=%v", o["core"], o["pct"])
		}
		return s, true
	}
	return "", false
}

// totalsOf reads the rollup event of pid in evs and sums its flow events;
// n is how many rollup events pid has.
func totalsOf(t *testing.T, evs []pipeline.Event, pid int) (roll, sum rollupTotals, n int) {
	t.Helper()
	num := func(e pipeline.Event, key string) uint64 {
		v, ok := e.Fields.GetValue(key)
		if !ok {
			return 0
		}
		u, err := strconv.ParseUint(fmt.Sprint(v), 10, 64)
		if err != nil {
			t.Fatalf("%s = %v: %v", key, v, err)
		}
		return u
	}
	str := func(e pipeline.Event, key string) string {
		v, _ := e.Fields.GetValue(key)
		return fmt.Sprint(v)
	}
	for _, e := range evs {
		if num(e, "process.pid") != uint64(pid) {
			continue
		}
		if str(e, "fleutan.flow.scope") == ScopeProcess {
			n++
			const r = "fleutan.flow.rollup."
			roll = rollupTotals{
				flows: int(num(e, r+"flows")), final: int(num(e, r+"final")),
				bytesIn: num(e, r+"delta.bytes_in"), bytesOut: num(e, r+"delta.bytes_out"),
				segsIn: num(e, r+"delta.segs_in"), segsOut: num(e, r+"delta.segs_out"), retrans: num(e, r+"delta.retrans"),
				established: int(num(e, r+"state.established")), listen: int(num(e, r+"state.listen")),
				inbound: int(num(e, r+"direction.inbound")), outbound: int(num(e, r+"direction.outbound")),
				listening: int(num(e, r+"direction.listening")),
				rttMin:    num(e, r+"rtt_us.min"), rttMax: num(e, r+"rtt_us.max"),
			}
			continue
		}
		const f = "fleutan.flow."
		sum.events++
		sum.bytesIn += num(e, f+"delta.bytes_in")
		sum.bytesOut += num(e, f+"delta.bytes_out")
		sum.segsIn += num(e, f+"delta.segs_in")
		sum.segsOut += num(e, f+"delta.segs_out")
		sum.retrans += num(e, f+"delta.retrans")
		if str(e, f+"final") == "true" {
			sum.final++
		}
		switch str(e, f+"state") {
		case "established":
			sum.established++
		case "listen":
			sum.listen++
		}
		switch str(e, f+"direction") {
		case "inbound":
			sum.inbound++
		case "outbound":
			sum.outbound++
		case "listening":
			sum.listening++
		}
		if rtt := num(e, f+"tcp.rtt_us"); rtt > 0 && str(e, f+"direction") != "listening" {
			if sum.rttMin == 0 || rtt < sum.rttMin {
				sum.rttMin = rtt
			}
			sum.rttMax = max(sum.rttMax, rtt)
		}
	}
	return roll, sum, n
}

// TestRollupOption: rollups are on unless rollup: false.
func TestRollupOption(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{{"period: 10s\n", true}, {"rollup: true\n", true}, {"rollup: false\n", false}} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
			t.Fatal(err)
		}
		in, err := New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0"), input.Settings{})
		if err != nil {
			t.Fatal(err)
		}
		if got := in.(*flowsInput).roller != nil; got != tt.want {
			t.Errorf("%q: rollups %v, want %v", tt.src, got, tt.want)
		}
	}
}
