package main

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/rdma"
)

// Frame is what one sampling interval gives the views: the flows, the
// per-core CPU time of their processes and the per-queue transmit loads.
// buildFrame makes it from the library collectors' snapshots and their
// Diff, the same values --json prints, so the views and the JSON always
// agree and golden tests run on snapshot fixtures.
type Frame struct {
	Flows []FlowRow
	Procs []ProcCores
	// Cores is the number of CPUs (highest core number + 1) in the cpu
	// usage; 0 without it.
	Cores      int
	Queues     []QueueLoad
	QueueFlows []QueueFlow
	QPs        []QPRow
}

// FlowRow is one connected socket (listening sockets are left out).
type FlowRow struct {
	Proto         string
	Local, Remote netip.AddrPort
	PID           int // 0 when no process holds the socket
	Proc          string
	HasTCP        bool
	RTTms         float64
	BDP           float64 // bytes
	HasDelta      bool
	SegsIn        float64 // over the interval
	SegsOut       float64
	BytesIn       float64
	BytesOut      float64
}

// ProcCores is a process's CPU time per core over the interval.
type ProcCores struct {
	PID  int
	Name string
	// Pct is the percent of one core per core number; Share the part
	// (0..1) of the process's CPU time spent on that core.
	Pct, Share map[int]float64
}

// QueueLoad is the bytes a device's TX queue sent over the interval.
type QueueLoad struct {
	Device string
	Queue  int
	Bytes  float64
}

// QueueFlow is the bytes one flow handed to one TX queue over the
// interval; Other sums the flows past the collector's top ones and
// packets without a socket.
type QueueFlow struct {
	Device        string
	Queue         int
	Proto         string
	Local, Remote netip.AddrPort
	Bytes         float64
	Other         bool
	OtherFlows    int
}

// interval is one sampling interval as the library collectors give it:
// each collector's snapshot and its Diff with the previous one. A view
// leaves out the collectors it does not draw from (nil).
type interval struct {
	Flows *flows.Snapshot `json:"flows,omitempty"`
	// FlowDeltas is flows.Diff: one per Flows.Flows, same index.
	FlowDeltas []flows.FlowDelta `json:"flow_deltas,omitempty"`
	CPU        *cpu.Usage        `json:"cpu,omitempty"`
	Qdisc      *qdisc.Snapshot   `json:"qdisc,omitempty"`
	// QdiscDeltas is qdisc.Diff: one per Qdisc.Qdiscs, same index.
	QdiscDeltas []qdisc.QdiscDelta `json:"qdisc_deltas,omitempty"`
	RDMA        *rdma.Snapshot     `json:"rdma,omitempty"`
	RDMADelta   *rdma.Delta        `json:"rdma_delta,omitempty"`
}

// End offsets in struct tcp_info (linux/tcp.h) of the fields the views
// use: a kernel whose struct stops short of one did not send it.
const (
	tcpiRTTEnd = 72  // tcpi_rtt
	tcpiBDPEnd = 168 // tcpi_delivery_rate, after tcpi_min_rtt
)

// buildFrame turns one interval into a Frame.
func buildFrame(iv *interval) Frame {
	var fr Frame
	if s := iv.Flows; s != nil {
		fr.Flows = flowRows(s, iv.FlowDeltas)
	}
	if u := iv.CPU; u != nil {
		fr.Cores, fr.Procs = procCores(u)
	}
	if s := iv.Qdisc; s != nil {
		fr.Queues, fr.QueueFlows = queueLoads(s, iv.QdiscDeltas)
	}
	if d := iv.RDMADelta; d != nil {
		fr.QPs = qpRows(d)
	}
	return fr
}

// flowRows lists the flows of the interval: listening sockets and final
// reports of flows that ended are not flows of the interval.
func flowRows(s *flows.Snapshot, deltas []flows.FlowDelta) []FlowRow {
	var rows []FlowRow
	for i := range s.Flows {
		f := &s.Flows[i]
		if f.Direction == flows.Listening || f.Final {
			continue
		}
		r := FlowRow{
			Proto:  flows.TransportName(f.Protocol),
			Local:  unmap(f.Local),
			Remote: unmap(f.Remote),
		}
		if p := f.Process; p != nil {
			r.PID, r.Proc = p.PID, p.Name
		}
		if f.HasTCP && f.TCP.Has(tcpiRTTEnd) {
			r.HasTCP = true
			r.RTTms = float64(f.TCP.RTTMicros) / 1000
			if f.TCP.Has(tcpiBDPEnd) {
				r.BDP = float64(f.TCP.BDPBytes())
			}
		}
		if i < len(deltas) && deltas[i].OK {
			d := &deltas[i].Delta
			r.HasDelta = true
			r.SegsIn, r.SegsOut = float64(d.SegsIn), float64(d.SegsOut)
			r.BytesIn, r.BytesOut = float64(d.BytesIn), float64(d.BytesOut)
		}
		rows = append(rows, r)
	}
	return rows
}

// procCores is the number of cores and each process's time per core, in
// pid order.
func procCores(u *cpu.Usage) (cores int, procs []ProcCores) {
	for _, c := range u.Cores {
		cores = max(cores, c.CPU+1)
	}
	for i := range u.Processes {
		p := &u.Processes[i]
		if p.Process == nil || len(p.Cores) == 0 {
			continue
		}
		pc := ProcCores{PID: p.Process.PID, Name: p.Process.Name, Pct: map[int]float64{}, Share: map[int]float64{}}
		for _, c := range p.Cores {
			cores = max(cores, c.CPU+1)
			// The library gives fractions of a core (1 = 100%), as Beats
			// do; the views print percentages, as the original did.
			pc.Pct[c.CPU] = 100 * c.Pct
			pc.Share[c.CPU] = c.Share
		}
		procs = append(procs, pc)
	}
	slices.SortFunc(procs, func(a, b ProcCores) int { return cmp.Compare(a.PID, b.PID) })
	return cores, procs
}

// queueLoads sums the bytes each TX queue sent over the interval and lists
// the flows behind each queue.
func queueLoads(s *qdisc.Snapshot, deltas []qdisc.QdiscDelta) (loads []QueueLoad, qflows []QueueFlow) {
	queues := map[queueID]float64{}
	counted := map[queueID]bool{}
	multiq := map[string]bool{}
	for i := range s.Qdiscs {
		q := &s.Qdiscs[i]
		if q.Scope != qdisc.ScopeQdisc || i >= len(deltas) || !deltas[i].OK {
			continue
		}
		id, bytes := queueID{q.Device.Name, q.TxQueue}, float64(deltas[i].Delta.Bytes)
		switch {
		case q.TxQueue >= 0:
			multiq[id.dev] = true
			queues[id] += bytes
			counted[id] = true
		case q.Root() && q.Kind != "noqueue":
			// A single-queue device: its root qdisc feeds queue 0. The
			// root of a multiqueue device (mq) is the sum of its
			// children and is dropped below.
			queues[queueID{id.dev, -1}] += bytes
		}
	}
	flowBytes := map[queueID]float64{}
	for i := range s.QueueFlows {
		f := &s.QueueFlows[i]
		qf := QueueFlow{Device: f.Device.Name, Queue: f.TxQueue, Bytes: float64(f.Bytes), Other: f.Other, OtherFlows: f.OtherFlows}
		if !f.Other {
			qf.Proto, qf.Local, qf.Remote = flows.TransportName(f.Protocol), f.Local, f.Remote
		}
		qflows = append(qflows, qf)
		flowBytes[queueID{qf.Device, qf.Queue}] += qf.Bytes
	}
	for id, b := range queues {
		if id.queue == -1 {
			if multiq[id.dev] {
				continue
			}
			id.queue = 0
			counted[id] = true
		}
		loads = append(loads, QueueLoad{Device: id.dev, Queue: id.queue, Bytes: b})
	}
	// A queue without a counting qdisc (noqueue, as on veth and most
	// virtual devices) still shows what the flows handed it.
	for id, b := range flowBytes {
		if !counted[id] {
			loads = append(loads, QueueLoad{Device: id.dev, Queue: id.queue, Bytes: b})
		}
	}
	slices.SortFunc(loads, func(a, b QueueLoad) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Queue, b.Queue))
	})
	return loads, qflows
}

type queueID struct {
	dev   string
	queue int
}

// unmap shows a dual-stack socket's IPv4 peer (an IPv4-mapped IPv6
// address) as IPv4, as ss(8) and the agent's events do.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
