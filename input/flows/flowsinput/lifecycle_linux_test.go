package flowsinput

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// runInput runs in until it has published `periods` collections after the
// first, calling between(i) once collection i (from 1) was published.
func runInput(t *testing.T, in *flowsInput, m *pipeline.Metrics, periods int, between func(i int)) *recorder {
	t.Helper()
	rec := &recorder{publish: make(chan int, 1<<16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, rec) }()
	ended := false
	defer func() {
		cancel()
		if ended {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for i := 1; i <= periods+1; i++ {
		deadline := time.Now().Add(time.Minute)
		for m.Counter("input.flows.collections").Load() < int64(i) {
			select {
			case err := <-done:
				// Not a minute's wait for collections that cannot come.
				ended = true
				t.Fatalf("Run ended before collection %d: %v", i, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("collection %d not published within a minute", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if between != nil && i <= periods {
			between(i)
		}
	}
	return rec
}

// flowEvent is what the short-flow tests read of an event.
type flowEvent struct {
	ts                     time.Time
	final                  bool
	netns                  string
	direction              string
	local, remote          string // ports
	pid                    string
	processName            string
	sourceBytes, destBytes string
	deltaOut, deltaIn      string
	duration               time.Duration
	state                  string
}

func readFlowEvent(e pipeline.Event) flowEvent {
	get := func(k string) string {
		v, ok := e.Fields.GetValue(k)
		if !ok {
			return ""
		}
		return fmt.Sprint(v)
	}
	var d time.Duration
	if v, ok := e.Fields.GetValue("event.duration"); ok {
		fmt.Sscan(fmt.Sprint(v), &d)
	}
	return flowEvent{
		ts:          e.Timestamp,
		final:       get("fleutan.flow.final") == "true",
		netns:       get("fleutan.flow.netns"),
		direction:   get("fleutan.flow.direction"),
		local:       get("fleutan.flow.local.port"),
		remote:      get("fleutan.flow.remote.port"),
		pid:         get("process.pid"),
		processName: get("process.name"),
		sourceBytes: get("source.bytes"),
		destBytes:   get("destination.bytes"),
		deltaOut:    get("fleutan.flow.delta.bytes_out"),
		deltaIn:     get("fleutan.flow.delta.bytes_in"),
		duration:    d,
		state:       get("fleutan.flow.state"),
	}
}

// TestShortFlows: 200 connections, each sending its own number of bytes
// and closed within 300 ms, all between two collections. Each is reported
// exactly once, final, in the collection that follows, with the client's
// pid and exactly the bytes it sent; the server's end likewise with the
// server's pid.
func TestShortFlows(t *testing.T) {
	for _, tt := range []struct {
		name, addr string
		all        bool // namespaces: all, the agent's collector in the host namespace
	}{
		{"ipv4", "127.0.0.1:0", false},
		{"ipv6", "[::1]:0", false},
		{"other namespace with namespaces all", "127.0.0.1:0", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := nstest.New(t)
			if tcplifeMissing(t) {
				return
			}
			server, client := flowtest.Start(t, ns), flowtest.Start(t, ns)
			addr := server.Do(t, "listen tcp %s", tt.addr)
			server.Do(t, "serve")

			m := pipeline.NewMetrics()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			// A period long enough that the 200 connections fit between
			// two collections: the default 10s, since under emulation
			// (the kernel matrix) they took 4 to 5 s.
			const period = 10 * time.Second
			const cfg = "period: 10s\nprotocols: [tcp]\nmethod: ebpf\n"
			var in *flowsInput
			if tt.all {
				in = newAllNamespacesInput(t, cfg+"namespaces: all\n", log, m)
			} else {
				in = newTestInputMetrics(t, cfg, ns, log, m)
			}

			// client port → bytes sent; a port may come back once the
			// kernel reuses it (tcp_tw_reuse is on for loopback)
			sizes := map[string][]int{}
			var took time.Duration
			rec := runInput(t, in, m, 1, func(int) {
				rng := rand.New(rand.NewPCG(1, 2))
				start := time.Now()
				for i := range 200 {
					n := 1 + i*37 + rng.IntN(30) // all different
					t0 := time.Now()
					local := client.Do(t, "dialsend %s %d", addr, n)
					if d := time.Since(t0); d > 300*time.Millisecond {
						t.Errorf("connection %d took %s to open and close", i, d)
					}
					_, port, _ := net.SplitHostPort(local)
					sizes[port] = append(sizes[port], n)
				}
				took = time.Since(start)
			})
			if took > period {
				t.Fatalf("the 200 connections took %s, more than a period", took)
			}
			nsIno := fmt.Sprint(namespaceOf(t, ns).Inode)
			rec.mu.Lock()
			defer rec.mu.Unlock()

			clients, servers := map[string][]flowEvent{}, map[string][]flowEvent{}
			for _, e := range rec.events {
				f := readFlowEvent(e)
				if f.netns != nsIno || !f.final {
					continue
				}
				switch {
				case f.direction == "outbound" && sizes[f.local] != nil:
					clients[f.local] = append(clients[f.local], f)
				case f.direction == "inbound" && sizes[f.remote] != nil:
					servers[f.remote] = append(servers[f.remote], f)
				}
			}
			cpid, spid := fmt.Sprint(client.PID()), fmt.Sprint(server.PID())
			var collectionTS time.Time
			for port, ns := range sizes {
				c, s := clients[port], servers[port]
				if len(c) != len(ns) || len(s) != len(ns) {
					t.Errorf("port %s: %d client and %d server events, want %d each", port, len(c), len(s), len(ns))
					continue
				}
				// Same port twice: match by size, which differ.
				slices.SortFunc(c, func(a, b flowEvent) int { return cmp.Compare(atoi(a.sourceBytes), atoi(b.sourceBytes)) })
				slices.SortFunc(s, func(a, b flowEvent) int { return cmp.Compare(atoi(a.sourceBytes), atoi(b.sourceBytes)) })
				slices.Sort(ns)
				for i, n := range ns {
					c, s := c[i], s[i]
					want := fmt.Sprint(n)
					if c.pid != cpid || c.sourceBytes != want || c.deltaOut != want || c.destBytes != "0" {
						t.Errorf("client %s: pid %s bytes out %s (delta %s) in %s, want pid %s out %s in 0", port, c.pid, c.sourceBytes, c.deltaOut, c.destBytes, cpid, want)
					}
					// flows.Inbound: the source is the remote client.
					if s.pid != spid || s.sourceBytes != want || s.deltaIn != want || s.destBytes != "0" {
						t.Errorf("server %s: pid %s bytes in %s (delta %s) out %s, want pid %s in %s out 0", port, s.pid, s.sourceBytes, s.deltaIn, s.destBytes, spid, want)
					}
					if c.duration <= 0 || c.duration > 300*time.Millisecond {
						t.Errorf("client %s: event.duration %s, want the connection's lifetime (0 < d <= 300ms)", port, c.duration)
					}
					if c.state != "close" {
						t.Errorf("client %s: state %q, want close", port, c.state)
					}
					if collectionTS.IsZero() {
						collectionTS = c.ts
					}
					if !c.ts.Equal(collectionTS) || !s.ts.Equal(collectionTS) {
						t.Errorf("port %s reported in another collection (%s, %s, first %s)", port, c.ts, s.ts, collectionTS)
					}
				}
			}
			for _, k := range []string{"input.flows.ebpf.dropped_ring_full", "input.flows.ebpf.dropped_map_full", "input.flows.ebpf.dropped_pending_full"} {
				if v := m.Counter(k).Load(); v != 0 {
					t.Errorf("%s = %d", k, v)
				}
			}
			if n := strings.Count(logs.String(), "(method: ebpf)"); n != 1 {
				t.Errorf("%d log lines name method ebpf, want 1:\n%s", n, logs.String())
			}
		})
	}
}

// newAllNamespacesInput builds the input as the agent does: its collector
// discovers every namespace of the host.
func newAllNamespacesInput(t *testing.T, src string, log *slog.Logger, m *pipeline.Metrics) *flowsInput {
	t.Helper()
	return newTestInputMetrics(t, src, nil, log, m)
}

// TestChurn: a long-lived process opens and closes 20 connections a second
// for 30 s. At least 99.9% of them (all 600) are reported with its pid;
// the truth is the process's own log of its local ports.
func TestChurn(t *testing.T) {
	ns := nstest.New(t)
	if tcplifeMissing(t) {
		return
	}
	server, client := flowtest.Start(t, ns), flowtest.Start(t, ns)
	addr := server.Do(t, "listen tcp 127.0.0.1:0")
	server.Do(t, "serve")
	m := pipeline.NewMetrics()
	in := newTestInputMetrics(t, "period: 5s\nprotocols: [tcp]\nmethod: ebpf\n", ns, slog.New(slog.DiscardHandler), m)

	var ports []string
	// Collections every 5s during the 30s: connections close before,
	// during and after each of them.
	rec := runInput(t, in, m, 7, func(i int) {
		switch i {
		case 1:
			client.Do(t, "churn %s 20 30", addr)
		case 7:
			ports = strings.Split(client.Do(t, "churnlog"), ",")
		}
	})
	if len(ports) != 600 {
		t.Fatalf("the process logged %d connections, want 600", len(ports))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	cpid := fmt.Sprint(client.PID())
	reported := map[string]int{}
	for _, e := range rec.events {
		f := readFlowEvent(e)
		if f.final && f.direction == "outbound" && f.pid == cpid {
			reported[f.local]++
		}
	}
	// A port comes back once the kernel reuses it (tcp_tw_reuse is on for
	// loopback): count per port on both sides.
	logged := map[string]int{}
	for _, p := range ports {
		logged[p]++
	}
	found := 0
	var missing []string
	for p, n := range logged {
		switch got := reported[p]; {
		case got > n:
			t.Errorf("port %s used %d times, reported %d times", p, n, got)
			found += n
		case got < n:
			missing = append(missing, p)
			found += got
		default:
			found += n
		}
	}
	if float64(found) < 0.999*float64(len(ports)) {
		t.Errorf("%d of %d connections reported with pid %s; missing ports %v", found, len(ports), cpid, missing)
		for _, e := range rec.events {
			if f := readFlowEvent(e); slices.Contains(missing, f.local) {
				t.Logf("event of a missing port: %+v", f)
			}
		}
	}
	t.Logf("%d of %d connections reported with pid %s", found, len(ports), cpid)
}

// TestMethodFallback: the one log line that names the method, for each
// way of choosing it.
func TestMethodFallback(t *testing.T) {
	ns := nstest.New(t)
	refuse := func(flows.TrackerOptions) (*flows.Tracker, error) {
		return nil, fmt.Errorf("%w: load: operation not permitted", flows.ErrTrackerNotSupported)
	}
	for _, tt := range []struct {
		name    string
		yaml    string
		refuse  bool
		want    string // the one line naming the method
		wantErr string
	}{
		{"procfs", "period: 1h\nmethod: procfs\n", false, `level=INFO msg="flows: taking sock_diag snapshots each period (method: procfs); TCP connections that open and close within a period are not seen" method=procfs`, ""},
		{"auto without eBPF", "period: 1h\n", true, `msg="flows: eBPF is not available here, taking sock_diag snapshots each period instead (method: procfs); TCP connections that open and close within a period are not seen" method=procfs reason="tcplife: eBPF connection tracking not supported: load: operation not permitted"`, ""},
		{"ebpf without eBPF", "period: 1h\nmethod: ebpf\n", true, "", "flows: method ebpf: tcplife: eBPF connection tracking not supported: load: operation not permitted (use method: auto or procfs to fall back to sock_diag snapshots)"},
		{"auto", "period: 1h\n", false, `level=INFO msg="flows: following every TCP connection from its first state change to its close with eBPF on the sock:inet_sock_set_state tracepoint (method: ebpf)" method=ebpf max_tracked_connections=65536`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, also := tt.want, ""
			if tt.name == "auto" && !nstest.KernelAtLeast(t, 5, 12) {
				// The real fallback: before Linux 5.12 the verifier
				// knows no bpf_get_socket_cookie in tracing programs.
				want = `level=WARN msg="flows: eBPF is not available here, taking sock_diag snapshots each period instead (method: procfs); TCP connections that open and close within a period are not seen" method=procfs reason="tcplife: eBPF connection tracking not supported: load: verifier: `
				also = "bpf_get_socket_cookie"
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))
			m := pipeline.NewMetrics()
			in := newTestInputMetrics(t, tt.yaml, ns, log, m)
			if tt.refuse {
				in.openTracker = refuse
			}
			if tt.wantErr != "" {
				err := in.Run(context.Background(), &recorder{publish: make(chan int, 64)})
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Run = %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			collectOnce(t, in, m)
			var lines []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "(method: ") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], want) || !strings.Contains(lines[0], also) {
				t.Errorf("method log lines %q\nwant one containing %s and %q", lines, want, also)
			}
		})
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestLongFlowFinalFromClose: a flow seen by a snapshot and closed before
// the next one ends with a final event carrying the counters of TCP_CLOSE
// and, as delta, what it did since the snapshot; also when TIME-WAIT
// sockets, which keep the closed socket's cookie, are collected.
func TestLongFlowFinalFromClose(t *testing.T) {
	for _, states := range []string{"[established]", "[established, time-wait]"} {
		t.Run(states, func(t *testing.T) {
			ns := nstest.New(t)
			if tcplifeMissing(t) {
				return
			}
			server, client := flowtest.Start(t, ns), flowtest.Start(t, ns)
			addr := server.Do(t, "listen tcp 127.0.0.1:0")
			client.Do(t, "dial tcp %s", addr)
			local, _, _ := strings.Cut(server.Do(t, "accept"), " ")
			_, serverPort, _ := net.SplitHostPort(local)
			client.Do(t, "send 1000")
			client.Do(t, "sync")
			server.Do(t, "recv 1000")

			m := pipeline.NewMetrics()
			in := newTestInputMetrics(t, "period: 2s\nprotocols: [tcp]\nmethod: ebpf\nstates: "+states+"\n", ns, slog.New(slog.DiscardHandler), m)
			rec := runInput(t, in, m, 1, func(int) {
				client.Do(t, "send 500")
				client.Do(t, "sync")
				server.Do(t, "recv 500")
				client.Do(t, "close") // the client's socket goes to TIME-WAIT
				server.Do(t, "close")
			})
			rec.mu.Lock()
			defer rec.mu.Unlock()
			cpid := fmt.Sprint(client.PID())
			var got []flowEvent
			for _, e := range rec.events {
				if f := readFlowEvent(e); f.direction == "outbound" && f.remote == serverPort && f.state != "time_wait" {
					got = append(got, f)
				}
			}
			if len(got) != 2 {
				t.Fatalf("%d events of the client's flow, want a snapshot and the final: %+v", len(got), got)
			}
			snap, fin := got[0], got[1]
			if snap.final || snap.sourceBytes != "1000" || snap.pid != cpid {
				t.Errorf("snapshot: final %v bytes out %s pid %s, want false 1000 %s", snap.final, snap.sourceBytes, snap.pid, cpid)
			}
			if !fin.final || fin.state != "close" || fin.sourceBytes != "1500" || fin.deltaOut != "500" || fin.pid != cpid {
				t.Errorf("final: final %v state %s bytes out %s delta %s pid %s, want true close 1500 500 %s", fin.final, fin.state, fin.sourceBytes, fin.deltaOut, fin.pid, cpid)
			}
		})
	}
}

// TestTrackerAttributesReusedFD: a process that the index already read
// closes a file and connects, so its fd count is unchanged. The tgid the
// tracker saw at connect(2) makes the index rescan it, and the new flow
// has its pid in the very next collection.
func TestTrackerAttributesReusedFD(t *testing.T) {
	ns := nstest.New(t)
	if tcplifeMissing(t) {
		return
	}
	server, client := flowtest.Start(t, ns), flowtest.Start(t, ns)
	addr := server.Do(t, "listen tcp 127.0.0.1:0")
	server.Do(t, "serve")
	// The first connection starts the client's Go netpoller (its epoll and
	// event fds), so that the fd count of the dial below is the file's.
	client.Do(t, "dialsend %s 1", addr)
	client.Do(t, "holdfile")

	m := pipeline.NewMetrics()
	in := newTestInputMetrics(t, "period: 2s\nprotocols: [tcp]\nmethod: ebpf\n", ns, slog.New(slog.DiscardHandler), m)
	var port string
	rec := runInput(t, in, m, 1, func(int) {
		client.Do(t, "dropfile")
		local, _, _ := strings.Cut(client.Do(t, "dial tcp %s", addr), " ")
		_, port, _ = net.SplitHostPort(local)
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	cpid := fmt.Sprint(client.PID())
	n := 0
	for _, e := range rec.events {
		if f := readFlowEvent(e); f.direction == "outbound" && f.local == port {
			n++
			if f.pid != cpid || f.processName != flowtest.Comm(t) {
				t.Errorf("flow from port %s: process %s %q, want %s %q", port, f.pid, f.processName, cpid, flowtest.Comm(t))
			}
		}
	}
	if n != 1 {
		t.Errorf("%d events of the new flow, want 1", n)
	}
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
