package diskqueue

import (
	"context"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// BenchmarkQueueFlowEvents pushes encoded flow events through a queue with
// one consumer that acks every batch, for the memory queue and the disk
// queue with the default fsync policy, and reports events/s and the bytes/s
// written to disk. The events are built before the timer starts: this is
// the queue's cost alone.
func BenchmarkQueueFlowEvents(b *testing.B) {
	const n = 200_000
	events := make([]pipeline.Event, 1000)
	for i := range events {
		e := codectest.FlowEvent(i)
		e.Body = codec.AppendFields(nil, e.Fields)
		e.Fields = nil
		e.ID = "abcdefghijklmnopqrstuv"
		events[i] = e
	}
	run := func(b *testing.B, q pipeline.Queue, bytes func() int64) {
		ctx := context.Background()
		done := make(chan int)
		go func() {
			got := 0
			for {
				qb, err := q.Get(ctx, 2048)
				if err != nil {
					done <- got
					return
				}
				got += len(qb.Events)
				qb.Done()
			}
		}()
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := q.Push(ctx, events[i%len(events)]); err != nil {
				b.Fatal(err)
			}
		}
		q.Close()
		if got := <-done; got != n {
			b.Fatalf("consumed %d of %d", got, n)
		}
		d := time.Since(start)
		b.ReportMetric(float64(n)/d.Seconds(), "events/s")
		if bytes != nil {
			b.ReportMetric(float64(bytes())/d.Seconds()/(1<<20), "MiB/s-written")
		}
	}
	b.Run("mem", func(b *testing.B) {
		for range b.N {
			c := pipeline.DefaultQueueConfig().Mem
			c.Flush.Timeout = 0
			run(b, memAdapter{pipeline.NewMemQueue(c)}, nil)
		}
	})
	b.Run("disk", func(b *testing.B) {
		for range b.N {
			c := DefaultConfig()
			c.Path = b.TempDir()
			q, err := Open(c, Settings{})
			if err != nil {
				b.Fatal(err)
			}
			var written int64
			run(b, &countingQueue{q, &written}, func() int64 { return written })
			_ = q.Release()
		}
	})
}

type memAdapter struct{ *pipeline.MemQueue }

func (m memAdapter) Get(ctx context.Context, max int) (pipeline.QueueBatch, error) {
	ev, err := m.MemQueue.Get(ctx, max)
	return pipeline.QueueBatch{Events: ev, Done: func() {}}, err
}

// countingQueue sums the record bytes written.
type countingQueue struct {
	*Queue
	written *int64
}

func (c *countingQueue) Push(ctx context.Context, e pipeline.Event) error {
	if err := c.Queue.Push(ctx, e); err != nil {
		return err
	}
	*c.written += int64(len(c.Queue.wbuf))
	return nil
}
