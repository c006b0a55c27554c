package flows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/kernsup"
	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/internal/sockdiag"
	"github.com/fleutan/fleutanbeat/input/internal/tcplife"
)

// Collector dumps the sockets of its namespaces once per Collect and keeps
// what it needs between collections: one sock_diag Dumper per namespace
// and the previous flows, for FirstSeen and final reports. It is not safe
// for concurrent use.
type Collector struct {
	opts      Options
	tracker   connTracker
	log       *slog.Logger
	protocols []uint8
	families  []uint8

	sel netns.Selector // which namespaces; the own one is cached
	// dumpers holds one sock_diag socket per namespace; one that cannot
	// be opened is logged once and skipped until it disappears.
	dumpers *netns.Sockets[*sockdiag.Dumper]
	// known namespaces had a complete collection: their new flows were born
	// since, so their delta is their cumulative count.
	known map[uint64]bool
	procs *procindex.Index
	// routes is set when Options.Routes asks for each flow's route.
	routes *routes
	// procStats is what the last process index Update did and found.
	procStats procindex.Stats
	// nss is the Namespaces of the snapshot being built, reused.
	nss []Namespace

	prev    []Flow
	prevIdx *flowIndex
	// Two generations of flow slices and index maps alternate: one is the
	// previous collection (the reference for deltas), the other is filled.
	// At 100,000 flows a generation is tens of MiB that would otherwise be
	// allocated and collected every period. nsBufs and held likewise.
	bufs   [2][]Flow
	idxs   [2]*flowIndex
	nsBufs [2][]Namespace
	refs   [2][]int32
	gen    int
	// seq numbers the snapshots, so that Diff knows when cur's refs point
	// into prev.
	seq uint64

	// lingering holds, by cookie, flows gone from the dump whose close
	// the tracker has not reported yet (FIN-WAIT, CLOSE-WAIT, ...): their
	// final report waits for the counters of TCP_CLOSE.
	lingering map[uint64]Flow

	// scratch, reused across collections
	listeners map[listenerKey]uint32 // → the listener's inode
	closed    map[uint64]*tcplife.Conn
	owners    map[uint64]tcplife.Owner
	nsNames   map[uint64]string
	byPID     map[pidComm]closedProc
	inodes    []uint32
	procCopy  map[*procindex.Process]*procindex.Process
	seen      []bool
	// unsupported are this collection's dumps the kernel has no handler
	// for (sockdiag.Unsupported), returned with Collect's error.
	unsupported []error
}

// connTracker is what the collector needs of *tcplife.Tracker.
type connTracker interface {
	// Drain returns the connections closed since the last Drain.
	Drain(ctx context.Context) ([]tcplife.Conn, error)
	// Lookup says who opened a connection that is still open.
	Lookup(cookie uint64) (tcplife.Owner, bool)
}

type listenerKey struct {
	netns uint64
	proto uint8
	addr  netip.Addr // unmapped; the unspecified address for a wildcard
	port  uint16
}

// New checks o and prepares a collector; it opens nothing until Collect.
func New(o Options) (*Collector, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.RunDir == "" {
		o.RunDir = "/run/netns"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		opts:      o,
		log:       log,
		protocols: o.Protocols,
		families:  o.Families,
		known:     map[uint64]bool{},
		listeners: map[listenerKey]uint32{},
		lingering: map[uint64]Flow{},
		closed:    map[uint64]*tcplife.Conn{},
		owners:    map[uint64]tcplife.Owner{},
		nsNames:   map[uint64]string{},
		byPID:     map[pidComm]closedProc{},
		procCopy:  map[*procindex.Process]*procindex.Process{},
	}
	if o.Tracker != nil {
		c.tracker = o.Tracker.t
	}
	if len(c.protocols) == 0 {
		c.protocols = []uint8{protoTCP, protoUDP}
	}
	if len(c.families) == 0 {
		c.families = []uint8{afInet, afInet6}
	}
	if !o.NoProcesses {
		c.procs = procindex.New(procindex.Options{ProcRoot: o.ProcRoot, Logger: log})
	}
	if o.Routes {
		c.routes = newRoutes(o.RouteTTL, log, c.isSelf)
	}
	c.dumpers = netns.NewSockets(func(ns netns.Namespace) (*sockdiag.Dumper, error) {
		// The collector's own namespace needs no setns(2) round trip.
		if c.isSelf(ns) {
			return sockdiag.Open()
		}
		return sockdiag.OpenIn(ns.Path)
	})
	return c, nil
}

// Close releases the netlink sockets. The collector can be used again; it
// then reopens them.
func (c *Collector) Close() error {
	err := c.dumpers.Close()
	if c.routes != nil {
		err = errors.Join(err, c.routes.Close())
	}
	return err
}

// Collect dumps every selected namespace once per family and protocol and
// returns the live flows followed by one Final flow for each flow of the
// previous collection that is gone (see Snapshot for how long it stays
// valid). A namespace whose dump failed contributes no flows and no final
// reports (its flows are kept in Snapshot.Held), and its error is
// returned together with the flows of the others. A kind of socket the
// kernel cannot dump at all (sockdiag.Unsupported: its *_diag module is
// missing) is left out of every namespace, and its errors are returned
// with the flows of the other kinds. When the namespaces
// cannot be listed, or ctx ends, the Snapshot is zero (Time too) and the
// collector is as before the call.
func (c *Collector) Collect(ctx context.Context) (Snapshot, error) {
	now := c.opts.Now()
	nss, err := c.namespaces()
	if err != nil {
		return Snapshot{}, err
	}

	flows := c.bufs[c.gen][:0]
	// A buffer that holds the last collection's flows is kept, even with
	// less headroom than a new one gets: replacing it would hold a third
	// generation (13 MB at 36,000 flows) until the next GC, whose goal it
	// raises; more flows than it holds grow it by append.
	if n := len(c.prev); cap(flows) < n+16 {
		flows = make([]Flow, 0, n+n/8+16)
	}
	clear(c.listeners)
	c.unsupported = c.unsupported[:0]
	v, err := c.dumpers.Each(ctx, nss, func(ns netns.Namespace, err error) {
		c.log.Warn("flows: skipping a network namespace that cannot be opened", "netns", ns.Inode, "path", ns.Path, "error", err, kernsup.NetnsHintAttr(err))
	}, func(ns netns.Namespace, d *sockdiag.Dumper) error {
		start := len(flows)
		var err error
		if flows, err = c.dumpNamespace(d, ns, flows); err != nil {
			// Drop the partial dump: half a namespace would report the
			// other half as gone.
			flows = flows[:start]
		}
		return err
	})
	if err != nil {
		return Snapshot{}, err
	}
	present, failed := v.Present, v.Failed
	errs := make([]error, 0, len(v.Errs)+len(c.unsupported)+1)
	for _, e := range v.Errs {
		errs = append(errs, fmt.Errorf("flows: %w", e))
	}
	errs = append(errs, c.unsupported...)

	flows = c.classify(flows)
	if c.opts.AfterDump != nil {
		c.opts.AfterDump()
	}
	// Drained after the dump: a connection the dump missed because it
	// closed is in the drained records, one still open is in the
	// tracker's map (tcplife.c submits before it deletes).
	if err := c.drainClosed(ctx, nss, present, failed); err != nil {
		errs = append(errs, err)
	}
	c.hint(flows)
	if err := c.attribute(flows); err != nil {
		errs = append(errs, err)
	}
	snap := Snapshot{Time: now, Unattributed: Unattributed{
		Exited: c.procStats.Exited, Unreadable: c.procStats.Unreadable, NoOwner: c.procStats.NoOwner,
	}}
	c.seq++
	snap.seq, snap.prevSeq = c.seq, c.seq-1
	flows = c.track(flows, failed, now, &snap)
	flows = c.appendClosed(flows, failed, now)
	if c.routes != nil {
		if err := c.routes.assign(flows, nss, present, now); err != nil {
			errs = append(errs, err)
		}
	}
	snap.Flows = flows
	for len(snap.refs) < len(flows) {
		snap.refs = append(snap.refs, -1)
	}
	c.refs[c.gen] = snap.refs
	snap.Lingering = c.lingeringFlows()
	snap.Namespaces = c.visited(nss, present, failed)
	c.bufs[c.gen] = flows[:0]
	c.gen ^= 1
	if c.opts.NoHistory {
		// The snapshot owns its slices from now on; the collector starts
		// the next collection from nothing.
		c.prev, c.prevIdx, c.seen = nil, nil, nil
		c.bufs, c.idxs, c.refs, c.nsBufs = [2][]Flow{}, [2]*flowIndex{}, [2][]int32{}, [2][]Namespace{}
	}

	for ino := range c.known {
		if !present[ino] {
			delete(c.known, ino)
		}
	}
	for ino := range present {
		if !failed[ino] {
			c.known[ino] = true
		}
	}
	return snap, errors.Join(errs...)
}

// visited lists the namespaces of this collection, once each, with what
// the collector knew of them before it.
func (c *Collector) visited(nss []netns.Namespace, present, failed map[uint64]bool) []Namespace {
	out := c.nsBufs[c.gen][:0]
	for _, ns := range nss {
		if !present[ns.Inode] || slices.ContainsFunc(out, func(n Namespace) bool { return n.Inode == ns.Inode }) {
			continue
		}
		out = append(out, Namespace{Inode: ns.Inode, Name: ns.Name, Path: ns.Path, Known: c.known[ns.Inode], Failed: failed[ns.Inode]})
	}
	c.nsBufs[c.gen] = out
	return out
}

// lingeringFlows lists c.lingering for the snapshot: a new slice, as the
// map changes at the next collection.
func (c *Collector) lingeringFlows() []Flow {
	if len(c.lingering) == 0 {
		return nil
	}
	out := make([]Flow, 0, len(c.lingering))
	for _, f := range c.lingering {
		out = append(out, f)
	}
	return out
}

func (c *Collector) namespaces() ([]netns.Namespace, error) {
	// Read the options each time: the input narrows AllNamespaces when a
	// capability is missing.
	c.sel.ProcRoot, c.sel.RunDir = c.opts.ProcRoot, c.opts.RunDir
	c.sel.All, c.sel.List = c.opts.AllNamespaces, nil
	if list := c.opts.Namespaces; list != nil {
		c.sel.List = func() ([]netns.Namespace, error) {
			nss, err := list()
			out := make([]netns.Namespace, len(nss))
			for i, ns := range nss {
				out[i] = netns.Namespace{Inode: ns.Inode, Name: ns.Name, Path: ns.Path}
			}
			return out, err
		}
	}
	nss, err := c.sel.Namespaces()
	if err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	return nss, nil
}

// isSelf avoids a setns(2) round trip for the collector's own namespace.
func (c *Collector) isSelf(ns netns.Namespace) bool {
	c.sel.ProcRoot = c.opts.ProcRoot
	return c.sel.IsSelf(ns)
}

// dumpMask widens the requested states by the listeners, which decide the
// direction of the other flows even when they are not reported.
func (c *Collector) dumpMask(proto uint8) uint32 {
	want := c.opts.States
	if want == 0 {
		return 0
	}
	if proto == protoUDP {
		if want&(1<<stateListen) != 0 {
			want |= 1 << stateClose
		}
		return want | 1<<stateClose
	}
	return want | 1<<stateListen
}

func (c *Collector) wanted(f *Flow) bool {
	want := c.opts.States
	if want == 0 {
		return true
	}
	if f.Protocol == protoUDP && f.State == stateClose {
		return want&(1<<stateListen|1<<stateClose) != 0
	}
	return want&(1<<f.State) != 0
}

func (c *Collector) dumpNamespace(d *sockdiag.Dumper, ns netns.Namespace, flows []Flow) ([]Flow, error) {
	for _, proto := range c.protocols {
		for _, fam := range c.families {
			req := sockdiag.Request{Family: fam, Protocol: proto, States: c.dumpMask(proto)}
			if proto == protoTCP {
				req.Ext = sockdiag.ExtInfo | sockdiag.ExtCong
			}
			err := d.Dump(req, func(s *sockdiag.Socket) error {
				f := fromSocket(s, ns)
				if f.Direction == Listening {
					c.listeners[listenerKey{ns.Inode, f.Protocol, f.Local.Addr().Unmap(), f.Local.Port()}] = f.Inode
				}
				if c.wanted(&f) {
					flows = append(flows, f)
					// Asked about the appended copy: &f handed to an
					// unknown function would put every socket's Flow on
					// the heap.
					if c.opts.Keep != nil && !c.opts.Keep(&flows[len(flows)-1]) {
						flows = flows[:len(flows)-1]
					}
				}
				return nil
			})
			if _, ok := sockdiag.Unsupported(err); ok {
				// The kernel serves no dump of this kind (a *_diag module is
				// missing): it fails alike every period, so no flow of it
				// comes or goes, and the namespace's other kinds stand.
				c.unsupported = append(c.unsupported, fmt.Errorf("flows: sock_diag dump %s/%s: %w", TransportName(proto), FamilyName(fam), err))
				continue
			}
			if err != nil {
				return flows, fmt.Errorf("sock_diag dump %s/%s: %w", TransportName(proto), FamilyName(fam), err)
			}
		}
	}
	return flows, nil
}

func fromSocket(s *sockdiag.Socket, ns netns.Namespace) Flow {
	f := Flow{
		Netns:     ns.Inode,
		NetnsName: ns.Name,
		Family:    s.Family,
		Protocol:  s.Protocol,
		State:     s.State,
		Local:     s.Local,
		Remote:    s.Remote,
		Inode:     s.Inode,
		UID:       s.UID,
		Cookie:    s.Cookie,
	}
	if (s.Protocol == protoTCP && s.State == stateListen) ||
		(s.Protocol == protoUDP && s.State == stateClose && s.Remote.Port() == 0) {
		f.Direction = Listening
	}
	if s.HasTCPInfo {
		t := &s.TCPInfo
		f.HasTCP = true
		f.Congestion = s.Congestion
		f.TCP = TCPInfo{
			RTTMicros:     t.RTT,
			RTTVarMicros:  t.RTTVar,
			MinRTTMicros:  t.MinRTT,
			Cwnd:          t.SndCwnd,
			Ssthresh:      t.SndSsthresh,
			MSS:           t.SndMSS,
			SegsIn:        t.SegsIn,
			SegsOut:       t.SegsOut,
			TotalRetrans:  t.TotalRetrans,
			Lost:          t.Lost,
			NotsentBytes:  t.NotsentBytes,
			BytesAcked:    t.BytesAcked,
			BytesReceived: t.BytesReceived,
			BytesSent:     t.BytesSent,
			BytesRetrans:  t.BytesRetrans,
			DeliveryRate:  t.DeliveryRate,
			PacingRate:    t.PacingRate,
			Len:           t.Len,
		}
	}
	return f
}

// classify sets the direction of connected sockets once all listeners of
// their namespace are known.
func (c *Collector) classify(flows []Flow) []Flow {
	for i := range flows {
		f := &flows[i]
		if f.Direction == Listening {
			continue
		}
		f.Direction = Outbound
		if _, ok := c.listenerOf(f); ok {
			f.Direction = Inbound
		}
	}
	return flows
}

// listenerOf finds the listener of f's local port, and its inode.
func (c *Collector) listenerOf(f *Flow) (uint32, bool) {
	la := f.Local.Addr().Unmap()
	port := f.Local.Port()
	for _, a := range [...]netip.Addr{la, netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		if ino, ok := c.listeners[listenerKey{f.Netns, f.Protocol, a, port}]; ok {
			return ino, true
		}
	}
	return 0, false
}

// attribute finds the owning process of each socket. Socket inodes are
// unique across namespaces (sockfs), so one index serves all of them.
func (c *Collector) attribute(flows []Flow) error {
	if c.procs == nil || len(flows) == 0 {
		return nil
	}
	c.inodes = c.inodes[:0]
	for i := range flows {
		if flows[i].Inode != 0 {
			c.inodes = append(c.inodes, flows[i].Inode)
		}
	}
	var errs []error
	var err error
	if c.procStats, err = c.procs.Update(c.inodes); err != nil {
		// A partial index still attributes what it found.
		errs = append(errs, fmt.Errorf("flows: process index: %w", err))
	}
	// Each flow gets its own copy per collection, shared by the flows of
	// one process, so a later Update cannot change flows already handed
	// out.
	clear(c.procCopy)
	for i := range flows {
		f := &flows[i]
		if f.Inode == 0 {
			continue
		}
		p, ok := c.procs.Lookup(f.Inode)
		if !ok || p == nil {
			if p, ok = c.trackedOwner(f); !ok {
				continue
			}
		}
		cp, ok := c.procCopy[p]
		if !ok {
			v := *p
			cp = &v
			c.procCopy[p] = cp
		}
		f.Process = cp
	}
	return errors.Join(errs...)
}

// track sets FirstSeen from the previous collection and appends the final
// reports of vanished flows; it fills snap's reference for Diff.
func (c *Collector) track(flows []Flow, failed map[uint64]bool, now time.Time, snap *Snapshot) []Flow {
	idx := c.idxs[c.gen]
	if idx == nil {
		idx = newFlowIndex(len(flows))
		c.idxs[c.gen] = idx
	} else {
		idx.reset(len(flows))
	}
	// Positions in idx are those of next (below): the live flows, then
	// the held ones; until next exists, of flows, whose live part it
	// copies.
	var next []Flow
	atCur := func(j int32) *Flow {
		if next != nil {
			return &next[j]
		}
		return &flows[j]
	}
	prev := c.prev
	atPrev := func(j int32) *Flow { return &prev[j] }
	// seen marks the previous flows found again, so that finding the gone
	// ones needs no second lookup per flow.
	c.seen = slices.Grow(c.seen[:0], len(c.prev))[:len(c.prev)]
	clear(c.seen)
	// refs[i] is the index of flow i's previous report in c.prev, which
	// Diff uses instead of a second lookup by key.
	refs := slices.Grow(c.refs[c.gen][:0], len(flows))[:len(flows)]
	for i := range flows {
		f := &flows[i]
		k := f.indexKey()
		idx.put(k, int32(i), atCur)
		refs[i] = -1
		cl := c.closedFlow(f)
		if j, ok := c.prevIdx.get(k, atPrev); ok {
			refs[i] = j
			c.seen[j] = true
			p := &c.prev[j]
			f.FirstSeen = p.FirstSeen
			if cl != nil {
				c.finalFromClose(f, cl)
			}
			continue
		}
		f.FirstSeen = now
		if cl != nil {
			// Born and closed since the last collection, caught between.
			c.finalFromClose(f, cl)
			f.Closed = true
		}
	}
	live := len(flows)
	// canonical: j is the position the previous index gave its key (a
	// duplicate in the dump is reported once).
	canonical := func(j int) bool {
		got, ok := c.prevIdx.get(c.prev[j].indexKey(), atPrev)
		return ok && got == int32(j)
	}
	for j, seen := range c.seen {
		if seen || failed[c.prev[j].Netns] {
			// Not seen is not gone in a failed namespace: keep it as the
			// reference, unreported.
			continue
		}
		p := c.prev[j]
		if !canonical(j) {
			continue // a duplicate in the dump, reported once
		}
		if p.Final {
			// Reported final when the tracker saw it close.
			continue
		}
		if c.tracker != nil && p.Cookie != 0 && p.Protocol == protoTCP && p.Direction != Listening {
			if f, ok := c.gone(p); ok {
				flows = append(flows, f)
				refs = append(refs, int32(j))
			}
			continue
		}
		p.Final = true
		flows = append(flows, p)
		refs = append(refs, int32(j))
	}
	next = flows[:live:live]
	// Carry the flows of failed namespaces so they are neither lost nor
	// reported final on the next good collection.
	for j, seen := range c.seen {
		if !seen && failed[c.prev[j].Netns] && canonical(j) {
			next = append(next, c.prev[j])
			idx.put(c.prev[j].indexKey(), int32(len(next)-1), atCur)
		}
	}
	c.prev, c.prevIdx = next, idx
	snap.live, snap.idx, snap.refs = live, idx, refs
	if len(next) > live {
		snap.Held = next[live:]
	}
	return flows
}
