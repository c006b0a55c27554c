package flowsinput

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestReportActiveOnRealTraffic: two connections in a namespace over 12
// periods and a 13th in which both close. One stays idle; the other
// sends 1000 bytes before period 3 and 2345 before period 7. With
// heartbeat 4, report: active gives the idle one events in periods 0, 4
// and 8, the busy one in 0, 3, 7 and 11 (its heartbeat counts from its
// last event), and both their final events; report: all gives every
// period. In both modes the busy flow's deltas add up to the bytes sent,
// and each event's duration is the time since its flow's previous event.
func TestReportActiveOnRealTraffic(t *testing.T) {
	const periods, heartbeat = 12, 4
	sends := map[int]int{3: 1000, 7: 2345}
	every := make([]int, periods)
	for i := range every {
		every[i] = i
	}
	for _, tt := range []struct {
		mode       string
		idle, busy []int
	}{
		{ReportActive, []int{0, 4, 8}, []int{0, 3, 7, 11}},
		{ReportAll, every, every},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			ns := nstest.New(t)
			server, busy, idle := flowtest.Start(t, ns), flowtest.Start(t, ns), flowtest.Start(t, ns)
			addr := server.Do(t, "listen tcp 127.0.0.1:0")
			busyPort := localPort(t, busy.Do(t, "dial tcp %s", addr))
			server.Do(t, "accept")
			idlePort := localPort(t, idle.Do(t, "dial tcp %s", addr))
			server.Do(t, "accept")

			m := pipeline.NewMetrics()
			src := fmt.Sprintf("period: 1h\nprotocols: [tcp]\nstates: [established]\nreport: %s\nheartbeat: %d\n", tt.mode, heartbeat)
			in := newTestInputMetrics(t, src, ns, slog.New(slog.DiscardHandler), m)
			in.method = MethodProcfs
			rec := &recorder{publish: make(chan int, 1<<10)}
			ctx := context.Background()
			for p := 0; p <= periods; p++ {
				if n, ok := sends[p]; ok {
					busy.Do(t, "send %d", n)
					busy.Do(t, "sync")
					server.Do(t, "use 0")
					server.Do(t, "recv %d", n)
				}
				if p == periods {
					busy.Do(t, "close")
					idle.Do(t, "close")
				}
				rec.mu.Lock()
				before := len(rec.events)
				rec.mu.Unlock()
				if err := in.collect(ctx, rec); err != nil {
					t.Fatal(err)
				}
				rec.mu.Lock()
				for i := before; i < len(rec.events); i++ {
					rec.events[i].Meta = pipeline.M{"period": p}
				}
				rec.mu.Unlock()
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			check := func(name, port string, want []int, sent int) {
				t.Helper()
				var got []int
				var final, sum int
				last := -1
				var lastTS = rec.events[0].Timestamp
				for _, e := range rec.events {
					f := readFlowEvent(e)
					if f.direction != "outbound" || f.local != port {
						continue
					}
					p := e.Meta["period"].(int)
					if f.final {
						final++
						if p != periods {
							t.Errorf("%s: final event in period %d, want %d", name, p, periods)
						}
					} else {
						got = append(got, p)
						if last >= 0 && f.duration != e.Timestamp.Sub(lastTS) {
							t.Errorf("%s: period %d covers %v, want %v since period %d", name, p, f.duration, e.Timestamp.Sub(lastTS), last)
						}
						last, lastTS = p, e.Timestamp
					}
					if f.deltaOut != "" {
						n, _ := strconv.Atoi(f.deltaOut)
						sum += n
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: events in periods %v, want %v", name, got, want)
				}
				if final != 1 {
					t.Errorf("%s: %d final events, want 1", name, final)
				}
				if sum != sent {
					t.Errorf("%s: deltas add up to %d bytes out, want %d", name, sum, sent)
				}
			}
			check("idle", idlePort, tt.idle, 0)
			check("busy", busyPort, tt.busy, 1000+2345)
			skipped := m.Counter("input.flows.skipped_unchanged").Load()
			// Four established sockets (two per connection) in 12 periods.
			wantSkipped := int64(0)
			if tt.mode == ReportActive {
				wantSkipped = 4*periods - 2*int64(len(tt.idle)+len(tt.busy))
			}
			if skipped != wantSkipped {
				t.Errorf("input.flows.skipped_unchanged = %d, want %d", skipped, wantSkipped)
			}
		})
	}
}

// localPort is the local port of a helper's "dial" reply.
func localPort(t *testing.T, reply string) string {
	t.Helper()
	local, _, _ := strings.Cut(reply, " ")
	_, port, err := net.SplitHostPort(local)
	if err != nil {
		t.Fatalf("dial reply %q: %v", reply, err)
	}
	return port
}
