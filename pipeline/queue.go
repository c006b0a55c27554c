package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

// QueueConfig is the `queue` section. Only the memory queue exists so far.
type QueueConfig struct {
	Mem MemQueueConfig `yaml:"mem"`
}

// MemQueueConfig is `queue.mem`, as in Beats.
type MemQueueConfig struct {
	// Events bounds the events waiting for an output; with each output
	// worker holding at most one batch besides, memory stays bounded and a
	// blocked output stops the inputs.
	Events int `yaml:"events"`
	Flush  struct {
		MinEvents int             `yaml:"min_events"`
		Timeout   config.Duration `yaml:"timeout"`
	} `yaml:"flush"`
}

// DefaultQueueConfig returns the defaults documented in fleutanbeat.yml.
func DefaultQueueConfig() QueueConfig {
	var c QueueConfig
	c.Mem.Events = 4096
	c.Mem.Flush.MinEvents = 2048
	c.Mem.Flush.Timeout = config.Duration(time.Second)
	return c
}

// Validate checks the queue settings.
func (c QueueConfig) Validate() error {
	var errs []error
	if c.Mem.Events < 1 {
		errs = append(errs, config.Errorf("mem.events", "must be at least 1, got %d", c.Mem.Events))
	}
	if c.Mem.Flush.MinEvents < 0 {
		errs = append(errs, config.Errorf("mem.flush.min_events", "must not be negative, got %d", c.Mem.Flush.MinEvents))
	} else if c.Mem.Events >= 1 && c.Mem.Flush.MinEvents > c.Mem.Events {
		errs = append(errs, config.Errorf("mem.flush.min_events", "%d is larger than queue.mem.events (%d)", c.Mem.Flush.MinEvents, c.Mem.Events))
	}
	if c.Mem.Flush.Timeout < 0 {
		errs = append(errs, config.Errorf("mem.flush.timeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

// ErrQueueClosed is returned by Push after Close.
var ErrQueueClosed = errors.New("queue closed")

// MemQueue is a bounded FIFO of events. Push blocks while it is full, which
// is how a slow output slows the inputs down.
type MemQueue struct {
	ch       chan Event
	minBatch int
	timeout  time.Duration

	mu     sync.RWMutex
	closed bool
	done   chan struct{}
}

// NewMemQueue builds a queue from validated settings.
func NewMemQueue(c MemQueueConfig) *MemQueue {
	return &MemQueue{
		ch:       make(chan Event, c.Events),
		minBatch: c.Flush.MinEvents,
		timeout:  c.Flush.Timeout.D(),
		done:     make(chan struct{}),
	}
}

// Push adds an event, waiting for room until ctx ends.
func (q *MemQueue) Push(ctx context.Context, e Event) error {
	// The read lock keeps Close from closing ch under a blocked sender.
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrQueueClosed
	}
	select {
	case q.ch <- e:
		return nil
	default:
	}
	select {
	case q.ch <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.done:
		return ErrQueueClosed
	}
}

// Close stops Push; events already queued can still be read with Get.
func (q *MemQueue) Close() {
	select {
	case <-q.done:
		return
	default:
	}
	close(q.done)
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// Len is the number of queued events; Cap the bound.
func (q *MemQueue) Len() int { return len(q.ch) }
func (q *MemQueue) Cap() int { return cap(q.ch) }

// Get returns up to limit events: at once when min_events are queued,
// otherwise when flush.timeout has passed since the first event arrived.
// It returns io.EOF-like errQueueDrained when closed and empty, or ctx.Err().
func (q *MemQueue) Get(ctx context.Context, limit int) ([]Event, error) {
	var first Event
	select {
	case e, ok := <-q.ch:
		if !ok {
			return nil, errQueueDrained
		}
		first = e
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	want := min(q.minBatch, limit)
	// Sized for what is queued or awaited, not for max: a batch slice of
	// max events is hundreds of kilobytes, most of it unused when events
	// trickle in.
	buf := make([]Event, 1, min(max(len(q.ch)+1, want), limit))
	buf[0] = first
	if q.timeout <= 0 || want <= 1 {
		return q.drain(buf, limit), nil
	}
	timer := time.NewTimer(q.timeout)
	defer timer.Stop()
	for len(buf) < want {
		select {
		case e, ok := <-q.ch:
			if !ok {
				return buf, nil
			}
			buf = append(buf, e)
		case <-timer.C:
			return q.drain(buf, limit), nil
		case <-ctx.Done():
			return buf, nil
		}
	}
	return q.drain(buf, limit), nil
}

// drain takes what is already queued without waiting.
func (q *MemQueue) drain(buf []Event, max int) []Event {
	for len(buf) < max {
		select {
		case e, ok := <-q.ch:
			if !ok {
				return buf
			}
			buf = append(buf, e)
		default:
			return buf
		}
	}
	return buf
}

var errQueueDrained = fmt.Errorf("queue drained")

// Queue is what the pipeline needs of a queue: the memory queue and the
// disk queue (pipeline/diskqueue) both implement it.
type Queue interface {
	// Push adds an event, blocking while the queue is full until ctx ends;
	// after Close it returns ErrQueueClosed.
	Push(ctx context.Context, e Event) error
	// Get returns up to max events, waiting for at least one. Once the
	// queue is closed and empty it returns ErrQueueDrained.
	Get(ctx context.Context, max int) (QueueBatch, error)
	// Close stops Push; what is queued can still be read with Get.
	Close()
	// Len is the number of events queued and not yet handed to Get.
	Len() int
}

// QueueBatch is events taken from a queue. Done is called once every event
// of the batch is final (acked or dropped); a disk queue deletes records only
// then, so events in flight at a crash are delivered again on restart.
type QueueBatch struct {
	Events []Event
	Done   func()
}

// ErrQueueDrained is returned by Queue.Get once the queue is closed and empty.
var ErrQueueDrained = errQueueDrained

// memQueue adapts MemQueue to Queue: events leave memory when Get takes
// them, so Done has nothing to do.
type memQueue struct{ *MemQueue }

func (q memQueue) Get(ctx context.Context, max int) (QueueBatch, error) {
	ev, err := q.MemQueue.Get(ctx, max)
	return QueueBatch{Events: ev, Done: func() {}}, err
}
