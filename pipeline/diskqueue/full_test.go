package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// blockedOutput is an output whose every Publish waits until release is
// closed (an Elasticsearch that accepts connections and never answers),
// then acks the batch.
type blockedOutput struct {
	release chan struct{}
	batches atomic.Int64 // Publish calls
	acked   atomic.Int64 // events acked after release
}

func (o *blockedOutput) Publish(ctx context.Context, b *pipeline.Batch) error {
	o.batches.Add(1)
	select {
	case <-o.release:
		o.acked.Add(int64(len(b.Events)))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *blockedOutput) Close() error { return nil }

// heapEvent carries ~1 KiB of its own (not shared) field data, so events
// held in memory would cost what they cost on disk.
func heapEvent(i int) pipeline.Event {
	return pipeline.Event{
		Timestamp: time.Unix(1700000000, int64(i)).UTC(),
		Series:    fmt.Sprintf("s%08d", i),
		Fields: pipeline.M{
			"event": pipeline.M{"dataset": "fleutan.flows"},
			"n":     fmt.Sprintf("%08d", i),
			"pad":   fmt.Sprintf("%01000d", i),
		},
	}
}

// liveHeap is the heap that survives a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestFullQueueWithBlockedOutputKeepsMemoryBounded runs the pipeline over a
// 2 MiB disk queue whose output never answers and offers it 64 MiB of
// events (32 times max_size). With on_full: block the producer is parked in
// Push once the queue holds max_size, with every published event on disk;
// with on_full: drop_oldest no Publish ever waits (each gets an already
// cancelled context, which a waiting Push would return), and what the
// output finally acks plus what was dropped is exactly what was published.
// In both modes the Go heap stays below a bound that the 64 MiB would break
// if events piled up in memory, and nothing published is lost once the
// output answers.
func TestFullQueueWithBlockedOutputKeepsMemoryBounded(t *testing.T) {
	const (
		maxSize = 2 << 20
		offered = 64 << 20
		// Live heap growth allowed while full: a batch in the output, the
		// queue's buffers, the pipeline's state. Far below offered.
		liveBound = 16 << 20
		// HeapInuse includes garbage not yet collected (GOGC=100 lets the
		// heap grow to about twice the live heap) but not the 64 MiB.
		inuseBound = 40 << 20
	)
	for _, onFull := range []string{OnFullBlock, OnFullDropOldest} {
		t.Run(onFull, func(t *testing.T) {
			c := testConfig(t.TempDir())
			c.MaxSize = maxSize
			c.SegmentSize = 256 << 10
			c.OnFull = onFull
			q, m := open(t, c)
			recLen := len(mustRecord(t, pipelineEvent(t, heapEvent(0))))
			total := offered / recLen

			out := &blockedOutput{release: make(chan struct{})}
			p := pipeline.New(pipeline.Settings{
				Metrics: m, QueueImpl: q, Outputs: []pipeline.Output{out}, BatchSize: 200,
				Agent:     pipeline.AgentInfo{ID: "full-agent", Name: "full", Type: "fleutanbeat", Version: "test", EphemeralID: "e"},
				RetryInit: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
			})
			p.Start()
			pub := p.Client(pipeline.ClientConfig{Input: "test"})
			before := liveHeap()
			var peak uint64
			var published atomic.Int64

			switch onFull {
			case OnFullBlock:
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() {
					for i := range total {
						if err := pub.Publish(ctx, heapEvent(i)); err != nil {
							done <- err
							return
						}
						published.Add(1)
					}
					done <- nil
				}()
				// Full, the output holding a batch, and a Push waiting: the
				// output's worker is in Publish, so the waiter is the producer.
				waitUntil(t, "a producer blocked on the full queue", func() bool {
					q.mu.Lock()
					defer q.mu.Unlock()
					return q.bytes+int64(recLen) > maxSize && q.waiting > 0 && out.batches.Load() == 1
				})
				peak = heapInuse()
				select {
				case err := <-done:
					t.Fatalf("producer returned %v with the output blocked", err)
				default:
				}
				n := published.Load()
				if want := int64(maxSize / recLen); n < want-1 || n > want {
					t.Fatalf("producer blocked after %d events, want %d (max_size / record size)", n, want)
				}
				if r := q.Records(); int64(r) != n {
					t.Fatalf("%d records on disk for %d published events", r, n)
				}
				grown := int64(liveHeap()) - int64(before)
				t.Logf("block: producer parked after %d of %d events (%d MiB offered); live heap grew %d KiB, HeapInuse %d MiB",
					n, total, offered>>20, grown>>10, peak>>20)
				if grown > liveBound {
					t.Fatalf("live heap grew %d bytes with the queue full, bound %d", grown, liveBound)
				}
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("blocked producer returned %v on cancel, want context.Canceled", err)
				}
			case OnFullDropOldest:
				cancelled, cancel := context.WithCancel(context.Background())
				cancel()
				for i := range total {
					if err := pub.Publish(cancelled, heapEvent(i)); err != nil {
						t.Fatalf("publish %d of %d with the queue full: %v (a Push waited)", i, total, err)
					}
					published.Add(1)
					if i%1024 == 0 {
						peak = max(peak, heapInuse())
					}
				}
				q.mu.Lock()
				bytes := q.bytes
				q.mu.Unlock()
				if bytes > maxSize+int64(recLen) {
					t.Fatalf("%d bytes on disk after %d events, max_size %d", bytes, total, maxSize)
				}
				grown := int64(liveHeap()) - int64(before)
				t.Logf("drop_oldest: %d events (%d MiB) published, none waited; %d bytes on disk; live heap grew %d KiB, peak HeapInuse %d MiB",
					total, offered>>20, bytes, grown>>10, peak>>20)
				if grown > liveBound {
					t.Fatalf("live heap grew %d bytes after %d MiB through a full queue, bound %d", grown, offered>>20, liveBound)
				}
				if peak > inuseBound {
					t.Fatalf("HeapInuse reached %d bytes while %d MiB went through a full queue, bound %d", peak, offered>>20, inuseBound)
				}
			}

			// The output answers: everything still queued is delivered.
			close(out.release)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if u := p.Close(ctx); u != 0 {
				t.Fatalf("%d events undelivered", u)
			}
			d, _ := m.Tree().GetValue(MetricDropped)
			dropped := d.(int64)
			kept := out.acked.Load()
			pushed := published.Load()
			t.Logf("%s: published %d, acked %d, dropped %d", onFull, pushed, kept, dropped)
			switch {
			case onFull == OnFullBlock && dropped != 0:
				t.Fatalf("on_full: block dropped %d events", dropped)
			case onFull == OnFullDropOldest && dropped == 0:
				t.Fatalf("nothing dropped after %d MiB through a %d MiB queue", offered>>20, maxSize>>20)
			}
			if kept+dropped != pushed {
				t.Fatalf("acked %d + dropped %d != published %d", kept, dropped, pushed)
			}
		})
	}
}

// pipelineEvent is e as the pipeline pushes it without an encoder: the
// client adds agent and data_stream and the deterministic _id.
func pipelineEvent(t *testing.T, e pipeline.Event) pipeline.Event {
	t.Helper()
	var got pipeline.Event
	q := &captureQueue{got: &got}
	p := pipeline.New(pipeline.Settings{
		QueueImpl: q,
		Agent:     pipeline.AgentInfo{ID: "full-agent", Name: "full", Type: "fleutanbeat", Version: "test", EphemeralID: "e"},
	})
	if err := p.Client(pipeline.ClientConfig{Input: "test"}).Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return got
}

type captureQueue struct{ got *pipeline.Event }

func (c *captureQueue) Push(_ context.Context, e pipeline.Event) error { *c.got = e; return nil }
func (c *captureQueue) Get(ctx context.Context, _ int) (pipeline.QueueBatch, error) {
	<-ctx.Done()
	return pipeline.QueueBatch{}, ctx.Err()
}
func (c *captureQueue) Close()   {}
func (c *captureQueue) Len() int { return 0 }

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
