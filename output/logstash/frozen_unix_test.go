//go:build unix

package logstash

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestFrozenServerProcessBackpressure stops the server process (SIGSTOP):
// no ACKs and no keepalives, connections still accepted by the kernel. The
// output times out and retries, the input blocks with a bounded number of
// events taken, and after SIGCONT every event arrives.
func TestFrozenServerProcessBackpressure(t *testing.T) {
	addr := freeAddr(t)
	rec := newReceived()
	proc := startServerProcess(t, addr, rec)
	const n, queue, bulk = 3000, 100, 50
	g := newOutput(t, yamlHosts(addr)+fmt.Sprintf("bulk_max_size: %d\ntimeout: 300ms\nbackoff: {init: 20ms, max: 100ms}\n", bulk), nil)
	var q pipeline.MemQueueConfig
	q.Events = queue
	p := pipeline.New(pipeline.Settings{Queue: q, Outputs: g.Clients, BatchSize: g.BatchSize,
		RetryInit: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	p.Start()
	pub := p.Client(pipeline.ClientConfig{Input: "test"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
	rec.waitDistinct(t, 500, 30*time.Second)
	if err := proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // lines already in the pipe are read
	atStop := int64(rec.distinct())
	time.Sleep(time.Second)
	p1 := published.Load()
	time.Sleep(500 * time.Millisecond)
	if p2 := published.Load(); p2 != p1 {
		t.Fatalf("input kept publishing (%d then %d) while the server was frozen", p1, p2)
	}
	if p1-atStop > queue+bulk {
		t.Fatalf("%d events published beyond the %d received: more than queue %d + one batch %d", p1-atStop, atStop, queue, bulk)
	}
	if err := proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := p.Close(ctx); left != 0 {
		t.Fatalf("%d undelivered", left)
	}
	rec.waitDistinct(t, n, 5*time.Second)
	checkAll(t, rec, n)
	t.Logf("duplicates after the freeze: %d", rec.duplicates())
}
