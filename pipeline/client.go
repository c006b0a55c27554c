package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// AgentInfo identifies the running agent in every event (agent.*) and in
// event ids.
type AgentInfo struct {
	ID      string // persisted under path.data
	Name    string
	Type    string
	Version string
	// EphemeralID changes with every start; it makes ids of events without
	// a series unique across restarts.
	EphemeralID string
}

// ClientConfig configures the publisher one input uses.
type ClientConfig struct {
	Input      string      // input type, for logs and metrics
	Processors []Processor // the input's own, run before the global ones
}

// client publishes one input's events: agent metadata, processors, id,
// then the queue. It runs in the input's goroutine, so processing scales
// with the number of inputs.
type client struct {
	p       *Pipeline
	procs   []Processor
	log     *slog.Logger
	seq     atomic.Uint64
	mu      sync.Mutex // serialises Publish calls that share scratch
	pubd    *atomic.Int64
	filt    *atomic.Int64
	perr    *atomic.Int64
	lastPE  atomic.Int64 // unix seconds of the last processor error logged
	scratch []byte       // encoding buffer, guarded by mu
	slab    []byte       // where encoded bodies are carved from, guarded by mu
	agent   *Shared
	streams map[string]*Shared // data_stream objects by dataset, guarded by mu
}

// Client returns the Publisher for one input.
func (p *Pipeline) Client(c ClientConfig) Publisher {
	procs := make([]Processor, 0, len(c.Processors)+len(p.global))
	procs = append(procs, c.Processors...)
	procs = append(procs, p.global...)
	return &client{
		p:     p,
		procs: procs,
		log:   p.log.With("input", c.Input),
		pubd:  p.metrics.Counter("pipeline.events.published"),
		filt:  p.metrics.Counter("pipeline.events.filtered"),
		perr:  p.metrics.Counter("pipeline.events.processor_errors"),
		agent: NewShared(M{
			"id":           p.agent.ID,
			"name":         p.agent.Name,
			"type":         p.agent.Type,
			"version":      p.agent.Version,
			"ephemeral_id": p.agent.EphemeralID,
		}),
		streams: map[string]*Shared{},
	}
}

func (c *client) Publish(ctx context.Context, events ...Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range events {
		e := &events[i]
		c.decorate(e)
		keep := true
		for _, proc := range c.procs {
			out, err := proc.Run(e)
			if err != nil {
				c.perr.Add(1)
				c.logProcessorError(proc, err)
			}
			if out == nil {
				keep = false
				break
			}
			e = out
		}
		if !keep {
			c.filt.Add(1)
			continue
		}
		e.Dataset, _ = e.Fields.GetString("event.dataset")
		if e.ID == "" {
			e.ID = c.p.eventID(e, c.seq.Add(1))
		}
		if c.p.encode != nil {
			c.scratch = c.p.encode(c.scratch[:0], e.Fields)
			e.Body = c.carve(c.scratch)
			e.Fields = nil
		} else {
			// The queue keeps the maps: a private copy, as the input may
			// reuse its objects once Publish returns (Publisher).
			e.Fields = e.Fields.Clone()
		}
		if err := c.p.queue.Push(ctx, *e); err != nil {
			return err
		}
		c.pubd.Add(1)
	}
	return nil
}

// slabSize is the block encoded bodies are carved from: one allocation per
// few dozen events instead of one per event. A block lives until its last
// event is delivered; events leave the queue in order, so that is at most
// one block more than the queued bodies need.
const slabSize = 64 << 10

// carve returns a copy of b: an exact-size, pointer-free slice (all the GC
// sees of a queued event), cut from the current block. Its capacity ends
// at its length, so nothing appended to one body can reach the next.
func (c *client) carve(b []byte) []byte {
	if len(b) > slabSize/8 {
		return append(make([]byte, 0, len(b)), b...)
	}
	if cap(c.slab)-len(c.slab) < len(b) {
		c.slab = make([]byte, 0, slabSize)
	}
	start := len(c.slab)
	c.slab = append(c.slab, b...)
	return c.slab[start:len(c.slab):len(c.slab)]
}

// logProcessorError logs at most once a second per input: a processor that
// fails on every event must not flood the log; the counter has the total.
func (c *client) logProcessorError(p Processor, err error) {
	now := time.Now().Unix()
	last := c.lastPE.Load()
	if now > last && c.lastPE.CompareAndSwap(last, now) {
		c.log.Warn("processor failed; event kept unchanged", "processor", p.String(), "error", err)
	}
}

// dataStream returns the shared data_stream object of a dataset; an input
// emits one or a few datasets, so the cache stays tiny.
func (c *client) dataStream(dataset string) *Shared {
	if ds, ok := c.streams[dataset]; ok {
		return ds
	}
	ds := NewShared(M{"type": "metrics", "dataset": dataset, "namespace": c.p.namespace})
	if len(c.streams) < 64 {
		c.streams[dataset] = ds
	}
	return ds
}

// decorate adds what every event carries before processors see it, so
// processors can drop or rename it like any other field. agent and
// data_stream are shared objects (copied only if a processor writes into
// them).
func (c *client) decorate(e *Event) {
	p := c.p
	if e.Fields == nil {
		e.Fields = M{}
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	}
	e.Fields["agent"] = c.agent
	if s, ok := e.Fields.GetString("event.dataset"); ok && s != "" {
		e.Fields["data_stream"] = c.dataStream(s)
	}
	if len(p.tags) > 0 {
		e.Fields["tags"] = p.tags
	}
	if len(p.fields) > 0 {
		if p.fieldsUnderRoot {
			for k, v := range p.fields {
				e.Fields.Put(k, cloneValue(v))
			}
		} else {
			e.Fields["fields"] = p.fields.Clone()
		}
	}
}

// eventID is deterministic for events of a series: the same agent, dataset,
// timestamp and series always give the same id, so a retried or replayed
// event is a duplicate to Elasticsearch (409 on create), never a second
// document. Events without a series get an id from the run and a sequence.
func (p *Pipeline) eventID(e *Event, seq uint64) string {
	// The hash input is built on the stack: sha256.New and hash.Hash
	// writes would put the digest and every conversion on the heap.
	var stack [256]byte
	in := append(stack[:0], p.agent.ID...)
	in = append(in, 0)
	in = append(in, e.Dataset...)
	in = append(in, 0)
	in = binary.BigEndian.AppendUint64(in, uint64(e.Timestamp.UnixNano()))
	if e.Series != "" {
		in = append(in, e.Series...)
	} else {
		in = append(in, 1)
		in = append(in, p.agent.EphemeralID...)
		in = binary.BigEndian.AppendUint64(in, seq)
	}
	sum := sha256.Sum256(in)
	var id [22]byte // base64 of 16 bytes, unpadded
	base64.RawURLEncoding.Encode(id[:], sum[:16])
	return string(id[:])
}
