package rdmainput

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/cmd/fleutanbeat/queryapi"
	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/rdma"
	"github.com/fleutan/fleutanbeat/input/rdma/rxetest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type recorder struct {
	mu     sync.Mutex
	events []pipeline.Event
}

func (r *recorder) Publish(_ context.Context, evs ...pipeline.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, pipeline.CloneEvents(evs)...)
	return nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWithoutRDMAOneLogLineAndNoEvents: on a kernel without RDMA netlink
// (the host CI's) or without RDMA devices, the input runs through its
// periods, says so in one log line, publishes nothing and counts no
// error.
func TestWithoutRDMAOneLogLineAndNoEvents(t *testing.T) {
	var logs syncBuf
	m := pipeline.NewMetrics()
	c := DefaultConfig()
	c.Period = config.Duration(20 * time.Millisecond)
	latest := input.NewLatest()
	in := newInput(c, input.Settings{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: m, Latest: latest})
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := in.Run(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if in.coll != nil && len(in.prev.Devices) > 0 {
		t.Skipf("this kernel has RDMA devices: %+v", in.prev.Devices)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !(strings.Contains(lines[0], "no RDMA in this kernel") || strings.Contains(lines[0], "no RDMA devices")) {
		t.Errorf("log %q, want one line saying there is no RDMA", lines)
	}
	if len(rec.events) != 0 {
		t.Errorf("published %v", rec.events)
	}
	if n := in.n.Collections.Load(); n < 3 {
		t.Errorf("%d collections in 300ms at a 20ms period", n)
	}
	if e := in.n.Errors.Load(); e != 0 {
		t.Errorf("%d errors", e)
	}
	// The query API gets a collection with nothing in it each period.
	prev, cur, ok := latest.Pair("rdma")
	snap, _ := cur.Snapshot.(rdma.Snapshot)
	if !ok || prev.Time.IsZero() || snap.Time.IsZero() || len(snap.Devices) != 0 || len(snap.QPs) != 0 {
		t.Errorf("query API collections %+v then %+v, want two empty ones", prev, cur)
	}
}

// TestRpingQueuePairsAndFinalEvents: with rping's server and client
// connected over soft-RoCE, the input reports both queue pairs with
// their pids, process name rping, the client as source (an ephemeral
// port) and the server's port as destination, the CM endpoints as local
// and remote, PSN deltas in the second period, and, once both are
// killed, exactly one final event per queue pair.
func TestRpingQueuePairsAndFinalEvents(t *testing.T) {
	sc := rxetest.New(t)
	srv := rxetest.StartRping(t, "-s", "-a", rxetest.AddrA, "-p", "7472", "-C", "100000000")
	time.Sleep(500 * time.Millisecond)
	cli := rxetest.StartRping(t, "-c", "-a", rxetest.AddrA, "-p", "7472", "-C", "100000000")
	cli.WaitLines(t, 3, time.Minute)
	cpid, spid := cli.Cmd.Process.Pid, srv.Cmd.Process.Pid

	in := newInput(DefaultConfig(), input.Settings{})
	defer func() {
		if in.coll != nil {
			in.coll.Close()
		}
	}()
	ctx := context.Background()
	in.collect(ctx)
	cli.WaitLines(t, cli.Lines()+5, time.Minute)
	evs := in.collect(ctx)

	a := rxetest.AddrA
	byPID := map[int]pipeline.M{}
	for _, e := range evs {
		if v, _ := e.Fields.GetValue("fleutan.rdma.device"); v != sc.DevA {
			continue
		}
		if v, _ := e.Fields.GetValue("fleutan.rdma.scope"); v != "qp" {
			continue
		}
		pid, _ := e.Fields.GetValue("process.pid")
		p, _ := pid.(int)
		byPID[p] = e.Fields
	}
	c, s := byPID[cpid], byPID[spid]
	if c == nil || s == nil {
		t.Fatalf("queue pair events by pid %v, want client %d and server %d", byPID, cpid, spid)
	}
	for _, f := range []pipeline.M{c, s} {
		name, _ := f.GetValue("process.name")
		srcIP, _ := f.GetValue("source.ip")
		dstIP, _ := f.GetValue("destination.ip")
		dport, _ := f.GetValue("destination.port")
		sport, _ := f.GetValue("source.port")
		dsq, _ := f.GetValue("fleutan.rdma.delta.sq_psn")
		tr, _ := f.GetValue("network.transport")
		if name != "rping" || srcIP != a || dstIP != a || dport != 7472 || sport == 7472 || tr != "roce" {
			t.Errorf("event %v: want process rping, %s:ephemeral -> %s:7472, transport roce", f, a, a)
		}
		if n, _ := dsq.(int64); n <= 0 {
			t.Errorf("send PSN delta %v, want positive after 5 pings", dsq)
		}
	}
	lc, _ := c.GetValue("fleutan.rdma.local.port")
	rs, _ := s.GetValue("fleutan.rdma.remote.port")
	if lc != rs {
		t.Errorf("client local port %v, server remote port %v", lc, rs)
	}
	if a, b := c["fleutan"].(pipeline.M)["rdma"].(pipeline.M)["flow_id"], s["fleutan"].(pipeline.M)["rdma"].(pipeline.M)["flow_id"]; a != b {
		t.Errorf("flow ids %v, %v differ", a, b)
	}

	cli.Signal(t, syscall.SIGKILL)
	srv.Signal(t, syscall.SIGKILL)
	_ = cli.Wait(10 * time.Second)
	_ = srv.Wait(10 * time.Second)
	finals := map[int]int{}
	for i := 0; i < 3; i++ {
		time.Sleep(200 * time.Millisecond)
		for _, e := range in.collect(ctx) {
			if v, _ := e.Fields.GetValue("fleutan.rdma.final"); v == true {
				pid, _ := e.Fields.GetValue("process.pid")
				p, _ := pid.(int)
				finals[p]++
			}
		}
	}
	if len(finals) != 2 || finals[cpid] != 1 || finals[spid] != 1 {
		t.Errorf("final events by pid %v, want exactly one for %d and one for %d", finals, cpid, spid)
	}
}

// TestRpingThroughQueryAPI: the input, running with the query API's
// store, answers GET /api/v1/rdma with rping's two queue pairs (pids,
// process name, CM endpoints, PSN advance over the last period) and the
// device's port counters grown by at least the packets the client sent.
func TestRpingThroughQueryAPI(t *testing.T) {
	sc := rxetest.New(t)
	srv := rxetest.StartRping(t, "-s", "-a", rxetest.AddrA, "-p", "7475", "-C", "100000000")
	time.Sleep(500 * time.Millisecond)
	cli := rxetest.StartRping(t, "-c", "-a", rxetest.AddrA, "-p", "7475", "-C", "100000000")
	cli.WaitLines(t, 3, time.Minute)
	cpid, spid := cli.Cmd.Process.Pid, srv.Cmd.Process.Pid

	latest := input.NewLatest()
	c := DefaultConfig()
	c.Period = config.Duration(500 * time.Millisecond)
	in := newInput(c, input.Settings{Latest: latest})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, &recorder{}) }()
	defer func() {
		cancel()
		<-done
	}()
	// Three collections: the third's period is known to be one with pings.
	for i := 0; i < 600; i++ {
		if in.n.Collections.Load() >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h := queryapi.New(queryapi.Options{Latest: latest, Inputs: []string{"rdma"}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/rdma", nil))
	var doc struct {
		PreviousTime *time.Time `json:"previous_time"`
		QueuePairs   []struct {
			QP struct {
				Device      string `json:"device"`
				PID         int    `json:"pid"`
				KernelOwner string `json:"kernel_owner"`
				Process     struct {
					Name string `json:"name"`
				} `json:"process"`
				CM struct {
					Src string `json:"src"`
					Dst string `json:"dst"`
				} `json:"cm"`
			} `json:"qp"`
			Delta *struct {
				SQPSN uint32 `json:"sq_psn"`
			} `json:"delta"`
		} `json:"queue_pairs"`
		Ports []struct {
			Device   string            `json:"device"`
			Counters map[string]uint64 `json:"counters"`
		} `json:"ports"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		t.Fatalf("GET /api/v1/rdma: %d %s", rec.Code, rec.Body)
	}
	if doc.PreviousTime == nil {
		t.Fatalf("previous_time null after %d collections: %s", in.n.Collections.Load(), rec.Body)
	}
	var sent uint32
	seen := map[int]string{}
	for _, q := range doc.QueuePairs {
		if q.QP.Device != sc.DevA {
			continue
		}
		// The API lists every queue pair, the kernel's too (the port's
		// GSI queue pair, owned by ib_core), which the events leave out.
		if q.QP.PID == 0 {
			if q.QP.KernelOwner == "" {
				t.Errorf("a queue pair without pid or kernel owner: %+v", q.QP)
			}
			continue
		}
		seen[q.QP.PID] = q.QP.Process.Name + " " + q.QP.CM.Src + "->" + q.QP.CM.Dst
		if q.Delta == nil || q.Delta.SQPSN == 0 {
			t.Errorf("queue pair of %d: delta %+v, want a send PSN advance", q.QP.PID, q.Delta)
		} else {
			sent += q.Delta.SQPSN
		}
	}
	a := rxetest.AddrA
	if len(seen) != 2 || !strings.HasPrefix(seen[cpid], "rping "+a+":") || !strings.HasSuffix(seen[cpid], "->"+a+":7475") ||
		!strings.HasPrefix(seen[spid], "rping "+a+":7475->"+a+":") {
		t.Errorf("queue pairs on %s by pid %v, want rping client %d (%s:ephemeral -> :7475) and server %d", sc.DevA, seen, cpid, a, spid)
	}
	var grown uint64
	for _, p := range doc.Ports {
		if p.Device == sc.DevA {
			grown = p.Counters["sent_pkts"]
		}
	}
	// Both queue pairs send on the one device, in the same period.
	if grown < uint64(sent) {
		t.Errorf("%s sent_pkts grew by %d in the period, less than the %d PSNs the queue pairs advanced", sc.DevA, grown, sent)
	}
}
