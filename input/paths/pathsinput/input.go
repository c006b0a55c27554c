package pathsinput

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/paths"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// New is the input.Factory of the paths input.
func New(cfg config.Raw, s input.Settings) (input.Input, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	fc := c.flowsConfig()
	f, err := fc.Filter()
	if err != nil {
		return nil, cfg.Locate(err)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := paths.New(paths.Options{
		Method: paths.Method(c.Method), Logger: s.Logger,
		ProbesPerHop: c.ProbesPerHop, MaxTTL: c.MaxTTL, Timeout: c.ProbeTimeout.D(),
		Rate: c.Rate, Burst: 1, FlowIDs: c.FlowIDs,
	})
	if err != nil {
		return nil, cfg.Locate(err)
	}
	established, _ := flows.StateMask("established")
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	return &pathsInput{
		cfg: c, filter: f, log: s.Logger, prober: p,
		flowOpts: flows.Options{
			ProcRoot: s.ProcRoot, Logger: s.Logger, AllNamespaces: c.Namespaces == "all",
			// The flows that have a peer now.
			States: established,
		},
		last:   map[peerKey]peerState{},
		traced: m.Counter("input.paths.traced"),
		failed: m.Counter("input.paths.failed"),
		events: m.Counter("input.paths.events"),
	}, nil
}

type pathsInput struct {
	cfg      Config
	filter   *flows.Filter
	log      *slog.Logger
	prober   *paths.Prober
	flowOpts flows.Options
	coll     *flows.Collector
	// last is each peer's previous round: its path hash and the source
	// ports that keep its flow identifiers across rounds.
	last                   map[peerKey]peerState
	traced, failed, events *atomic.Int64
}

type peerKey struct {
	netns uint64
	addr  netip.Addr
}

type peerState struct {
	hash  string
	ports []uint16
	// hops are the address sets of the path, hop by hop, to find where
	// the next round's path leaves it.
	hops [][]netip.Addr
}

// peer is one distinct remote address of a namespace and its flows.
type peer struct {
	key       peerKey
	netnsPath string
	netnsName string
	flows     []*flows.Flow
}

// port is the destination port of the peer's TCP probes: the remote
// port of its first flow that the host opened (the peer's service),
// else of its first flow.
func (p *peer) port() uint16 {
	for _, f := range p.flows {
		if f.Direction == flows.Outbound {
			return f.Remote.Port()
		}
	}
	return p.flows[0].Remote.Port()
}

// Run traces at once and then every interval.
func (in *pathsInput) Run(ctx context.Context, out pipeline.Publisher) error {
	defer func() {
		if in.coll != nil {
			_ = in.coll.Close()
		}
	}()
	return input.Periodic(ctx, in.cfg.Interval.D(), func(ctx context.Context) error { return in.round(ctx, out) })
}

// peers collects the flows and groups those the filter keeps by peer,
// the busiest first, at most max_peers.
func (in *pathsInput) peers(ctx context.Context) ([]peer, error) {
	if in.coll == nil {
		c, err := flows.New(in.flowOpts)
		if err != nil {
			return nil, err
		}
		in.coll = c
	}
	snap, err := in.coll.Collect(ctx)
	if err != nil && snap.Time.IsZero() {
		return nil, err
	}
	if err != nil {
		in.log.Warn("paths: flows collection incomplete", "error", err)
	}
	nsPath := map[uint64]flows.Namespace{}
	for _, ns := range snap.Namespaces {
		nsPath[ns.Inode] = ns
	}
	byKey := map[peerKey]*peer{}
	var list []*peer
	for i := range snap.Flows {
		f := &snap.Flows[i]
		if f.Final || f.Direction == flows.Listening || !in.filter.Keep(f) {
			continue
		}
		a := f.Remote.Addr().Unmap().WithZone("")
		if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
			continue
		}
		k := peerKey{f.Netns, a}
		p := byKey[k]
		if p == nil {
			ns := nsPath[f.Netns]
			p = &peer{key: k, netnsPath: ns.Path, netnsName: ns.Name}
			byKey[k] = p
			list = append(list, p)
		}
		p.flows = append(p.flows, f)
	}
	slices.SortFunc(list, func(a, b *peer) int {
		if c := cmp.Compare(len(b.flows), len(a.flows)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.key.netns, b.key.netns); c != 0 {
			return c
		}
		return a.key.addr.Compare(b.key.addr)
	})
	if len(list) > in.cfg.MaxPeers {
		in.log.Info("paths: more peers than max_peers; the ones with fewest flows wait", "peers", len(list), "max_peers", in.cfg.MaxPeers)
		list = list[:in.cfg.MaxPeers]
	}
	out := make([]peer, len(list))
	for i, p := range list {
		out[i] = *p
	}
	return out, nil
}

// round traces every selected peer and publishes its events as soon as
// its trace is done. It returns an error only when publishing fails.
func (in *pathsInput) round(ctx context.Context, out pipeline.Publisher) error {
	ps, err := in.peers(ctx)
	if err != nil {
		in.log.Warn("paths: no peers this round", "error", err)
		return nil
	}
	seen := make(map[peerKey]bool, len(ps))
	for _, p := range ps {
		seen[p.key] = true
		prev, had := in.last[p.key]
		t := paths.Target{Dst: p.key.addr, Port: p.port()}
		// The agent's own namespace needs no setns(2); the collector names
		// it by /proc/self/ns/net, which any thread may enter anyway.
		t.Netns = p.netnsPath
		if had && len(prev.ports) > 0 {
			t.SrcPort = prev.ports[0]
		}
		start := time.Now()
		path, err := in.prober.Trace(ctx, t)
		if err != nil && t.SrcPort != 0 && ctx.Err() == nil {
			// The kept port may be taken by now: a new identifier.
			t.SrcPort = 0
			path, err = in.prober.Trace(ctx, t)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			in.failed.Add(1)
			in.log.Warn("paths: trace failed", "peer", p.key.addr, "netns", p.key.netns, "error", err)
			continue
		}
		in.traced.Add(1)
		hash := path.Hash()
		var prevPtr *peerState
		if had {
			prevPtr = &prev
		}
		evs := events(&p, &path, hash, prevPtr, start, time.Since(start))
		in.last[p.key] = peerState{hash: hash, ports: path.SrcPorts, hops: hopSets(&path)}
		if err := out.Publish(ctx, evs...); err != nil {
			return fmt.Errorf("paths: publish: %w", err)
		}
		in.events.Add(int64(len(evs)))
	}
	for k := range in.last {
		if !seen[k] {
			delete(in.last, k)
		}
	}
	return nil
}
