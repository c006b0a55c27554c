package qdiscinput

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
	"github.com/fleutan/fleutanbeat/input/internal/kernsup"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type qdiscInput struct {
	cfg      Config
	log      *slog.Logger
	procRoot string
	sysRoot  string
	// namespaces replaces discovery in tests.
	namespaces func() ([]flows.Namespace, error)

	// openXmit attaches the eBPF counter; tests replace it.
	openXmit func() (*qdisc.XmitCounter, error)

	// opts is what the collector is built from at the first collection,
	// once Run has narrowed it to the capabilities held and attached the
	// counter.
	opts qdisc.Options
	coll *qdisc.Collector
	xmit *qdisc.XmitCounter
	// prev is the previous collection, the reference of Diff.
	prev   qdisc.Snapshot
	latest *input.Latest
	// have is the effective capability set read at the start of Run; nil
	// when unknown, in which case no capability is blamed.
	have *caps.Set

	// Counters on /stats: input.qdisc.*, and how flows are attributed
	// (the eBPF attach method, or off).
	n           input.Counters
	attribution *pipeline.Text
	evictions   *atomic.Int64
	// kernel logs each missing kernel feature once and counts its
	// failures (input.qdisc.kernel_unsupported).
	kernel *kernsup.Reporter
	// window is the time each collection covers (event.duration).
	window input.Window
}

func newInput(c Config, s input.Settings) (input.Input, error) {
	return newQdiscInput(c, s, nil), nil
}

func newQdiscInput(c Config, s input.Settings, nss func() ([]flows.Namespace, error)) *qdiscInput {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	in := &qdiscInput{cfg: c, log: s.Logger, procRoot: s.ProcRoot, sysRoot: s.SysRoot, namespaces: nss,
		n: input.NewCounters(m, "qdisc"), attribution: m.Text("input.qdisc.flow_attribution"),
		evictions: m.Counter("input.qdisc.ebpf_evictions"), window: input.Window{Period: c.Period.D()},
		latest: s.Latest}
	in.kernel = kernsup.NewReporter(s.Logger, "qdisc", m.Counter("input.qdisc.kernel_unsupported"))
	if in.sysRoot == "" {
		in.sysRoot = "/sys"
	}
	in.openXmit = func() (*qdisc.XmitCounter, error) {
		return qdisc.OpenXmitCounter(qdisc.XmitOptions{Tracefs: filepath.Join(in.sysRoot, "kernel", "tracing")})
	}
	in.opts = qdisc.Options{
		ProcRoot:         s.ProcRoot,
		SysRoot:          in.sysRoot,
		AllNamespaces:    c.Namespaces == NamespacesAll,
		Namespaces:       nss,
		Devices:          c.Devices,
		TopFlowsPerQueue: c.TopFlowsPerQueue,
		Logger:           s.Logger,
	}
	return in
}

// collector builds the collector from opts at the first collection.
func (in *qdiscInput) collector() (*qdisc.Collector, error) {
	if in.coll == nil {
		c, err := qdisc.New(in.opts)
		if err != nil {
			return nil, err
		}
		in.coll = c
	}
	return in.coll, nil
}

// startAttribution attaches the eBPF program unless attribution is off.
// In auto mode a kernel without eBPF support costs one log line.
func (in *qdiscInput) startAttribution() error {
	in.attribution.Set(AttributionOff)
	if in.cfg.FlowAttribution == AttributionOff {
		return nil
	}
	x, err := in.openXmit()
	if err != nil {
		// EPERM alone does not say which capability is missing.
		r := caps.EBPF()
		var missing []caps.Cap
		if in.have != nil {
			missing = r.Missing(*in.have)
		}
		if in.cfg.FlowAttribution == AttributionEBPF {
			if len(missing) > 0 {
				return fmt.Errorf("%w (flow_attribution: ebpf needs %s; use auto or off to run without it)", err, caps.Names(missing))
			}
			return fmt.Errorf("%w (flow_attribution: ebpf; use auto or off to run without it)", err)
		}
		if len(missing) > 0 {
			in.log.Warn(r.Message("qdisc", missing, "flow attribution disabled, qdisc and class statistics go on"), "missing", caps.Names(missing), "error", err)
			return nil
		}
		in.log.Warn("qdisc: flow attribution disabled: eBPF is not available", "error", err, kernsup.HintAttr(err))
		return nil
	}
	in.log.Info("qdisc: flow attribution by eBPF on net:net_dev_start_xmit", "method", x.Method())
	in.attribution.Set(x.Method())
	in.xmit = x
	in.opts.Xmit = x
	if in.have != nil {
		r := caps.ProcessAttribution()
		if m := r.Missing(*in.have); len(m) > 0 {
			in.log.Warn(r.Message("qdisc", m, "flows of other users' sockets have no process"), "missing", caps.Names(m))
		}
	}
	return nil
}

// readCaps reads the effective capabilities once. Without CAP_SYS_ADMIN
// every setns(2) would fail, so namespaces: all falls back to the agent's
// own namespace with one log line instead of one per namespace.
func (in *qdiscInput) readCaps() {
	have, err := caps.Effective(in.procRoot)
	if err != nil {
		in.log.Debug("qdisc: capabilities unknown", "error", err)
		return
	}
	in.have = &have
	if in.opts.AllNamespaces && in.namespaces == nil {
		in.opts.AllNamespaces = caps.AllNamespaces("qdisc", have, in.log)
	}
}

func (in *qdiscInput) close() {
	if in.coll != nil {
		_ = in.coll.Close()
	}
	if in.xmit != nil {
		_ = in.xmit.Close()
		in.xmit = nil
	}
}

// Run collects at once and then on every tick of the period.
func (in *qdiscInput) Run(ctx context.Context, out pipeline.Publisher) error {
	defer in.close()
	in.readCaps()
	if err := in.startAttribution(); err != nil {
		return err
	}
	return input.Periodic(ctx, in.cfg.Period.D(), func(ctx context.Context) error { return in.collect(ctx, out) })
}

// collect runs one period; it returns an error only when publishing
// stopped because ctx ended.
func (in *qdiscInput) collect(ctx context.Context, out pipeline.Publisher) error {
	start := time.Now()
	snap, deltas, err := in.sample(ctx)
	times := input.Times{Window: in.window.Next(start), Collection: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err = in.kernel.Filter(err); err != nil {
			in.n.Errors.Add(1)
			in.log.Warn("qdisc: collection failed", "error", err, "samples", len(snap.Qdiscs))
		}
	}
	samples, fs := snap.Qdiscs, snap.QueueFlows
	events := make([]pipeline.Event, 0, min(len(samples)+len(fs), PublishChunk))
	flush := func(force bool) error {
		if len(events) == 0 || (!force && len(events) < PublishChunk) {
			return nil
		}
		err := out.Publish(ctx, events...)
		if err == nil {
			in.n.Events.Add(int64(len(events)))
		}
		events = events[:0:0]
		return err
	}
	for i := range samples {
		events = append(events, Event(&samples[i], deltas[i], start, times))
		if err := flush(false); err != nil {
			return err
		}
	}
	for i := range fs {
		events = append(events, FlowEvent(&fs[i], start, times))
		if err := flush(false); err != nil {
			return err
		}
	}
	if err := flush(true); err != nil {
		return err
	}
	in.n.Collections.Add(1)
	return nil
}

// sample runs the collector, keeps its snapshot as the reference of the
// next Diff and publishes a copy to Latest when the query API is on.
func (in *qdiscInput) sample(ctx context.Context) (qdisc.Snapshot, []qdisc.QdiscDelta, error) {
	coll, err := in.collector()
	if err != nil {
		return qdisc.Snapshot{}, nil, err
	}
	snap, err := coll.Collect(ctx)
	deltas := qdisc.Diff(in.prev, snap)
	in.evictions.Add(snap.Evictions)
	if !snap.Time.IsZero() {
		// A zero snapshot is no collection: the reference stays.
		in.prev = snap
		// The snapshot shares nothing with the collector: no copy needed.
		in.latest.Set("qdisc", input.Collection{Time: snap.Time, Snapshot: snap})
	}
	return snap, deltas, err
}
