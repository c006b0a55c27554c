package flows

import (
	"context"
	"fmt"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/internal/tcplife"
)

// This file joins the eBPF connection tracker (Options.Tracker)
// to the sock_diag snapshots: final counters at TCP_CLOSE, connections
// shorter than a period, and the opener of a new connection.

// drainClosed fills c.closed with the connections closed since the last
// collection in the namespaces dumped now.
func (c *Collector) drainClosed(ctx context.Context, nss []netns.Namespace, present, failed map[uint64]bool) error {
	clear(c.closed)
	clear(c.byPID)
	t := c.tracker
	if t == nil {
		return nil
	}
	conns, err := t.Drain(ctx)
	if err != nil {
		return fmt.Errorf("flows: eBPF connection tracker: %w", err)
	}
	if !c.hasProtocol(protoTCP) {
		return nil
	}
	for i := range conns {
		cl := &conns[i]
		ns := uint64(cl.Netns)
		if !present[ns] || failed[ns] || !c.hasFamily(cl.Family) {
			continue
		}
		c.closed[cl.Cookie] = cl
	}
	clear(c.nsNames)
	for _, ns := range nss {
		if ns.Name != "" {
			c.nsNames[ns.Inode] = ns.Name
		}
	}
	return nil
}

func (c *Collector) hasProtocol(p uint8) bool {
	for _, x := range c.protocols {
		if x == p {
			return true
		}
	}
	return false
}

func (c *Collector) hasFamily(f uint8) bool {
	for _, x := range c.families {
		if x == f {
			return true
		}
	}
	return false
}

// hint asks the tracker who opened each new connection and tells the
// process index to read exactly those processes' fd tables.
func (c *Collector) hint(flows []Flow) {
	clear(c.owners)
	t := c.tracker
	if t == nil {
		return
	}
	for i := range flows {
		f := &flows[i]
		if f.Cookie == 0 || f.Protocol != protoTCP || f.Direction == Listening {
			continue
		}
		// A socket the index already holds needs no hint; asking the
		// index (one inode lookup) is cheaper than finding the flow's
		// previous report by its Key, at tens of thousands of flows.
		if c.procs != nil && c.procs.Known(f.Inode) {
			continue
		}
		o, ok := t.Lookup(f.Cookie)
		if !ok || o.TGID == 0 {
			continue
		}
		c.owners[f.Cookie] = o
		if c.procs != nil {
			c.procs.Hint(int(o.TGID))
		}
	}
}

// trackedOwner is the process the tracker saw open f, for a socket whose
// inode no fd table showed (yet).
func (c *Collector) trackedOwner(f *Flow) (*procindex.Process, bool) {
	o, ok := c.owners[f.Cookie]
	if !ok {
		return nil, false
	}
	return c.procs.Process(int(o.TGID), o.Comm)
}

// closedFlow takes the close record of f, if the tracker reported one. A
// TIME-WAIT socket carries the cookie of the socket it replaced
// (inet_twsk_alloc copies it) but is another socket, reported as such: the
// record belongs to the flow that closed.
func (c *Collector) closedFlow(f *Flow) *tcplife.Conn {
	if len(c.closed) == 0 || f.Cookie == 0 || f.Protocol != protoTCP || f.Direction == Listening || f.State == stateTimeWait {
		return nil
	}
	cl, ok := c.closed[f.Cookie]
	if !ok {
		return nil
	}
	delete(c.closed, f.Cookie)
	return cl
}

// finalFromClose turns f into its final report with the counters of
// TCP_CLOSE. Values that only a live socket has (cwnd, rates, ...) keep
// those of the last snapshot.
func (c *Collector) finalFromClose(f *Flow, cl *tcplife.Conn) {
	f.Final = true
	f.State = stateClose
	f.HasTCP = true
	f.TCP.BytesAcked = cl.BytesAcked
	f.TCP.BytesReceived = cl.BytesReceived
	f.TCP.SegsOut = cl.SegsOut
	f.TCP.SegsIn = cl.SegsIn
	f.TCP.TotalRetrans = cl.TotalRetrans
	f.TCP.RTTMicros = cl.SRTTMicros
	f.CloseCounters = true
	f.FINAcked = cl.Flags&tcplife.FINAcked != 0
	f.FINReceived = cl.Flags&tcplife.FINReceived != 0
	if cl.Flags&tcplife.Started != 0 {
		f.Started = true
		f.KernelLifetime = time.Duration(cl.EndNs - cl.StartNs)
		f.FirstSeen = tcplife.WallTime(cl.StartNs)
	}
	if f.Inode == 0 {
		f.Inode = cl.Inode
	}
	if f.Process == nil {
		// Closed before any fd table showed it: the tracker knows who
		// opened it.
		f.Process, f.CommOnly = c.closedOwner(f, cl)
	}
}

// gone decides about a flow that left the dump: reported final now with
// the counters of its close (Diff gives its delta against p), kept back
// while the tracker says it is still open (FIN-WAIT, CLOSE-WAIT, ... are
// not in every state selection), or reported from its last snapshot when
// the tracker does not know it.
func (c *Collector) gone(p Flow) (Flow, bool) {
	if cl, ok := c.closed[p.Cookie]; ok {
		delete(c.closed, p.Cookie)
		delete(c.lingering, p.Cookie)
		f := p
		c.finalFromClose(&f, cl)
		return f, true
	}
	if _, ok := c.tracker.Lookup(p.Cookie); ok {
		c.lingering[p.Cookie] = p
		return Flow{}, false
	}
	delete(c.lingering, p.Cookie)
	p.Final = true
	return p, true
}

// appendClosed reports the lingering flows that closed since and the
// connections that lived and died between two collections.
func (c *Collector) appendClosed(flows []Flow, failed map[uint64]bool, now time.Time) []Flow {
	if c.tracker == nil {
		return flows
	}
	for cookie, p := range c.lingering {
		if failed[p.Netns] {
			continue
		}
		if _, ok := c.closed[cookie]; !ok {
			if _, open := c.tracker.Lookup(cookie); open {
				continue
			}
		}
		if f, ok := c.gone(p); ok {
			flows = append(flows, f)
		}
	}
	for _, cl := range c.closed {
		if !c.wantClosed(cl) {
			continue
		}
		flows = append(flows, c.flowFromConn(cl, now))
	}
	clear(c.closed)
	return flows
}

// wantClosed leaves out attempts that never connected unless their state
// is selected: a refused connect(2) is not a flow of an established
// selection.
func (c *Collector) wantClosed(cl *tcplife.Conn) bool {
	want := c.opts.States
	switch {
	case want == 0:
		return true
	case cl.OldState == stateSynSent:
		return want&(1<<stateSynSent) != 0
	case cl.OldState == stateSynRecv:
		return want&(1<<stateSynRecv) != 0
	}
	return true
}

// flowFromConn is the one report of a connection that no collection saw
// open.
func (c *Collector) flowFromConn(cl *tcplife.Conn, now time.Time) Flow {
	f := Flow{
		Netns:     uint64(cl.Netns),
		NetnsName: c.nsNames[uint64(cl.Netns)],
		Family:    cl.Family,
		Protocol:  protoTCP,
		Local:     cl.Local,
		Remote:    cl.Remote,
		Cookie:    cl.Cookie,
		Closed:    true,
		FirstSeen: now,
	}
	switch {
	case cl.Flags&tcplife.Active != 0:
		f.Direction = Outbound
	case cl.Flags&tcplife.Listener != 0:
		f.Direction = Inbound
	default:
		f.Direction = Outbound
		if _, ok := c.listenerOf(&f); ok {
			f.Direction = Inbound
		}
	}
	// Diff gives it its whole count as delta when the tracker saw it
	// born (Started).
	c.finalFromClose(&f, cl)
	return f
}

// closedOwner is the process of a closed connection: the one that opened
// it (or owns its listener) read from /proc while it lives, else what the
// tracker saw of it.
func (c *Collector) closedOwner(f *Flow, cl *tcplife.Conn) (p *procindex.Process, commOnly bool) {
	if c.opts.NoProcesses {
		return nil, false
	}
	if cl.TGID != 0 {
		// One /proc read per process and collection: a client making
		// thousands of connections a second is read once.
		key := pidComm{cl.TGID, cl.Comm}
		if o, ok := c.byPID[key]; ok {
			return o.p, o.commOnly
		}
		var p *procindex.Process
		commOnly := false
		if c.procs != nil {
			if q, ok := c.procs.Process(int(cl.TGID), cl.Comm); ok {
				p = c.copyProcess(q)
			}
		}
		if p == nil {
			p, commOnly = &procindex.Process{PID: int(cl.TGID), Name: cl.Comm}, true
		}
		c.byPID[key] = closedProc{p, commOnly}
		return p, commOnly
	}
	if f.Direction == Inbound && c.procs != nil {
		if ino, ok := c.listenerOf(f); ok && ino != 0 {
			if p, ok := c.procs.Lookup(ino); ok && p != nil {
				return c.copyProcess(p), false
			}
		}
	}
	return nil, false
}

type pidComm struct {
	tgid uint32
	comm string
}

type closedProc struct {
	p        *procindex.Process
	commOnly bool
}

func (c *Collector) copyProcess(p *procindex.Process) *procindex.Process {
	cp, ok := c.procCopy[p]
	if !ok {
		v := *p
		cp = &v
		c.procCopy[p] = cp
	}
	return cp
}
