package qdisc

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
	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type qdiscInput struct {
	cfg      Config
	log      *slog.Logger
	procRoot string
	sysRoot  string
	// namespaces replaces discovery in tests.
	namespaces func() ([]netns.Namespace, error)

	// openXmit attaches the eBPF counter; tests replace it.
	openXmit func() (*xmitCounter, error)

	coll  *Collector
	xmit  *xmitCounter
	flows *flows.Collector
	// have is the effective capability set read at the start of Run; nil
	// when unknown, in which case no capability is blamed.
	have *caps.Set

	// Counters on /stats: input.qdisc.*, and how flows are attributed
	// (the eBPF attach method, or off).
	n           input.Counters
	attribution *pipeline.Text
	evictions   *atomic.Int64
	// window is the time each collection covers (event.duration).
	window input.Window
}

func newInput(c Config, s input.Settings) (input.Input, error) {
	return newQdiscInput(c, s, nil), nil
}

func newQdiscInput(c Config, s input.Settings, nss func() ([]netns.Namespace, error)) *qdiscInput {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	in := &qdiscInput{cfg: c, log: s.Logger, procRoot: s.ProcRoot, sysRoot: s.SysRoot, namespaces: nss,
		n: input.NewCounters(m, "qdisc"), attribution: m.Text("input.qdisc.flow_attribution"),
		evictions: m.Counter("input.qdisc.ebpf_evictions"), window: input.Window{Period: c.Period.D()}}
	if in.sysRoot == "" {
		in.sysRoot = "/sys"
	}
	in.openXmit = func() (*xmitCounter, error) {
		return openXmitCounter(filepath.Join(in.sysRoot, "kernel", "tracing"))
	}
	in.coll = NewCollector(CollectorOptions{
		ProcRoot:      s.ProcRoot,
		SysRoot:       in.sysRoot,
		AllNamespaces: c.Namespaces == NamespacesAll,
		Namespaces:    nss,
		Match:         c.matchDevice,
		Logger:        s.Logger,
	})
	return in
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
		in.log.Warn("qdisc: flow attribution disabled: eBPF is not available", "error", err)
		return nil
	}
	in.log.Info("qdisc: flow attribution by eBPF on net:net_dev_start_xmit", "method", x.Method())
	in.attribution.Set(x.Method())
	x.evicted = in.evictions
	in.xmit = x
	if in.have != nil {
		r := caps.ProcessAttribution()
		if m := r.Missing(*in.have); len(m) > 0 {
			in.log.Warn(r.Message("qdisc", m, "flows of other users' sockets have no process"), "missing", caps.Names(m))
		}
	}
	fo := flows.Options{
		ProcRoot:      in.procRoot,
		AllNamespaces: in.coll.opts.AllNamespaces,
		Logger:        in.log,
	}
	if list := in.namespaces; list != nil {
		fo.Namespaces = func() ([]flows.Namespace, error) {
			nss, err := list()
			out := make([]flows.Namespace, len(nss))
			for i, ns := range nss {
				out[i] = flows.Namespace{Inode: ns.Inode, Name: ns.Name, Path: ns.Path}
			}
			return out, err
		}
	}
	fc, err := flows.New(fo)
	if err != nil {
		return err
	}
	in.flows = fc
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
	if in.coll.opts.AllNamespaces && in.namespaces == nil {
		in.coll.opts.AllNamespaces = caps.AllNamespaces("qdisc", have, in.log)
	}
}

func (in *qdiscInput) close() {
	_ = in.coll.Close()
	if in.xmit != nil {
		_ = in.xmit.Close()
		in.xmit = nil
	}
	if in.flows != nil {
		_ = in.flows.Close()
		in.flows = nil
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
	samples, fs, err := in.sample(ctx)
	times := input.Times{Window: in.window.Next(start), Collection: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.n.Errors.Add(1)
		in.log.Warn("qdisc: collection failed", "error", err, "samples", len(samples))
	}
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
		events = append(events, samples[i].Event(start, times))
		if err := flush(false); err != nil {
			return err
		}
	}
	for i := range fs {
		events = append(events, fs[i].Event(start, times))
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

// sample runs the collector and, when attribution is on, joins the eBPF
// counts of the period to the flows.
func (in *qdiscInput) sample(ctx context.Context) ([]Sample, []FlowSample, error) {
	samples, err := in.coll.Collect(ctx)
	if in.xmit == nil {
		return samples, nil, err
	}
	var deltas []xmitDelta
	if rerr := in.xmit.Read(func(d *xmitDelta) { deltas = append(deltas, *d) }); rerr != nil {
		return samples, nil, joinErr(err, rerr)
	}
	if len(deltas) == 0 {
		return samples, nil, err
	}
	devs := map[devKey]*Device{}
	for i := range samples {
		d := samples[i].Device
		devs[devKey{d.Netns, d.Index}] = d
	}
	snap, ferr := in.flows.Collect(ctx)
	if ferr != nil {
		// Flows of the namespaces that answered still join.
		err = joinErr(err, ferr)
	}
	return samples, joinFlows(deltas, devs, snap.Flows, in.cfg.TopFlowsPerQueue), err
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}
