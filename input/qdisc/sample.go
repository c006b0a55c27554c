package qdisc

import (
	"strconv"
	"time"
)

// Scope says what a Sample describes.
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

// Counters are the cumulative counters of a qdisc or class.
type Counters struct {
	Bytes, Packets, Drops, Overlimits, Requeues uint64
}

// Device is a network device as the collection saw it.
type Device struct {
	Netns     uint64
	NetnsName string
	Index     int32
	Name      string
	Loopback  bool
	// TxQueues is IFLA_NUM_TX_QUEUES, RealTxQueues IFLA_REAL_NUM_TX_QUEUES
	// (0 when the kernel did not say).
	TxQueues, RealTxQueues uint32
	// XPS holds /sys/class/net/DEV/queues/tx-N/xps_cpus of each queue of
	// a multiqueue device, as the kernel prints the CPU mask ("" when
	// unreadable), re-read every few collections.
	XPS []string
}

// Sample is one qdisc or class in one collection.
type Sample struct {
	Scope  Scope
	Device *Device
	Kind   string
	Handle uint32
	Parent uint32
	// TxQueue is the TX queue index of a child of mq or mqprio (and of
	// their per-queue classes), -1 otherwise.
	TxQueue int
	Counters
	Backlog, Qlen uint32
	// Kind-specific statistics, nil when the kind has none we decode.
	Specific KindStats

	// HasDelta is false at the first collection of a namespace.
	HasDelta bool
	Delta    Counters
	// Reset says the counters went backwards since the previous
	// collection: the delta is the new cumulative value.
	Reset   bool
	Elapsed time.Duration // since the previous collection of the series
}

// Root reports whether the qdisc is attached at the device's root.
func (s *Sample) Root() bool { return s.Parent == handleRoot }

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

func (s *Sample) key() key {
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
