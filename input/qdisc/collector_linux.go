package qdisc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/kernsup"
	"github.com/fleutan/fleutanbeat/input/internal/netlink"
	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// Collector dumps the traffic control trees of its namespaces once per
// Collect and keeps the last reading of every series, for the Held
// qdiscs of a namespace whose dump fails. It is not safe for concurrent
// use.
type Collector struct {
	opts Options
	log  *slog.Logger
	// flows joins the transmit counts to sockets and processes (with
	// Options.Xmit only).
	flows *flows.Collector
	// sentInode and sentTuple are the sockets that transmitted in the
	// period being joined (queueFlows), which the flows collection keeps.
	sentInode map[uint32]struct{}
	sentTuple map[tupleKey]struct{}
	// evicted counts the eBPF map's evictions since New.
	evicted atomic.Int64

	sel netns.Selector // which namespaces; the own one is cached
	// socks holds one rtnetlink socket per namespace; one that cannot be
	// opened is logged once and skipped until it disappears.
	socks *netns.Sockets[*rtnl]
	// last is the time of the last good collection of each namespace:
	// series born since then get their cumulative value as delta.
	last map[uint64]time.Time
	prev map[key]Qdisc
	// xpsFailed: reading XPS in another namespace failed once (logged).
	xpsFailed bool
	// xps caches the XPS masks of multiqueue devices, re-read every
	// xpsRefresh collections of their namespace (xpsAge counts down) or
	// when a device appears: in another namespace a read costs a thread
	// and a sysfs mount.
	xps    map[devID][]string
	xpsAge map[uint64]int
}

type devID struct {
	netns uint64
	index int32
	name  string
}

const xpsRefresh = 6

// New checks o and prepares a collector; it opens nothing until Collect.
func New(o Options) (*Collector, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.TopFlowsPerQueue == 0 {
		o.TopFlowsPerQueue = 20
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.RunDir == "" {
		o.RunDir = netns.DefaultRunDir
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		opts:   o,
		log:    log,
		last:   map[uint64]time.Time{},
		prev:   map[key]Qdisc{},
		xps:    map[devID][]string{},
		xpsAge: map[uint64]int{},
	}
	c.socks = netns.NewSockets(func(ns netns.Namespace) (*rtnl, error) {
		// The collector's own namespace needs no setns(2) round trip.
		if c.isSelf(ns) {
			return openRtnl()
		}
		return openRtnlIn(ns.Path)
	})
	if o.Xmit != nil {
		o.Xmit.x.evicted = &c.evicted
		c.sentInode, c.sentTuple = map[uint32]struct{}{}, map[tupleKey]struct{}{}
		fc, err := flows.New(flows.Options{
			ProcRoot: o.ProcRoot, RunDir: o.RunDir,
			AllNamespaces: o.AllNamespaces, Namespaces: o.Namespaces, Logger: log,
			// The join looks flows up once per period and copies what it
			// keeps: two generations of every flow of the host between
			// periods would be held for nothing.
			NoHistory: true,
			// Only the sockets that transmitted in the period: a host of
			// 36,000 sockets with a few dozen sending costs the join a
			// few dozen flows, not 36,000 with their process attribution.
			Keep: c.sent,
		})
		if err != nil {
			return nil, err
		}
		c.flows = fc
	}
	return c, nil
}

// Close releases the netlink sockets; a later Collect reopens them.
func (c *Collector) Close() error {
	if c.flows != nil {
		return errors.Join(c.socks.Close(), c.flows.Close())
	}
	return c.socks.Close()
}

// Collect returns the qdiscs and classes of every selected device of every
// selected namespace, and with Options.Xmit the flows behind each TX
// queue. A namespace whose dump failed contributes nothing (its previous
// readings are in Snapshot.Held) and its error is returned with the
// qdiscs of the others. When the namespaces cannot be listed, or ctx
// ends, the Snapshot is zero but for Evictions.
func (c *Collector) Collect(ctx context.Context) (Snapshot, error) {
	now := c.opts.Now()
	nss, err := c.namespaces()
	if err != nil {
		return c.failed(ctx, err)
	}
	var out []Qdisc
	var visited []Namespace
	seen := make(map[key]bool, len(c.prev))
	v, err := c.socks.Each(ctx, nss, func(ns netns.Namespace, err error) {
		c.log.Warn("qdisc: skipping a network namespace that cannot be opened", "netns", ns.Inode, "path", ns.Path, "error", err)
	}, func(ns netns.Namespace, r *rtnl) error {
		start := len(out)
		var err error
		if out, err = c.collectNamespace(r, ns, out); err != nil {
			out = out[:start]
			return err
		}
		for i := range out[start:] {
			s := &out[start+i]
			s.Time = now
			k := s.key()
			seen[k] = true
			c.prev[k] = *s
		}
		return nil
	})
	if err != nil {
		return c.failed(ctx, err)
	}
	present, failed := v.Present, v.Failed
	for _, ns := range nss {
		if !present[ns.Inode] || slices.ContainsFunc(visited, func(n Namespace) bool { return n.Inode == ns.Inode }) {
			continue
		}
		visited = append(visited, Namespace{Inode: ns.Inode, Name: ns.Name, Path: ns.Path, Previous: c.last[ns.Inode], Failed: failed[ns.Inode]})
	}
	for ino := range present {
		if !failed[ino] {
			c.last[ino] = now
		}
	}
	errs := make([]error, 0, len(v.Errs))
	for _, e := range v.Errs {
		errs = append(errs, fmt.Errorf("qdisc: %w", e))
	}
	var held []Qdisc
	for k, q := range c.prev {
		switch {
		case seen[k]:
		case failed[k.netns]:
			held = append(held, q)
		default:
			delete(c.prev, k)
		}
	}
	for ino := range c.last {
		if !present[ino] {
			delete(c.last, ino)
			delete(c.xpsAge, ino)
		}
	}
	snap := Snapshot{Time: now, Qdiscs: out, Namespaces: visited, Held: held}
	if c.opts.Xmit != nil {
		if err := c.queueFlows(ctx, &snap); err != nil {
			errs = append(errs, err)
		}
	}
	return snap, errors.Join(errs...)
}

// sent is the flows collector's Keep: the sockets of this period's
// transmit counts, by inode or else by 5-tuple, as joinFlows matches them.
func (c *Collector) sent(f *flows.Flow) bool {
	if _, ok := c.sentInode[f.Inode]; ok && f.Inode != 0 {
		return true
	}
	_, ok := c.sentTuple[tupleKey{f.Netns, f.Protocol, unmap(f.Local), unmap(f.Remote)}]
	return ok
}

// failed ends a collection that read no device: the period's transmit
// counts are read and dropped, for want of devices to join them to, so
// that the next collection's cover its own period only.
func (c *Collector) failed(ctx context.Context, err error) (Snapshot, error) {
	var s Snapshot
	if c.opts.Xmit != nil {
		_ = c.queueFlows(ctx, &s)
	}
	return Snapshot{Evictions: s.Evictions}, err
}

// queueFlows reads the transmit counts of the period and joins them to the
// flows of a flows collection.
func (c *Collector) queueFlows(ctx context.Context, snap *Snapshot) error {
	before := c.evicted.Load()
	var deltas []xmitDelta
	err := c.opts.Xmit.x.Read(func(d *xmitDelta) { deltas = append(deltas, *d) })
	snap.Evictions = c.evicted.Load() - before
	if err != nil || len(deltas) == 0 {
		return err
	}
	devs := map[devKey]*Device{}
	for i := range snap.Qdiscs {
		d := snap.Qdiscs[i].Device
		devs[devKey{d.Netns, d.Index}] = d
	}
	clear(c.sentInode)
	clear(c.sentTuple)
	for i := range deltas {
		d := &deltas[i]
		if d.Family == 0 {
			continue
		}
		if d.Inode != 0 {
			c.sentInode[d.Inode] = struct{}{}
		}
		c.sentTuple[tupleKey{d.SockNetns, d.Protocol, unmap(d.Local), unmap(d.Remote)}] = struct{}{}
	}
	fs, ferr := c.flows.Collect(ctx)
	// Flows of the namespaces that answered still join. The queue flows
	// point into fs, which the flows collector reuses two collections
	// later: they get copies.
	snap.QueueFlows = joinFlows(deltas, devs, fs.Flows, c.opts.TopFlowsPerQueue)
	for i := range snap.QueueFlows {
		if f := snap.QueueFlows[i].Flow; f != nil {
			cp := *f
			snap.QueueFlows[i].Flow = &cp
		}
	}
	return ferr
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
		return nil, fmt.Errorf("qdisc: %w", err)
	}
	return nss, nil
}

// isSelf avoids a setns(2) round trip for the collector's own namespace.
func (c *Collector) isSelf(ns netns.Namespace) bool {
	c.sel.ProcRoot = c.opts.ProcRoot
	return c.sel.IsSelf(ns)
}

// collectNamespace appends the samples of one namespace, without deltas.
func (c *Collector) collectNamespace(r *rtnl, ns netns.Namespace, out []Qdisc) ([]Qdisc, error) {
	devs := map[int32]*Device{}
	self := c.isSelf(ns)
	err := r.links(func(l linkMsg) {
		if !MatchDevice(c.opts.Devices, l.Name, l.Loopback) {
			return
		}
		devs[l.Index] = &Device{Netns: ns.Inode, NetnsName: ns.Name, Index: l.Index, Name: l.Name, Loopback: l.Loopback, TxQueues: l.TxQueues}
	})
	if err != nil {
		return out, err
	}
	c.xpsMasks(ns, self, devs)
	start := len(out)
	// mqMajor maps a device to the major number of its multiqueue root.
	mqMajor := map[int32]uint32{}
	dumpClasses := map[int32]bool{}
	err = r.tc(unix.RTM_GETQDISC, 0, func(m *tcMsg) {
		d := devs[m.Ifindex]
		if d == nil {
			return
		}
		out = append(out, sampleOf(ScopeQdisc, d, m))
		if multiqueue(m.Kind) {
			mqMajor[m.Ifindex] = m.Handle >> 16
		}
		if !classless[m.Kind] {
			dumpClasses[m.Ifindex] = true
		}
	})
	if err != nil {
		// A kind of its own: a kernel without traffic control answers
		// EOPNOTSUPP, which the input explains once.
		return out, &kernsup.TCError{What: "qdisc", Err: err}
	}
	for _, idx := range sortedKeys(dumpClasses) {
		d := devs[idx]
		err := r.tc(unix.RTM_GETTCLASS, idx, func(m *tcMsg) {
			if m.Ifindex == idx {
				out = append(out, sampleOf(ScopeClass, d, m))
			}
		})
		var ke *netlink.KernelError
		if errors.As(err, &ke) && (ke.Errno == unix.ENODEV || ke.Errno == unix.EINVAL) {
			// The device went away between the dumps.
			continue
		}
		if err != nil {
			return out, fmt.Errorf("class dump of %s: %w", d.Name, err)
		}
	}
	for i := range out[start:] {
		s := &out[start+i]
		maj, ok := mqMajor[s.Device.Index]
		if !ok {
			continue
		}
		var id uint32
		switch {
		case s.Scope == ScopeQdisc && s.Parent != handleRoot && s.Parent>>16 == maj:
			id = s.Parent & 0xFFFF
		case s.Scope == ScopeClass && multiqueue(s.Kind) && s.Handle>>16 == maj:
			id = s.Handle & 0xFFFF
		}
		// Queue classes are minors 1..num_tx_queues; mqprio's traffic
		// class entries (TC_H_MIN_PRIORITY and up) are not queues.
		if id >= 1 && (s.Device.TxQueues == 0 || id <= s.Device.TxQueues) && id < 0xFFF0 {
			s.TxQueue = int(id) - 1
		}
	}
	return out, nil
}

// xpsMasks fills the XPS masks of the multiqueue devices of ns, from the
// cache when it is fresh.
func (c *Collector) xpsMasks(ns netns.Namespace, self bool, devs map[int32]*Device) {
	age := c.xpsAge[ns.Inode]
	refresh := age <= 0
	var need []*Device
	for _, d := range devs {
		if d.TxQueues <= 1 {
			continue
		}
		if m, ok := c.xps[devID{ns.Inode, d.Index, d.Name}]; ok && !refresh {
			d.XPS = m
			continue
		}
		need = append(need, d)
	}
	if refresh {
		age = xpsRefresh
		for id := range c.xps {
			if id.netns == ns.Inode {
				delete(c.xps, id)
			}
		}
	}
	c.xpsAge[ns.Inode] = age - 1
	if len(need) == 0 {
		return
	}
	if self {
		for _, d := range need {
			d.XPS = readXPS(c.opts.SysRoot, d.Name, d.TxQueues)
		}
	} else if err := readXPSIn(ns.Path, c.opts.SysRoot, need); err != nil {
		if !c.xpsFailed {
			c.xpsFailed = true
			c.log.Warn("qdisc: cannot read the XPS masks of another network namespace", "netns", ns.Inode, "error", err)
		}
		return
	}
	for _, d := range need {
		c.xps[devID{ns.Inode, d.Index, d.Name}] = d.XPS
	}
}

func sampleOf(scope Scope, d *Device, m *tcMsg) Qdisc {
	return Qdisc{
		Scope:     scope,
		Device:    d,
		Kind:      m.Kind,
		Handle:    m.Handle,
		Parent:    m.Parent,
		TxQueue:   -1,
		Counters:  m.Counters,
		Backlog:   m.Backlog,
		Qlen:      m.Qlen,
		KindStats: decodeKind(scope, m.Kind, m.Options, m.Xstats),
	}
}

func sortedKeys(m map[int32]bool) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// readXPS reads the XPS CPU mask of each TX queue
// (Documentation/networking/scaling.rst); a queue whose file is missing
// or unreadable (XPS not built, a single-queue device) reads "".
func readXPS(sysRoot, dev string, n uint32) []string {
	if n == 0 || n > 4096 || strings.ContainsAny(dev, "/") || dev == "." || dev == ".." {
		return nil
	}
	out := make([]string, n)
	found := false
	for q := range n {
		b, err := os.ReadFile(filepath.Join(sysRoot, "class", "net", dev, "queues", "tx-"+strconv.FormatUint(uint64(q), 10), "xps_cpus"))
		if err == nil {
			out[q] = strings.TrimSpace(string(b))
			found = true
		}
	}
	if !found {
		return nil
	}
	return out
}
