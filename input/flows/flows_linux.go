package flows

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// publishChunk is how many events are built before they are handed to the
// queue in one call: a host with 100,000 flows never holds them all as
// documents, and a chunk (about 400 KB) is still in the CPU cache when the
// pipeline encodes it. BenchmarkPipelineFlowsToFile/input+pipeline, which
// builds and publishes this way: about 100k events per CPU-second with
// chunks of 1024, 115k with 256, 135k with 64; 16 is no better than 64.
const publishChunk = 64

type flowsInput struct {
	cfg     Config
	filter  *filter
	log     *slog.Logger
	coll    *Collector
	dropped uint64 // flows over max_flows since start
	// builder holds the objects of the chunk being built (collect).
	builder *pipeline.Builder
	// window is the time each collection covers (event.duration).
	window input.Window

	// Counters on /stats: input.flows.*.
	n        input.Counters
	overflow *atomic.Int64
	// unattributed counts, per collection, the live sockets left without
	// a process, by reason (procindex.Stats).
	unattributed struct{ exited, unreadable, noOwner *atomic.Int64 }
}

func newInput(c Config, f *filter, s input.Settings) (input.Input, error) {
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	in := &flowsInput{
		cfg:      c,
		filter:   f,
		log:      s.Logger,
		coll:     NewCollector(c.collectorOptions(s)),
		builder:  pipeline.NewBuilder(publishChunk*eventObjects, publishChunk*eventMembers),
		window:   input.Window{Period: c.Period.D()},
		n:        input.NewCounters(m, "flows"),
		overflow: m.Counter("input.flows.dropped_over_max_flows"),
	}
	in.unattributed.exited = m.LabeledCounter("input.flows.unattributed", "reason", "exited")
	in.unattributed.unreadable = m.LabeledCounter("input.flows.unattributed", "reason", "unreadable")
	in.unattributed.noOwner = m.LabeledCounter("input.flows.unattributed", "reason", "no_owner")
	return in, nil
}

// Run collects at once and then on every tick of the period.
func (in *flowsInput) Run(ctx context.Context, out pipeline.Publisher) error {
	defer in.coll.Close()
	if have, err := caps.Effective(in.coll.opts.ProcRoot); err != nil {
		in.log.Debug("flows: capabilities unknown", "error", err)
	} else {
		in.degrade(have)
	}
	return input.Periodic(ctx, in.cfg.Period.D(), func(ctx context.Context) error { return in.collect(ctx, out) })
}

// collect runs one period; it returns an error only when publishing
// stopped because ctx ended.
func (in *flowsInput) collect(ctx context.Context, out pipeline.Publisher) error {
	start := time.Now()
	flows, err := in.coll.Collect(ctx)
	times := input.Times{Window: in.window.Next(start), Collection: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.n.Errors.Add(1)
		in.log.Warn("flows: collection failed", "error", err, "flows", len(flows))
	}
	ps := in.coll.ProcessStats()
	in.unattributed.exited.Add(int64(ps.Exited))
	in.unattributed.unreadable.Add(int64(ps.Unreadable))
	in.unattributed.noOwner.Add(int64(ps.NoOwner))
	var kept, dropped int
	events := make([]pipeline.Event, 0, min(len(flows), publishChunk))
	// One Builder for a chunk's objects, reset once the chunk is published
	// (Publish retains nothing of it): after the first chunk, building an
	// event allocates only its strings and its root map.
	b := in.builder
	b.Reset()
	for i := range flows {
		f := &flows[i]
		if !in.filter.keep(f) {
			continue
		}
		if kept >= in.cfg.MaxFlows {
			dropped++
			continue
		}
		kept++
		events = append(events, f.BuildEvent(b, start, times))
		if len(events) == publishChunk {
			if err := out.Publish(ctx, events...); err != nil {
				return err
			}
			in.n.Events.Add(int64(len(events)))
			// Publish kept nothing: the slice and the objects are free.
			events = events[:0]
			b.Reset()
		}
	}
	if len(events) > 0 {
		if err := out.Publish(ctx, events...); err != nil {
			return err
		}
		in.n.Events.Add(int64(len(events)))
	}
	// Counted once published: a completed period is what /stats and the
	// tests wait for.
	defer in.n.Collections.Add(1)
	if dropped > 0 {
		in.overflow.Add(int64(dropped))
		in.dropped += uint64(dropped)
		in.log.Warn("flows: more flows than max_flows; the rest of this period was dropped",
			"max_flows", in.cfg.MaxFlows, "dropped", dropped, "dropped_total", in.dropped)
	}
	return nil
}

// degrade says once, at start, what each missing capability costs.
// Without CAP_SYS_ADMIN every setns(2) would fail, so namespaces: all
// falls back to the agent's own namespace instead of logging each
// namespace it cannot enter.
func (in *flowsInput) degrade(have caps.Set) {
	if !in.coll.opts.NoProcesses {
		r := caps.ProcessAttribution()
		if m := r.Missing(have); len(m) > 0 {
			in.log.Warn(r.Message("flows", m, "only sockets of the agent's own user get a process"), "missing", caps.Names(m))
		}
	}
	if in.coll.opts.AllNamespaces && in.coll.opts.Namespaces == nil {
		in.coll.opts.AllNamespaces = caps.AllNamespaces("flows", have, in.log)
	}
}
