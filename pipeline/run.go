package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Settings is what the agent provides to the pipeline.
type Settings struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Agent   AgentInfo
	// Processors are the global ones, run after each input's own.
	Processors []Processor
	// Namespace is data_stream.namespace ("default").
	Namespace       string
	Tags            []string
	Fields          M
	FieldsUnderRoot bool
	Queue           MemQueueConfig
	// QueueImpl, when set, replaces the memory queue built from Queue (the
	// agent passes the disk queue here). The pipeline closes it for Push in
	// Close; releasing its files stays with whoever opened it.
	QueueImpl Queue
	// Outputs are the active output's clients (workers); each takes batches
	// of at most BatchSize events.
	Outputs   []Output
	BatchSize int
	// RetryBackoff bounds the wait before a failed batch is sent again
	// (exponential with jitter between Init and Max).
	RetryInit, RetryMax time.Duration
	// Encode, when set, appends the JSON members of fields to dst; the
	// client then stores each processed event as Body (see Event). The
	// agent passes output/codec.AppendFields.
	Encode func(dst []byte, fields M) []byte
}

// Pipeline connects inputs' publishers to the output workers.
type Pipeline struct {
	log             *slog.Logger
	metrics         *Metrics
	agent           AgentInfo
	global          []Processor
	namespace       string
	tags            []string
	fields          M
	fieldsUnderRoot bool
	queue           Queue
	outputs         []Output
	batchSize       int
	retryInit       time.Duration
	retryMax        time.Duration
	encode          func([]byte, M) []byte

	acked, retried *atomic.Int64
	out            *outputCounters

	stop     context.CancelFunc // ends output work at the drain deadline
	wg       sync.WaitGroup
	inflight atomic.Int64 // events taken from the queue and not yet final
	started  bool
}

// New builds a pipeline; Start launches the output workers.
func New(s Settings) *Pipeline {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Metrics == nil {
		s.Metrics = NewMetrics()
	}
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	if s.BatchSize <= 0 {
		s.BatchSize = 2048
	}
	if s.RetryInit <= 0 {
		s.RetryInit = time.Second
	}
	if s.RetryMax < s.RetryInit {
		s.RetryMax = 60 * time.Second
	}
	p := &Pipeline{
		log:             s.Logger,
		metrics:         s.Metrics,
		agent:           s.Agent,
		global:          s.Processors,
		namespace:       s.Namespace,
		tags:            s.Tags,
		fields:          s.Fields,
		fieldsUnderRoot: s.FieldsUnderRoot,
		queue:           s.QueueImpl,
		outputs:         s.Outputs,
		batchSize:       s.BatchSize,
		retryInit:       s.RetryInit,
		retryMax:        s.RetryMax,
		encode:          s.Encode,
		acked:           s.Metrics.Counter("pipeline.events.acked"),
		retried:         s.Metrics.Counter("pipeline.events.retried"),
	}
	if p.queue == nil {
		mq := NewMemQueue(s.Queue)
		p.queue = memQueue{mq}
		s.Metrics.Gauge("pipeline.queue.capacity", func() int64 { return int64(mq.Cap()) })
	}
	s.Metrics.Gauge("pipeline.queue.events", func() int64 { return int64(p.queue.Len()) })
	s.Metrics.Gauge("pipeline.events.inflight", func() int64 { return p.inflight.Load() })
	p.out = newOutputCounters(s.Metrics)
	return p
}

// outputCounters are libbeat.output.events.* and the write latency, which
// the workers count for whatever output is active.
type outputCounters struct {
	batches, total, acked, duplicates, deadLetter, dropped, failed *atomic.Int64
	latencySum                                                     *atomic.Int64
	active, latencyMax                                             atomic.Int64
}

func newOutputCounters(m *Metrics) *outputCounters {
	c := &outputCounters{
		batches:    m.Counter(MetricOutputBatches),
		total:      m.Counter(MetricOutputTotal),
		acked:      m.Counter(MetricOutputAcked),
		duplicates: m.Counter(MetricOutputDuplicates),
		deadLetter: m.Counter(MetricOutputDeadLetter),
		dropped:    m.Counter(MetricOutputDropped),
		failed:     m.Counter(MetricOutputFailed),
		latencySum: m.Counter(MetricOutputLatencySum),
	}
	m.Gauge(MetricOutputActive, c.active.Load)
	m.Gauge(MetricOutputLatencyMax, c.latencyMax.Load)
	return c
}

// publish hands one batch to the output, counting it.
func (c *outputCounters) publish(ctx context.Context, out Output, b *Batch) error {
	n := int64(b.Len())
	c.batches.Add(1)
	c.total.Add(n)
	c.active.Add(n)
	start := time.Now()
	err := out.Publish(ctx, b)
	us := time.Since(start).Microseconds()
	c.latencySum.Add(us)
	for {
		m := c.latencyMax.Load()
		if us <= m || c.latencyMax.CompareAndSwap(m, us) {
			break
		}
	}
	c.active.Add(-n)
	return err
}

// Metrics is the registry the pipeline counts into.
func (p *Pipeline) Metrics() *Metrics { return p.metrics }

// Start launches one worker per output client. Outputs start before inputs
// so that nothing published waits on an output that is not there.
func (p *Pipeline) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.started = true
	for i, out := range p.outputs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.work(ctx, i, out)
		}()
	}
}

// Close stops accepting events, lets the workers deliver what is queued
// until ctx ends, then stops them and closes the outputs. It returns the
// number of events that were not delivered. Inputs must be stopped first.
func (p *Pipeline) Close(ctx context.Context) (undelivered int64) {
	p.queue.Close()
	if !p.started {
		p.closeOutputs()
		return int64(p.queue.Len())
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.stop()
		<-done
	}
	p.stop()
	p.closeOutputs()
	// Events left in a memory queue are lost; a disk queue keeps them for
	// the next run, but they are undelivered by this one all the same.
	return p.inflight.Load() + int64(p.queue.Len())
}

func (p *Pipeline) closeOutputs() {
	for _, o := range p.outputs {
		if err := o.Close(); err != nil {
			p.log.Warn("closing output failed", "error", err)
		}
	}
}

// work takes batches from the queue and publishes them until the queue is
// drained or ctx ends. Failed events are retried by this worker with
// backoff, keeping their order relative to each other.
func (p *Pipeline) work(ctx context.Context, worker int, out Output) {
	for {
		qb, err := p.queue.Get(ctx, p.batchSize)
		if err != nil {
			return
		}
		p.inflight.Add(int64(len(qb.Events)))
		if p.deliver(ctx, worker, out, qb.Events) {
			qb.Done()
		}
	}
}

// deliver reports whether every event became final (acked or dropped); it
// returns false when ctx ended with events still to retry.
func (p *Pipeline) deliver(ctx context.Context, worker int, out Output, events []Event) bool {
	backoff := p.retryInit
	for len(events) > 0 {
		b := NewBatch(events)
		err := p.out.publish(ctx, out, b)
		var retry []Event
		for i := range b.Events {
			st, reason := b.Status(i)
			if st == Pending {
				st = Acked
				if err != nil {
					st = Retry
				}
			}
			switch st {
			case Acked:
				p.acked.Add(1)
				switch b.storedAs(i) {
				case storedDuplicate:
					p.out.duplicates.Add(1)
				case storedDeadLetter:
					p.out.deadLetter.Add(1)
				default:
					p.out.acked.Add(1)
				}
			case Dropped:
				p.metrics.LabeledCounter("pipeline.events.dropped", "reason", reason).Add(1)
				p.out.dropped.Add(1)
			case Retry:
				retry = append(retry, b.Events[i])
				p.out.failed.Add(1)
			}
		}
		p.inflight.Add(-int64(len(events) - len(retry)))
		if len(retry) == 0 {
			return true
		}
		p.retried.Add(int64(len(retry)))
		if err != nil && !errors.Is(err, context.Canceled) {
			p.log.Warn("output failed; retrying batch", "worker", worker, "events", len(retry), "backoff", backoff.String(), "error", err)
		}
		if !sleep(ctx, jitter(backoff)) {
			return false // in flight events stay counted as undelivered
		}
		backoff = min(2*backoff, p.retryMax)
		events = retry
	}
	return true
}

// jitter spreads retries of a fleet over [d/2, d] so that agents that lost
// the same cluster do not come back in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
