package qdisc

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/communityid"
	"github.com/fleutan/fleutanbeat/input/internal/ecsfields"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// FlowSample is the traffic one flow handed to one TX queue of a device
// over a period, or (Other) the sum of the flows beyond the top ones and
// of the packets without a socket.
type FlowSample struct {
	Device  *Device
	TxQueue int
	// Protocol, Local and Remote are the socket's (host-centric); Inode
	// is the socket inode (0 for TIME-WAIT and request sockets).
	Protocol      uint8
	Local, Remote netip.AddrPort
	SockNetns     uint64
	Inode         uint32
	// Flow is the flows collector's view of the socket, nil when it was
	// not found (a socket closed within the period, another namespace).
	Flow           *flows.Flow
	Bytes, Packets uint64
	Other          bool
	OtherFlows     int // flows summed into an Other sample
}

// xmitDelta is the traffic of one map entry over a period.
type xmitDelta struct {
	DevNetns       uint64
	Ifindex        int32
	Queue          int
	SockNetns      uint64
	Inode          uint32
	Family         uint8 // 0: no socket
	Protocol       uint8
	Local, Remote  netip.AddrPort
	Bytes, Packets uint64
}

type devKey struct {
	netns uint64
	index int32
}

type queueKey struct {
	dev   devKey
	queue int
}

type tupleKey struct {
	netns         uint64
	proto         uint8
	local, remote netip.AddrPort
}

// joinFlows turns the eBPF deltas into flow samples: deltas of devices
// outside samples are left out, each flow is matched to the flows
// collector's Flow by socket inode (unique across namespaces, sockfs) or
// else by 5-tuple, and each TX queue keeps its top flows by bytes, the
// rest summed into one Other sample.
func joinFlows(deltas []xmitDelta, devs map[devKey]*Device, fl []flows.Flow, top int) []FlowSample {
	byInode := make(map[uint32]*flows.Flow, len(fl))
	byTuple := make(map[tupleKey]*flows.Flow, len(fl))
	for i := range fl {
		f := &fl[i]
		if f.Final {
			continue
		}
		if f.Inode != 0 {
			byInode[f.Inode] = f
		}
		byTuple[tupleKey{f.Netns, f.Protocol, unmap(f.Local), unmap(f.Remote)}] = f
	}
	perQueue := map[queueKey][]FlowSample{}
	for i := range deltas {
		d := &deltas[i]
		dev := devs[devKey{d.DevNetns, d.Ifindex}]
		if dev == nil {
			continue
		}
		s := FlowSample{
			Device: dev, TxQueue: d.Queue, Protocol: d.Protocol,
			Local: unmap(d.Local), Remote: unmap(d.Remote), SockNetns: d.SockNetns, Inode: d.Inode,
			Bytes: d.Bytes, Packets: d.Packets,
		}
		if d.Family == 0 {
			s.Other = true
		} else if f := byInode[d.Inode]; d.Inode != 0 && f != nil {
			s.Flow = f
		} else if f := byTuple[tupleKey{d.SockNetns, d.Protocol, s.Local, s.Remote}]; f != nil {
			s.Flow = f
		}
		qk := queueKey{devKey{d.DevNetns, d.Ifindex}, d.Queue}
		perQueue[qk] = append(perQueue[qk], s)
	}
	keys := make([]queueKey, 0, len(perQueue))
	for k := range perQueue {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b queueKey) int {
		return cmp.Or(cmp.Compare(a.dev.netns, b.dev.netns), cmp.Compare(a.dev.index, b.dev.index), cmp.Compare(a.queue, b.queue))
	})
	var out []FlowSample
	for _, k := range keys {
		ss := perQueue[k]
		// Sockless packets always go to Other; so do flows past the top.
		slices.SortFunc(ss, func(a, b FlowSample) int {
			if a.Other != b.Other {
				if a.Other {
					return 1
				}
				return -1
			}
			return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Inode, b.Inode),
				a.Local.Compare(b.Local), a.Remote.Compare(b.Remote), cmp.Compare(a.Protocol, b.Protocol))
		})
		var other *FlowSample
		kept := 0
		for i := range ss {
			s := ss[i]
			if !s.Other && kept < top {
				kept++
				out = append(out, s)
				continue
			}
			if other == nil {
				other = &FlowSample{Device: s.Device, TxQueue: s.TxQueue, Other: true}
			}
			other.Bytes += s.Bytes
			other.Packets += s.Packets
			if !s.Other {
				other.OtherFlows++
			}
		}
		if other != nil {
			out = append(out, *other)
		}
	}
	return out
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Event converts s into a fleutan.qdisc event of scope flow.
func (s *FlowSample) Event(ts time.Time, t input.Times) pipeline.Event {
	q := deviceFields(s.Device, s.TxQueue)
	q["scope"] = string(ScopeFlow)
	q["delta"] = pipeline.M{"bytes": s.Bytes, "packets": s.Packets}
	fields := pipeline.M{
		"event":   eventMeta(t.Window),
		"fleutan": pipeline.M{"qdisc": q, "collection": collectionFields(t)},
	}
	series := devKeySeries(s.Device) + "/" + strconv.Itoa(s.TxQueue) + "/flow/"
	if s.Other {
		q["other"] = true
		q["other_flows"] = s.OtherFlows
		return pipeline.Event{Timestamp: ts, Fields: fields, Series: series + "other"}
	}
	q["other"] = false
	if s.Inode != 0 {
		q["socket_inode"] = uint64(s.Inode)
	}
	src, dst := s.Local, s.Remote
	direction := ecsfields.Direction(flows.Listening)
	if f := s.Flow; f != nil {
		direction = ecsfields.Direction(f.Direction)
		if f.Direction == flows.Inbound {
			src, dst = s.Remote, s.Local
		}
	}
	network := pipeline.M{
		"transport":   flows.TransportName(s.Protocol),
		"iana_number": strconv.Itoa(int(s.Protocol)),
		"direction":   direction,
		"type":        "ipv4",
	}
	if !s.Local.Addr().Is4() {
		network["type"] = "ipv6"
	}
	fields["network"] = network
	fields["source"] = pipeline.M{"ip": src.Addr().String(), "port": int(src.Port())}
	if dst.Port() != 0 {
		fields["destination"] = pipeline.M{"ip": dst.Addr().String(), "port": int(dst.Port())}
		network["community_id"] = communityid.V1(0, s.Protocol, src, dst)
	}
	if s.Flow != nil && s.Flow.Process != nil {
		fields["process"], fields["user"] = ecsfields.ProcessObjects(pipeline.NewBuilder(3, 8), s.Flow.Process)
	}
	b := []byte(series)
	b = append(b, flows.TransportName(s.Protocol)...)
	b = append(b, '/')
	b = s.Local.AppendTo(b)
	b = append(b, '/')
	b = s.Remote.AppendTo(b)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(s.Inode), 10)
	return pipeline.Event{Timestamp: ts, Fields: fields, Series: string(b)}
}

func devKeySeries(d *Device) string {
	return strconv.FormatUint(d.Netns, 10) + "/" + d.Name
}
