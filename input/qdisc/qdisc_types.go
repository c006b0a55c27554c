package qdisc

import (
	"strconv"
	"time"
)

// Scope says what a Qdisc (or a QueueFlow's event) describes.
type Scope string

const (
	ScopeQdisc Scope = "qdisc"
	ScopeClass Scope = "class"
	ScopeFlow  Scope = "flow"
)

// Traffic control handles (linux/pkt_sched.h).
const (
	handleRoot    = 0xFFFFFFFF // TC_H_ROOT
	handleIngress = 0xFFFFFFF1 // TC_H_INGRESS, also clsact's
)

// Counters are the cumulative counters of a qdisc or class (or, in a
// Delta, their change). Bytes count what the qdisc dequeued with the
// link-layer header (see the package doc); drops, overlimits and
// requeues are 32 bits in the kernel.
type Counters struct {
	Bytes      uint64 `json:"bytes"`
	Packets    uint64 `json:"packets"`
	Drops      uint64 `json:"drops"`
	Overlimits uint64 `json:"overlimits"`
	Requeues   uint64 `json:"requeues"`
}

// Device is a network device as the collection saw it.
type Device struct {
	Netns     uint64 `json:"netns"`
	NetnsName string `json:"netns_name,omitempty"`
	Index     int32  `json:"index"`
	Name      string `json:"name"`
	Loopback  bool   `json:"loopback,omitempty"`
	// TxQueues is IFLA_NUM_TX_QUEUES, RealTxQueues IFLA_REAL_NUM_TX_QUEUES
	// (0 when the kernel did not say).
	TxQueues     uint32 `json:"tx_queues"`
	RealTxQueues uint32 `json:"real_tx_queues,omitempty"`
	// XPS holds /sys/class/net/DEV/queues/tx-N/xps_cpus of each queue of
	// a multiqueue device, as the kernel prints the CPU mask ("" when
	// unreadable), re-read every few collections.
	XPS []string `json:"xps_cpus,omitempty"`
}

// Qdisc is one qdisc or class (Scope) in one collection, with cumulative
// counters.
type Qdisc struct {
	Scope  Scope   `json:"scope"`
	Device *Device `json:"device"`
	Kind   string  `json:"kind"`
	Handle uint32  `json:"handle"` // FormatHandle writes it as tc(8) does
	Parent uint32  `json:"parent"`
	// TxQueue is the TX queue index of a child of mq or mqprio (and of
	// their per-queue classes), -1 otherwise.
	TxQueue int `json:"tx_queue"`
	Counters
	Backlog uint32 `json:"backlog_bytes"` // bytes queued now
	Qlen    uint32 `json:"qlen"`          // packets queued now
	// Kind-specific statistics: at most one is set, nil when the kind has
	// none we decode.
	KindStats
	// Time is when the collection that read these counters started (for a
	// Held qdisc, an earlier one than the snapshot's).
	Time time.Time `json:"time"`
}

// Root reports whether the qdisc is attached at the device's root.
func (s *Qdisc) Root() bool { return s.Parent == handleRoot }

// Series identifies the qdisc or class across collections:
// "netns/device/scope/handle/parent/kind", the event's series key.
func (s *Qdisc) Series() string { return s.key().series() }

// key identifies a series across collections.
type key struct {
	netns  uint64
	ifidx  int32
	dev    string
	scope  Scope
	handle uint32
	parent uint32
	kind   string
}

func (s *Qdisc) key() key {
	return key{s.Device.Netns, s.Device.Index, s.Device.Name, s.Scope, s.Handle, s.Parent, s.Kind}
}

// series is the event's series key: "netns/device/scope/handle/parent/kind".
func (k key) series() string {
	b := make([]byte, 0, 64)
	b = strconv.AppendUint(b, k.netns, 10)
	b = append(b, '/')
	b = append(b, k.dev...)
	b = append(b, '/')
	b = append(b, k.scope...)
	b = append(b, '/')
	b = append(b, FormatHandle(k.handle)...)
	b = append(b, '/')
	b = append(b, FormatHandle(k.parent)...)
	b = append(b, '/')
	b = append(b, k.kind...)
	return string(b)
}

// FormatHandle writes a handle as tc(8) does: "root", "1:" for a qdisc
// (minor 0), "1:a" for a class, hexadecimal.
func FormatHandle(h uint32) string {
	if h == handleRoot {
		return "root"
	}
	maj, min := h>>16, h&0xFFFF
	s := strconv.FormatUint(uint64(maj), 16) + ":"
	if min != 0 {
		s += strconv.FormatUint(uint64(min), 16)
	}
	return s
}

// delta computes cur - prev; reset reports counters that went backwards.
// Drops, overlimits and requeues are 32 bits in struct gnet_stats_queue:
// a value below its predecessor by more than half the range is a wrap,
// not a reset.
func delta(cur, prev Counters) (d Counters, reset bool) {
	if cur.Bytes < prev.Bytes || cur.Packets < prev.Packets {
		return cur, true
	}
	d.Bytes, d.Packets = cur.Bytes-prev.Bytes, cur.Packets-prev.Packets
	var ok1, ok2, ok3 bool
	d.Drops, ok1 = diff32(cur.Drops, prev.Drops)
	d.Overlimits, ok2 = diff32(cur.Overlimits, prev.Overlimits)
	d.Requeues, ok3 = diff32(cur.Requeues, prev.Requeues)
	if !ok1 || !ok2 || !ok3 {
		return cur, true
	}
	return d, false
}

func diff32(cur, prev uint64) (uint64, bool) {
	if cur >= prev {
		return cur - prev, true
	}
	if prev <= 0xFFFFFFFF && prev-cur > 1<<31 {
		return uint64(uint32(cur) - uint32(prev)), true
	}
	return 0, false
}
