package flowsinput

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
	"github.com/fleutan/fleutanbeat/input/internal/kernsup"
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
	cfg    Config
	filter *flows.Filter
	log    *slog.Logger
	// opts is what the collector is built from at the first collection,
	// once Run has narrowed it to the capabilities held and chosen the
	// method.
	opts flows.Options
	coll *flows.Collector
	// prev is the previous collection, the reference of Diff; deltas is
	// Diff's result, reused.
	prev    flows.Snapshot
	deltas  []flows.FlowDelta
	latest  *input.Latest
	dropped uint64 // flows over max_flows since start
	// builder holds the objects of the chunk being built (collect).
	builder *pipeline.Builder
	// window is the time each collection covers (event.duration).
	window input.Window
	// report picks the flows of a period in report: active; nil in
	// report: all.
	report *reporter
	// roller sums each process's flows of a period (rollup: true); nil
	// otherwise.
	roller *roller
	// cores is the cpu input's per-process core distribution, for the
	// rollups; nil when the agent shares none.
	cores *input.ProcessCores

	// openTracker loads the eBPF connection tracker; tests make it fail.
	openTracker func(flows.TrackerOptions) (*flows.Tracker, error)
	tracker     *flows.Tracker
	// source, when set, takes the collector's place: the fleet profile
	// runs the two report modes on the same snapshots.
	source func(context.Context) (flows.Snapshot, error)
	// afterDump, when set, runs between the collector's dump and its /proc
	// walk: tests make a process exit there.
	afterDump func()
	// method is what Run chose: MethodEBPF or MethodProcfs.
	method string

	// Counters on /stats: input.flows.*.
	n        input.Counters
	overflow *atomic.Int64
	// skipped counts the flows report: active left without an event.
	skipped *atomic.Int64
	// rollups counts the per-process rollup events published.
	rollups *atomic.Int64
	// unattributed counts, per collection, the live sockets left without
	// a process, by reason (procindex.Stats).
	unattributed struct{ exited, unreadable, noOwner *atomic.Int64 }
	// kernel logs each missing kernel feature once and counts its
	// failures (input.flows.kernel_unsupported).
	kernel *kernsup.Reporter
	// input.flows.ebpf.*: what the tracker lost.
	ringFull, mapFull, pendingFull, badRecords *atomic.Int64
}

func newInput(c Config, f *flows.Filter, s input.Settings) (input.Input, error) {
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	in := &flowsInput{
		cfg:      c,
		filter:   f,
		log:      s.Logger,
		opts:     c.collectorOptions(s),
		latest:   s.Latest,
		cores:    s.Cores,
		builder:  pipeline.NewBuilder(publishChunk*eventObjects, publishChunk*eventMembers),
		window:   input.Window{Period: c.Period.D()},
		n:        input.NewCounters(m, "flows"),
		overflow: m.Counter("input.flows.dropped_over_max_flows"),
		skipped:  m.Counter("input.flows.skipped_unchanged"),
		rollups:  m.Counter("input.flows.rollup_events"),
	}
	if c.Rollup {
		in.roller = newRoller()
	}
	if c.Report == ReportActive {
		in.report = newReporter(c.Heartbeat)
	}
	in.unattributed.exited = m.LabeledCounter("input.flows.unattributed", "reason", "exited")
	in.unattributed.unreadable = m.LabeledCounter("input.flows.unattributed", "reason", "unreadable")
	in.unattributed.noOwner = m.LabeledCounter("input.flows.unattributed", "reason", "no_owner")
	in.kernel = kernsup.NewReporter(s.Logger, "flows", m.Counter("input.flows.kernel_unsupported"))
	in.ringFull = m.Counter("input.flows.ebpf.dropped_ring_full")
	in.mapFull = m.Counter("input.flows.ebpf.dropped_map_full")
	in.pendingFull = m.Counter("input.flows.ebpf.dropped_pending_full")
	in.badRecords = m.Counter("input.flows.ebpf.bad_records")
	in.openTracker = flows.OpenTracker
	in.opts.AfterDump = func() {
		if in.afterDump != nil {
			in.afterDump()
		}
	}
	return in, nil
}

// collector builds the collector from opts at the first collection.
func (in *flowsInput) collector() (*flows.Collector, error) {
	if in.coll == nil {
		c, err := flows.New(in.opts)
		if err != nil {
			return nil, err
		}
		in.coll = c
	}
	return in.coll, nil
}

// Run collects at once and then on every tick of the period.
func (in *flowsInput) Run(ctx context.Context, out pipeline.Publisher) error {
	defer func() {
		if in.coll != nil {
			_ = in.coll.Close()
		}
	}()
	var have *caps.Set
	if h, err := caps.Effective(in.opts.ProcRoot); err != nil {
		in.log.Debug("flows: capabilities unknown", "error", err)
	} else {
		have = &h
		in.degrade(h)
	}
	if err := in.chooseMethod(have); err != nil {
		return err
	}
	if in.tracker != nil {
		defer in.tracker.Close()
	}
	return input.Periodic(ctx, in.cfg.Period.D(), func(ctx context.Context) error { return in.collect(ctx, out) })
}

// collect runs one period; it returns an error only when publishing
// stopped because ctx ended.
func (in *flowsInput) collect(ctx context.Context, out pipeline.Publisher) error {
	start := time.Now()
	var snap flows.Snapshot
	var err error
	if in.source != nil {
		snap, err = in.source(ctx)
	} else {
		coll, cerr := in.collector()
		if cerr != nil {
			return cerr
		}
		snap, err = coll.Collect(ctx)
	}
	times := input.Times{Window: in.window.Next(start), Collection: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A missing kernel feature is logged once, with its fix; what
		// else failed is logged each time.
		if err = in.kernel.Filter(err); err != nil {
			in.n.Errors.Add(1)
			in.log.Warn("flows: collection failed", "error", err, "flows", len(snap.Flows))
		}
	}
	in.deltas = flows.AppendDiff(in.deltas, in.prev, snap)
	if !snap.Time.IsZero() {
		// A zero snapshot is no collection: the collector kept its state,
		// so the reference stays.
		in.prev = snap
		if in.latest != nil {
			in.latest.Set("flows", input.Collection{Time: snap.Time, Snapshot: snap.Clone()})
		}
	}
	fl, deltas := snap.Flows, in.deltas
	ps := snap.Unattributed
	in.unattributed.exited.Add(int64(ps.Exited))
	in.unattributed.unreadable.Add(int64(ps.Unreadable))
	in.unattributed.noOwner.Add(int64(ps.NoOwner))
	var kept, dropped, skipped int
	if in.report != nil {
		in.report.begin()
	}
	events := make([]pipeline.Event, 0, min(len(fl), publishChunk))
	// One Builder for a chunk's objects, reset once the chunk is published
	// (Publish retains nothing of it): after the first chunk, building an
	// event allocates only its strings and its root map.
	b := in.builder
	b.Reset()
	for i := range fl {
		f := &fl[i]
		if !in.filter.Keep(f) {
			continue
		}
		t := times
		if in.report != nil {
			var due bool
			if due, t.Window = in.report.decide(f, deltas[i], start, times.Window); !due {
				skipped++
				continue
			}
		}
		if kept >= in.cfg.MaxFlows {
			dropped++
			if in.report != nil {
				in.report.forget(f)
			}
			continue
		}
		kept++
		events = append(events, BuildEvent(b, f, deltas[i], start, t))
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
	if in.roller != nil && !snap.Time.IsZero() {
		if err := in.publishRollups(ctx, out, fl, deltas, start, times, events[:0]); err != nil {
			return err
		}
	}
	if in.report != nil {
		if !snap.Time.IsZero() {
			// A failed collection saw nothing: its flows did not leave.
			in.report.end()
		}
		in.skipped.Add(int64(skipped))
	}
	if in.tracker != nil {
		st := in.tracker.Stats()
		in.ringFull.Store(int64(st.RingFull))
		in.mapFull.Store(int64(st.MapFull))
		in.pendingFull.Store(int64(st.PendingFull))
		in.badRecords.Store(int64(st.BadRecords))
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

// publishRollups publishes the period's per-process rollups, computed
// over every flow the filter keeps (see rollup), in chunks as the flow
// events; events is a free slice to build them in.
func (in *flowsInput) publishRollups(ctx context.Context, out pipeline.Publisher, fl []flows.Flow, deltas []flows.FlowDelta, start time.Time, t input.Times, events []pipeline.Event) error {
	rs := in.roller.roll(fl, deltas, in.filter.Keep)
	// The flow events' Builder: its blocks, sized for a chunk of flow
	// events, hold a chunk of rollups too.
	b := in.builder
	b.Reset()
	for i := range rs {
		r := &rs[i]
		var cores *input.CoreUse
		if u, ok := in.cores.Get(input.ProcessKey{PID: r.proc.PID, StartTime: r.proc.StartTime}, start); ok {
			cores = &u
		}
		events = append(events, rollupEvent(b, r, start, t, cores))
		if len(events) == publishChunk || i == len(rs)-1 {
			if err := out.Publish(ctx, events...); err != nil {
				return err
			}
			in.n.Events.Add(int64(len(events)))
			in.rollups.Add(int64(len(events)))
			events = events[:0]
			b.Reset()
		}
	}
	return nil
}

// degrade says once, at start, what each missing capability costs.
// Without CAP_SYS_ADMIN every setns(2) would fail, so namespaces: all
// falls back to the agent's own namespace instead of logging each
// namespace it cannot enter.
func (in *flowsInput) degrade(have caps.Set) {
	if !in.opts.NoProcesses {
		r := caps.ProcessAttribution()
		if m := r.Missing(have); len(m) > 0 {
			in.log.Warn(r.Message("flows", m, "only sockets of the agent's own user get a process"), "missing", caps.Names(m))
		}
	}
	if in.opts.AllNamespaces && in.opts.Namespaces == nil {
		in.opts.AllNamespaces = caps.AllNamespaces("flows", have, in.log)
	}
}

// chooseMethod opens the eBPF tracker unless method is procfs, and says in
// one log line which method runs and, on a fallback, why.
func (in *flowsInput) chooseMethod(have *caps.Set) error {
	const missed = "TCP connections that open and close within a period are not seen"
	if in.cfg.Method == MethodProcfs {
		in.method = MethodProcfs
		in.log.Info("flows: taking sock_diag snapshots each period (method: procfs); "+missed, "method", MethodProcfs)
		return nil
	}
	if !in.wantsTCP() {
		in.method = MethodProcfs
		in.log.Info("flows: taking sock_diag snapshots each period (method: procfs): eBPF follows TCP only and protocols leaves it out", "method", MethodProcfs)
		return nil
	}
	t, err := in.openTracker(flows.TrackerOptions{
		MaxConnections: in.cfg.MaxTrackedConnections,
		// A period's closed connections wait in memory for the next
		// collection; beyond twice max_flows they could not be
		// published anyway.
		MaxPending: 2 * in.cfg.MaxFlows,
	})
	if err == nil {
		in.tracker, in.method = t, MethodEBPF
		in.opts.Tracker = t
		in.log.Info("flows: following every TCP connection from its first state change to its close with eBPF on the sock:inet_sock_set_state tracepoint (method: ebpf)",
			"method", MethodEBPF, "max_tracked_connections", in.cfg.MaxTrackedConnections)
		return nil
	}
	r := caps.EBPF()
	var missing []caps.Cap
	if have != nil {
		missing = r.Missing(*have)
	}
	if in.cfg.Method == MethodEBPF {
		if len(missing) > 0 {
			return fmt.Errorf("flows: method ebpf needs %s: %w (use method: auto or procfs to fall back to sock_diag snapshots)", caps.Names(missing), err)
		}
		return fmt.Errorf("flows: method ebpf: %w (use method: auto or procfs to fall back to sock_diag snapshots)", err)
	}
	in.method = MethodProcfs
	if len(missing) > 0 {
		in.log.Warn(r.Message("flows", missing, "taking sock_diag snapshots each period instead (method: procfs); "+missed), "method", MethodProcfs, "missing", caps.Names(missing), "reason", err.Error())
		return nil
	}
	in.log.Warn("flows: eBPF is not available here, taking sock_diag snapshots each period instead (method: procfs); "+missed, "method", MethodProcfs, "reason", err.Error(), kernsup.HintAttr(err))
	return nil
}

func (in *flowsInput) wantsTCP() bool {
	if len(in.opts.Protocols) == 0 {
		return true
	}
	for _, p := range in.opts.Protocols {
		if p == flows.ProtocolTCP {
			return true
		}
	}
	return false
}
