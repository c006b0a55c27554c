package logstash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func yamlHosts(addrs ...string) string {
	return "hosts: [" + strings.Join(addrs, ", ") + "]\n"
}

func TestPublishDeliversEveryDocumentIntact(t *testing.T) {
	for _, level := range []int{0, 3, 9} {
		t.Run(fmt.Sprintf("compression_level=%d", level), func(t *testing.T) {
			rec := newReceived()
			srv := startServer(t, "a", rec, serverOpts{})
			g := newOutput(t, yamlHosts(srv.addr)+fmt.Sprintf("compression_level: %d\nbulk_max_size: 64\n", level), nil)
			const n = 300
			events := make([]pipeline.Event, n)
			for i := range events {
				events[i] = codectest.FlowEvent(i)
			}
			b := pipeline.NewBatch(events)
			if err := g.Clients[0].Publish(context.Background(), b); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			for i := range n {
				if st, _ := b.Status(i); st != pipeline.Acked {
					t.Fatalf("event %d: status %d, want Acked", i, st)
				}
			}
			rec.waitDistinct(t, n, 5*time.Second)
			for i := range events {
				raw := codec.AppendEvent(nil, &events[i], codec.Options{Metadata: true, Beat: "fleutanbeat", Type: "_doc", Version: "9.9.9"})
				var want map[string]any
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("fl-%d", i)
				rec.mu.Lock()
				got, count := rec.docs[id], rec.count[id]
				rec.mu.Unlock()
				if count != 1 {
					t.Fatalf("%s arrived %d times, want 1", id, count)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s arrived as\n%v\nwant\n%v", id, got, want)
				}
			}
			meta := rec.docs["fl-0"]["@metadata"].(map[string]any)
			wantMeta := map[string]any{"_id": "fl-0", "beat": "fleutanbeat", "type": "_doc", "version": "9.9.9"}
			if !reflect.DeepEqual(meta, wantMeta) {
				t.Fatalf("@metadata = %v, want %v", meta, wantMeta)
			}
			// 300 events in windows of bulk_max_size 64.
			if want := []int{64, 64, 64, 64, 44}; !reflect.DeepEqual(rec.windows, want) {
				t.Fatalf("windows %v, want %v", rec.windows, want)
			}
		})
	}
}

func TestPipelineDeliversEveryEventThroughPipeline(t *testing.T) {
	rec := newReceived()
	srv := startServer(t, "a", rec, serverOpts{})
	g := newOutput(t, yamlHosts(srv.addr)+"bulk_max_size: 100\nworker: 2\n", nil)
	const n = 5000
	m := runPipeline(t, g, n, 500, 30*time.Second)
	checkAll(t, rec, n)
	if d := rec.duplicates(); d != 0 {
		t.Fatalf("%d duplicates without any failure", d)
	}
	doc := rec.docs["ev-42"]
	if doc["message"] != `event 42 with "quotes", unicode é and \ backslash` || doc["seq"] != float64(42) ||
		doc["@timestamp"] != "2026-11-27T04:00:00.042Z" {
		t.Fatalf("ev-42 arrived as %v", doc)
	}
	if ds := doc["data_stream"].(map[string]any)["dataset"]; ds != "fleutan.flows" {
		t.Fatalf("data_stream.dataset = %v", ds)
	}
	if got := m.Counter("pipeline.events.acked").Load(); got != n {
		t.Fatalf("pipeline acked %d, want %d", got, n)
	}
}

// TestServerProcessKilledAndRestartedLosesNothing kills a separate server
// process with SIGKILL mid-stream and starts it again on the same port.
func TestServerProcessKilledAndRestartedLosesNothing(t *testing.T) {
	addr := freeAddr(t)
	rec := newReceived()
	first := startServerProcess(t, addr, rec)
	logs := &logRecorder{}
	const bulk = 100
	g := newOutput(t, yamlHosts(addr)+fmt.Sprintf("bulk_max_size: %d\ntimeout: 5s\nbackoff: {init: 20ms, max: 200ms}\n", bulk), logs)
	const n = 20000
	dupsBeforeKill := make(chan int, 1)
	go func() {
		rec.waitDistinct(t, n/4, 30*time.Second)
		first.kill()
		dupsBeforeKill <- rec.duplicates()
		time.Sleep(300 * time.Millisecond) // the output sees failures meanwhile
		startServerProcess(t, addr, rec)
	}()
	runPipeline(t, g, n, 1000, 60*time.Second)
	// The last ids may still be in the pipe from the process.
	rec.waitDistinct(t, n, 5*time.Second)
	checkAll(t, rec, n)
	if d := <-dupsBeforeKill; d != 0 {
		t.Fatalf("%d duplicates before the server was killed", d)
	}
	// Only the batch in flight when the process died can arrive twice: the
	// server wrote it out and died before its ACK reached us.
	dups := rec.duplicates()
	t.Logf("duplicates after restart: %d", dups)
	if dups > bulk {
		t.Fatalf("%d duplicates, want at most one batch (%d)", dups, bulk)
	}
	if w := logs.matching("WARN", addr); len(w) != 1 {
		t.Fatalf("want exactly one warning for the outage, got %d: %q", len(w), w)
	}
	if i := logs.matching("INFO", "connected to Logstash again"); len(i) != 1 {
		t.Fatalf("want one reconnect message, got %q", i)
	}
}

// TestBackpressureWhenServerStopsAcknowledging holds every ACK (with
// keepalives, as a busy Logstash does): the queue fills, the input blocks
// with exactly queue + one batch taken, and nothing is lost after release.
func TestBackpressureWhenServerStopsAcknowledging(t *testing.T) {
	rec := newReceived()
	srv := startServer(t, "a", rec, serverOpts{hold: true})
	g := newOutput(t, yamlHosts(srv.addr)+"bulk_max_size: 50\ntimeout: 1s\n", nil)
	const n, queue = 1000, 100
	m := pipeline.NewMetrics()
	var q pipeline.MemQueueConfig
	q.Events = queue
	p := pipeline.New(pipeline.Settings{Metrics: m, Queue: q, Outputs: g.Clients, BatchSize: g.BatchSize,
		RetryInit: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	p.Start()
	pub := p.Client(pipeline.ClientConfig{Input: "test"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := pub.Publish(ctx, testEvent(i)); err != nil {
				done <- err
				return
			}
			published.Add(1)
		}
		done <- nil
	}()
	// Wait until the input is blocked: the count stops moving. The ACK
	// wait is 3 timeouts long, so keepalives alone keep the batch alive.
	last := int64(-1)
	for published.Load() != last {
		last = published.Load()
		time.Sleep(300 * time.Millisecond)
	}
	rec.mu.Lock()
	windows := append([]int(nil), rec.windows...)
	rec.mu.Unlock()
	if len(windows) != 1 {
		t.Fatalf("server got %d windows while holding ACKs, want 1", len(windows))
	}
	if want := int64(queue + windows[0]); last != want {
		t.Fatalf("input published %d events before blocking, want queue %d + batch in flight %d", last, queue, windows[0])
	}
	srv.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := p.Close(ctx); left != 0 {
		t.Fatalf("%d undelivered", left)
	}
	checkAll(t, rec, n)
	if d := rec.duplicates(); d != 0 {
		t.Fatalf("%d duplicates; a held but alive server must not cause resends", d)
	}
}

// TestLoadbalanceSharesLoad holds server a's ACKs: its client is stuck with
// one batch, so the rest must go to b; with failover everything goes to
// the first host.
func TestLoadbalanceSharesLoad(t *testing.T) {
	t.Run("loadbalance", func(t *testing.T) {
		rec := newReceived()
		a := startServer(t, "a", rec, serverOpts{hold: true})
		b := startServer(t, "b", rec, serverOpts{})
		g := newOutput(t, yamlHosts(a.addr, b.addr)+"loadbalance: true\nbulk_max_size: 100\n", nil)
		if len(g.Clients) != 2 {
			t.Fatalf("%d clients, want 2", len(g.Clients))
		}
		const n = 3000
		go func() {
			for rec.byServerCount("b") < 1000 {
				time.Sleep(5 * time.Millisecond)
			}
			a.release()
		}()
		runPipeline(t, g, n, 200, 30*time.Second)
		checkAll(t, rec, n)
		ga, gb := rec.byServerCount("a"), rec.byServerCount("b")
		if ga < 1 || gb < 1000 || ga+gb != n {
			t.Fatalf("a got %d, b got %d of %d", ga, gb, n)
		}
	})
	t.Run("failover", func(t *testing.T) {
		rec := newReceived()
		a := startServer(t, "a", rec, serverOpts{})
		b := startServer(t, "b", rec, serverOpts{})
		g := newOutput(t, yamlHosts(a.addr, b.addr)+"bulk_max_size: 100\n", nil)
		const n = 3000
		runPipeline(t, g, n, 200, 30*time.Second)
		checkAll(t, rec, n)
		if ga, gb := rec.byServerCount("a"), rec.byServerCount("b"); ga != n || gb != 0 {
			t.Fatalf("a got %d, b got %d; failover must use only the first host", ga, gb)
		}
	})
}

func (r *received) byServerCount(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byServer[name]
}

func TestFailoverMovesToNextHost(t *testing.T) {
	rec := newReceived()
	dead := freeAddr(t)
	a := startServer(t, "a", rec, serverOpts{})
	b := startServer(t, "b", rec, serverOpts{})
	logs := &logRecorder{}
	g := newOutput(t, yamlHosts(dead, a.addr, b.addr)+"bulk_max_size: 100\nbackoff: {init: 10ms, max: 50ms}\n", logs)
	const n = 6000
	go func() {
		for rec.byServerCount("a") < 2000 {
			time.Sleep(2 * time.Millisecond)
		}
		a.Close()
	}()
	runPipeline(t, g, n, 200, 30*time.Second)
	checkAll(t, rec, n)
	ga, gb := rec.byServerCount("a"), rec.byServerCount("b")
	if ga < 2000 || gb < 1 {
		t.Fatalf("a got %d, b got %d", ga, gb)
	}
	if w := logs.matching("WARN", dead); len(w) != 1 {
		t.Fatalf("want one warning naming the dead host, got %q", w)
	}
	if w := logs.matching("WARN", a.addr); len(w) != 1 {
		t.Fatalf("want one warning naming the closed host, got %q", w)
	}
}

func TestPublishHonoursContext(t *testing.T) {
	rec := newReceived()
	srv := startServer(t, "a", rec, serverOpts{hold: true})
	g := newOutput(t, yamlHosts(srv.addr), nil)
	b := pipeline.NewBatch([]pipeline.Event{testEvent(0), testEvent(1)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := g.Clients[0].Publish(ctx, b)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want the context's error", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("Publish took %s after its context ended", el)
	}
	for i := range b.Len() {
		if st, _ := b.Status(i); st != pipeline.Pending {
			t.Fatalf("event %d status %d, want Pending (retried)", i, st)
		}
	}
	// Close while a Publish waits must end it too.
	done := make(chan error, 1)
	go func() {
		done <- g.Clients[0].Publish(context.Background(), pipeline.NewBatch([]pipeline.Event{testEvent(2)}))
	}()
	time.Sleep(100 * time.Millisecond)
	g.Clients[0].Close()
	if err := <-done; err == nil {
		t.Fatal("Publish succeeded after Close without an ACK")
	}
	if err := g.Clients[0].Publish(context.Background(), pipeline.NewBatch([]pipeline.Event{testEvent(3)})); !errors.Is(err, errClosed) {
		t.Fatalf("Publish after Close = %v, want errClosed", err)
	}
}

func TestSlowStartGrowsWindow(t *testing.T) {
	rec := newReceived()
	srv := startServer(t, "a", rec, serverOpts{})
	g := newOutput(t, yamlHosts(srv.addr)+"bulk_max_size: 100\nslow_start: true\npipelining: 0\n", nil)
	for range 2 {
		events := make([]pipeline.Event, 100)
		for i := range events {
			events[i] = testEvent(i)
		}
		if err := g.Clients[0].Publish(context.Background(), pipeline.NewBatch(events)); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{10, 15, 23, 35, 17, 53, 47}
	if !reflect.DeepEqual(rec.windows, want) {
		t.Fatalf("windows %v, want %v", rec.windows, want)
	}
}

func TestWindow(t *testing.T) {
	w := newWindow(100, true)
	var got []int
	for _, step := range []string{"grow", "grow", "grow", "shrink", "grow", "grow", "grow", "grow", "grow"} {
		if step == "grow" {
			w.grow(w.size)
		} else {
			w.shrink()
		}
		got = append(got, w.size)
	}
	// 10 15 23 35; the window of 35 fails: halve to 17, regrow capped at
	// the largest size that worked (23) before probing past it.
	if want := []int{15, 23, 35, 17, 23, 35, 53, 80, 100}; !reflect.DeepEqual(got, want) {
		t.Fatalf("window sizes %v, want %v", got, want)
	}
	fixed := newWindow(2048, false)
	fixed.shrink()
	fixed.grow(10)
	if fixed.size != 2048 {
		t.Fatalf("without slow_start the window changed to %d", fixed.size)
	}
}

func TestTTLReconnectsBeforeBatch(t *testing.T) {
	for _, tc := range []struct {
		ttl  string
		want int64
	}{{"0s", 1}, {"1ms", 3}} {
		t.Run("ttl="+tc.ttl, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cl := &countingListener{Listener: ln}
			rec := newReceived()
			startServerOn(t, cl, "a", rec, false)
			g := newOutput(t, yamlHosts(ln.Addr().String())+"ttl: "+tc.ttl+"\n", nil)
			for i := range 3 {
				time.Sleep(5 * time.Millisecond)
				if err := g.Clients[0].Publish(context.Background(), pipeline.NewBatch([]pipeline.Event{testEvent(i)})); err != nil {
					t.Fatal(err)
				}
			}
			if got := cl.accepted.Load(); got != tc.want {
				t.Fatalf("%d connections, want %d", got, tc.want)
			}
		})
	}
}

type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
