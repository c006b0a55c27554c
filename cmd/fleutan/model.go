package main

import (
	"cmp"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// Frame is what one sampling interval gives the views: the flows, the
// per-core CPU time of their processes and the per-queue transmit loads.
// It is built from the same pipeline events that --json prints, so the
// views and the JSON always agree and golden tests run on event fixtures.
type Frame struct {
	Flows []FlowRow
	Procs []ProcCores
	// Cores is the number of CPUs (highest core number + 1) seen in the
	// cpu events; 0 without them.
	Cores      int
	Queues     []QueueLoad
	QueueFlows []QueueFlow
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
// interval; Other sums the flows past the input's top ones and packets
// without a socket.
type QueueFlow struct {
	Device        string
	Queue         int
	Proto         string
	Local, Remote netip.AddrPort
	Bytes         float64
	Other         bool
	OtherFlows    int
}

// Datasets as set by the inputs (event.dataset).
const (
	dsFlows = "fleutan.flows"
	dsCPU   = "fleutan.cpu"
	dsQdisc = "fleutan.qdisc"
)

// buildFrame turns the events of one interval into a Frame. Events it does
// not know and fields that are missing or of the wrong type are skipped:
// the input is data, never a reason to fail.
func buildFrame(events []pipeline.Event) Frame {
	var fr Frame
	procs := map[int]*ProcCores{}
	queues := map[queueID]float64{}
	qdiscSeen := map[queueID]bool{}
	flowBytes := map[queueID]float64{}
	multiq := map[string]bool{}
	for i := range events {
		m := events[i].Fields
		switch str(m, "event.dataset") {
		case dsFlows:
			if f, ok := flowRow(m); ok {
				fr.Flows = append(fr.Flows, f)
			}
		case dsCPU:
			core, hasCore := integer(m, "fleutan.cpu.core")
			if hasCore {
				fr.Cores = max(fr.Cores, core+1)
			}
			if str(m, "fleutan.cpu.scope") != "process_core" || !hasCore {
				continue
			}
			pid, _ := integer(m, "process.pid")
			p := procs[pid]
			if p == nil {
				p = &ProcCores{PID: pid, Name: str(m, "process.name"), Pct: map[int]float64{}, Share: map[int]float64{}}
				procs[pid] = p
			}
			// Events carry fractions of a core (1 = 100%), as Beats do; the
			// views print percentages, as the original did.
			frac, _ := number(m, "fleutan.cpu.pct")
			p.Pct[core] = 100 * frac
			p.Share[core], _ = number(m, "fleutan.cpu.share")
		case dsQdisc:
			dev := str(m, "fleutan.qdisc.device")
			q, hasQ := integer(m, "fleutan.qdisc.tx_queue")
			switch str(m, "fleutan.qdisc.scope") {
			case "qdisc":
				bytes, hasDelta := number(m, "fleutan.qdisc.delta.bytes")
				if !hasDelta {
					continue
				}
				root, _ := m.GetValue("fleutan.qdisc.root")
				kind := str(m, "fleutan.qdisc.kind")
				switch {
				case hasQ:
					multiq[dev] = true
					queues[queueID{dev, q}] += bytes
					qdiscSeen[queueID{dev, q}] = true
				case root == true && kind != "noqueue":
					// A single-queue device: its root qdisc feeds queue 0.
					// The root of a multiqueue device (mq) is the sum of its
					// children and is dropped below.
					queues[queueID{dev, -1}] += bytes
				}
			case "flow":
				if !hasQ {
					continue
				}
				qf := QueueFlow{Device: dev, Queue: q, Proto: str(m, "network.transport")}
				qf.Bytes, _ = number(m, "fleutan.qdisc.delta.bytes")
				if other, _ := m.GetValue("fleutan.qdisc.other"); other == true {
					qf.Other = true
					qf.OtherFlows, _ = integer(m, "fleutan.qdisc.other_flows")
				} else {
					src, dst := addrPort(m, "source"), addrPort(m, "destination")
					qf.Local, qf.Remote = src, dst
					if str(m, "network.direction") == "ingress" {
						qf.Local, qf.Remote = dst, src
					}
				}
				fr.QueueFlows = append(fr.QueueFlows, qf)
				flowBytes[queueID{dev, q}] += qf.Bytes
			}
		}
	}
	for id, b := range queues {
		if id.queue == -1 {
			if multiq[id.dev] {
				continue
			}
			id.queue = 0
			qdiscSeen[id] = true
		}
		fr.Queues = append(fr.Queues, QueueLoad{Device: id.dev, Queue: id.queue, Bytes: b})
	}
	// A queue without a counting qdisc (noqueue, as on veth and most
	// virtual devices) still shows what the flows handed it.
	for id, b := range flowBytes {
		if !qdiscSeen[id] {
			fr.Queues = append(fr.Queues, QueueLoad{Device: id.dev, Queue: id.queue, Bytes: b})
		}
	}
	slices.SortFunc(fr.Queues, func(a, b QueueLoad) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Queue, b.Queue))
	})
	for _, p := range procs {
		fr.Procs = append(fr.Procs, *p)
	}
	slices.SortFunc(fr.Procs, func(a, b ProcCores) int { return cmp.Compare(a.PID, b.PID) })
	return fr
}

type queueID struct {
	dev   string
	queue int
}

// flowRow reads a fleutan.flows event; listening sockets and final
// reports of vanished flows are not flows of the interval.
func flowRow(m pipeline.M) (FlowRow, bool) {
	if str(m, "fleutan.flow.direction") == "listening" {
		return FlowRow{}, false
	}
	if final, _ := m.GetValue("fleutan.flow.final"); final == true {
		return FlowRow{}, false
	}
	f := FlowRow{
		Proto:  str(m, "network.transport"),
		Local:  addrPort(m, "fleutan.flow.local"),
		Remote: addrPort(m, "fleutan.flow.remote"),
		Proc:   str(m, "process.name"),
	}
	f.PID, _ = integer(m, "process.pid")
	if rtt, ok := number(m, "fleutan.flow.tcp.rtt_us"); ok {
		f.HasTCP = true
		f.RTTms = rtt / 1000
		f.BDP, _ = number(m, "fleutan.flow.tcp.bdp_bytes")
	}
	if _, ok := m.GetValue("fleutan.flow.delta"); ok {
		f.HasDelta = true
		f.SegsIn, _ = number(m, "fleutan.flow.delta.segs_in")
		f.SegsOut, _ = number(m, "fleutan.flow.delta.segs_out")
		f.BytesIn, _ = number(m, "fleutan.flow.delta.bytes_in")
		f.BytesOut, _ = number(m, "fleutan.flow.delta.bytes_out")
	}
	return f, true
}

func addrPort(m pipeline.M, prefix string) netip.AddrPort {
	a, err := netip.ParseAddr(str(m, prefix+".ip"))
	if err != nil {
		return netip.AddrPort{}
	}
	p, _ := integer(m, prefix+".port")
	if p < 0 || p > 65535 {
		p = 0
	}
	return netip.AddrPortFrom(a, uint16(p))
}

func str(m pipeline.M, key string) string {
	v, _ := m.GetValue(key)
	s, _ := v.(string)
	return s
}

// number reads a numeric field as the inputs put it (Go integer and float
// types) or as JSON fixtures decode it (json.Number, float64).
func number(m pipeline.M, key string) (float64, bool) {
	v, ok := m.GetValue(key)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		return f, err == nil
	}
	return 0, false
}

func integer(m pipeline.M, key string) (int, bool) {
	f, ok := number(m, key)
	if !ok || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}
