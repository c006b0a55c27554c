package qdisc

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/fleutan/fleutanbeat/input/flows"
)

// QueueFlow is the traffic one flow handed to one TX queue of a device
// over a period (since the previous collection), or (Other) the sum of
// the flows beyond the top ones and of the packets without a socket.
// Bytes count skb->len (see the package doc).
type QueueFlow struct {
	Device  *Device `json:"device"`
	TxQueue int     `json:"tx_queue"`
	// Protocol, Local and Remote are the socket's (host-centric, IPv4
	// unmapped); Inode is the socket inode (0 for TIME-WAIT and request
	// sockets).
	Protocol  uint8          `json:"iana_number"`
	Local     netip.AddrPort `json:"local"`
	Remote    netip.AddrPort `json:"remote"`
	SockNetns uint64         `json:"socket_netns"`
	Inode     uint32         `json:"socket_inode"`
	// Flow is the flows collector's view of the socket (a copy, with its
	// process), nil when it was not found (a socket closed within the
	// period, another namespace).
	Flow       *flows.Flow `json:"flow,omitempty"`
	Bytes      uint64      `json:"bytes"`
	Packets    uint64      `json:"packets"`
	Other      bool        `json:"other"`
	OtherFlows int         `json:"other_flows,omitempty"` // flows summed into an Other one
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
func joinFlows(deltas []xmitDelta, devs map[devKey]*Device, fl []flows.Flow, top int) []QueueFlow {
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
	perQueue := map[queueKey][]QueueFlow{}
	for i := range deltas {
		d := &deltas[i]
		dev := devs[devKey{d.DevNetns, d.Ifindex}]
		if dev == nil {
			continue
		}
		s := QueueFlow{
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
	var out []QueueFlow
	for _, k := range keys {
		ss := perQueue[k]
		// Sockless packets always go to Other; so do flows past the top.
		slices.SortFunc(ss, func(a, b QueueFlow) int {
			if a.Other != b.Other {
				if a.Other {
					return 1
				}
				return -1
			}
			return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Inode, b.Inode),
				a.Local.Compare(b.Local), a.Remote.Compare(b.Remote), cmp.Compare(a.Protocol, b.Protocol))
		})
		var other *QueueFlow
		kept := 0
		for i := range ss {
			s := ss[i]
			if !s.Other && kept < top {
				kept++
				out = append(out, s)
				continue
			}
			if other == nil {
				other = &QueueFlow{Device: s.Device, TxQueue: s.TxQueue, Other: true}
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
