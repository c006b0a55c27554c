package flows

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input/process"
)

// Protocol numbers (IANA) and address families (linux/socket.h) as the
// kernel reports them in inet_diag_msg, for Options.Protocols,
// Options.Families, Flow.Protocol and Flow.Family.
const (
	ProtocolTCP uint8 = 6
	ProtocolUDP uint8 = 17
	FamilyIPv4  uint8 = 2
	FamilyIPv6  uint8 = 10
)

const (
	protoTCP = ProtocolTCP
	protoUDP = ProtocolUDP
	afInet   = FamilyIPv4
	afInet6  = FamilyIPv6
)

// TCP states (linux/tcp_states.h) that change how counters read.
const (
	stateEstablished = 1
	stateSynSent     = 2
	stateSynRecv     = 3
	stateFinWait1    = 4
	stateFinWait2    = 5
	stateTimeWait    = 6
	stateClose       = 7
	stateCloseWait   = 8
	stateLastAck     = 9
	stateListen      = 10
	stateClosing     = 11
)

// Direction is the host-centric direction of a flow.
type Direction string

const (
	Inbound   Direction = "inbound"
	Outbound  Direction = "outbound"
	Listening Direction = "listening"
)

// TCPInfo is the part of struct tcp_info (linux/tcp.h) that flows report,
// as the kernel gives it: counters are cumulative over the socket's life.
// Rates are in bytes per second (the events convert them to bits per
// second).
type TCPInfo struct {
	RTTMicros    uint32 `json:"rtt_us"`    // smoothed RTT, microseconds
	RTTVarMicros uint32 `json:"rttvar_us"` // microseconds
	MinRTTMicros uint32 `json:"min_rtt_us"`
	Cwnd         uint32 `json:"cwnd"`     // segments
	Ssthresh     uint32 `json:"ssthresh"` // segments
	MSS          uint32 `json:"mss"`      // bytes
	SegsIn       uint32 `json:"segs_in"`  // segments, control ones included
	SegsOut      uint32 `json:"segs_out"`
	TotalRetrans uint32 `json:"total_retrans"` // segments
	Lost         uint32 `json:"lost"`          // segments
	NotsentBytes uint32 `json:"notsent_bytes"`
	// BytesAcked and BytesReceived count sequence space (SYN and FIN
	// included); Flow.BytesOut and Flow.BytesIn are the payload.
	BytesAcked    uint64 `json:"bytes_acked"`
	BytesReceived uint64 `json:"bytes_received"`
	BytesSent     uint64 `json:"bytes_sent"`    // bytes, retransmissions included
	BytesRetrans  uint64 `json:"bytes_retrans"` // bytes
	DeliveryRate  uint64 `json:"delivery_rate"` // bytes per second
	PacingRate    uint64 `json:"pacing_rate"`   // bytes per second; ^0 unlimited
	// Len is how many bytes of struct tcp_info the kernel sent: fields
	// past it are absent (older kernels send a shorter struct), not 0.
	// 0 means unknown: every field is present.
	Len int `json:"len"`
}

// Has reports whether the kernel's tcp_info reaches byte offset end (a
// field's end offset in struct tcp_info), that is whether that field was
// sent.
func (t *TCPInfo) Has(end int) bool { return t.Len == 0 || end <= t.Len }

// BDPBytes is delivery rate × min RTT (see the package doc).
func (t *TCPInfo) BDPBytes() uint64 {
	return t.DeliveryRate * uint64(t.MinRTTMicros) / 1e6
}

// Delta is the change of a flow's counters over one period. Bytes are
// payload bytes (see the package doc); the others count segments.
type Delta struct {
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	SegsIn   uint64 `json:"segs_in"`
	SegsOut  uint64 `json:"segs_out"`
	Retrans  uint64 `json:"retrans"`
}

// Flow is one socket as seen in one collection. Its counters (TCP) are
// cumulative; Diff gives their change since the previous collection.
type Flow struct {
	Netns     uint64 `json:"netns"`                // inode of the network namespace
	NetnsName string `json:"netns_name,omitempty"` // name under /run/netns, if any
	Family    uint8  `json:"family"`               // FamilyIPv4 or FamilyIPv6
	Protocol  uint8  `json:"iana_number"`          // ProtocolTCP or ProtocolUDP
	State     uint8  `json:"state"`                // linux/tcp_states.h; StateName names it
	// Local and Remote are as the socket holds them: a dual-stack socket's
	// IPv4 peers are IPv4-mapped IPv6 addresses.
	Local     netip.AddrPort `json:"local"`
	Remote    netip.AddrPort `json:"remote"`
	Inode     uint32         `json:"inode"`
	UID       uint32         `json:"uid"` // the socket's owner (sock_i_uid)
	Direction Direction      `json:"direction"`
	// Cookie is the socket cookie (idiag_cookie), which the eBPF tracker
	// keys connections by.
	Cookie uint64 `json:"cookie"`

	// Process owns the socket when the /proc walk found it; nil for sockets
	// without a live owner (TIME-WAIT, orphans, a process that just exited).
	// Flows of one process in one collection share the value.
	Process *process.Process `json:"process,omitempty"`
	// CommOnly: Process has only the pid and comm the eBPF tracker saw
	// (the process exited before /proc could be read), so no user is
	// known.
	CommOnly bool `json:"comm_only,omitempty"`
	// Route is the route to Remote (Options.Routes), nil when not looked
	// up or when the namespace has none. Flows to one peer share the
	// value; it is never modified.
	Route *Route `json:"route,omitempty"`

	HasTCP     bool    `json:"has_tcp"`
	TCP        TCPInfo `json:"tcp"`
	Congestion string  `json:"congestion,omitempty"`

	// Final marks the last report of a flow that has disappeared. Without
	// CloseCounters it carries the values of the last collection that saw
	// it; with them, the counters the kernel had at TCP_CLOSE (State is
	// then close).
	Final bool `json:"final"`
	// CloseCounters: the eBPF tracker saw the flow close and TCP carries
	// the counters of TCP_CLOSE; FINAcked and FINReceived say whether
	// they include a FIN's sequence number.
	CloseCounters bool `json:"close_counters,omitempty"`
	FINAcked      bool `json:"fin_acked,omitempty"`
	FINReceived   bool `json:"fin_received,omitempty"`
	// Started: the tracker saw the flow's first state change, so its
	// counters began at zero within the tracker's view (Diff gives a
	// Closed flow a delta only then).
	Started bool `json:"started,omitempty"`
	// FirstSeen is when the flow began as far as the agent knows: the
	// collection that first saw it, or its first state change when the
	// tracker saw that.
	FirstSeen time.Time `json:"first_seen"`
	// KernelLifetime is, for a final flow whose close the tracker saw
	// from its start, the time from its first state change to TCP_CLOSE,
	// in nanoseconds; 0 when unknown.
	KernelLifetime time.Duration `json:"kernel_lifetime_ns,omitempty"`
	// Closed is set when the flow was born and closed between two
	// collections, so no snapshot ever showed it.
	Closed bool `json:"closed,omitempty"`
}

// Lifetime is how long the flow lived, the event.duration of its final
// event: from its first state change to TCP_CLOSE where the eBPF tracker
// saw both, else from FirstSeen until end (the collection that found it
// gone). It is the one place a flow's age is computed.
func (f *Flow) Lifetime(end time.Time) time.Duration {
	if f.KernelLifetime > 0 {
		// The kernel saw the connection from its first state change to
		// TCP_CLOSE, which is earlier than the collection that reports it.
		return f.KernelLifetime
	}
	if f.FirstSeen.IsZero() || end.Before(f.FirstSeen) {
		return 0
	}
	return end.Sub(f.FirstSeen)
}

// EventDuration is the ECS event.duration of the flow's event: the
// flow's lifetime for a final event, else the period window.
func (f *Flow) EventDuration(ts time.Time, window time.Duration) time.Duration {
	if f.Final {
		return f.Lifetime(ts)
	}
	return window
}

// Key identifies a flow across collections.
type Key struct {
	Netns    uint64         `json:"netns"`
	Protocol uint8          `json:"iana_number"`
	Local    netip.AddrPort `json:"local"`
	Remote   netip.AddrPort `json:"remote"`
	Inode    uint32         `json:"inode"`
}

// Key returns the flow's identity.
func (f *Flow) Key() Key {
	return Key{Netns: f.Netns, Protocol: f.Protocol, Local: f.Local, Remote: f.Remote, Inode: f.Inode}
}

// indexKey is Key as plain memory: the collector's per-collection maps
// hold tens of thousands of flows, and a key with netip values (which
// carry a zone pointer) is hashed and compared field by field, while this
// one, without pointers or padding, is hashed and compared as one block
// of bytes. The address family is kept beside the 16-byte forms, so an
// IPv4 address and its IPv4-mapped IPv6 form stay different keys, as in
// Key.
type indexKey struct {
	netns         uint64
	local, remote [16]byte
	inode         uint32
	lport, rport  uint16
	// protocol and the families of both addresses, widened so that the
	// struct has no padding.
	proto uint64
}

func (f *Flow) indexKey() indexKey {
	k := indexKey{
		netns: f.Netns, inode: f.Inode,
		local: f.Local.Addr().As16(), remote: f.Remote.Addr().As16(),
		lport: f.Local.Port(), rport: f.Remote.Port(),
		proto: uint64(f.Protocol),
	}
	if f.Local.Addr().Is4() {
		k.proto |= 1 << 8
	}
	if f.Remote.Addr().Is4() {
		k.proto |= 1 << 9
	}
	if !f.Remote.IsValid() {
		k.proto |= 1 << 10
	}
	if !f.Local.IsValid() {
		k.proto |= 1 << 11
	}
	return k
}

// String is the series key of the flow's events:
// "netns/proto/local/remote/inode".
func (k Key) String() string {
	b := make([]byte, 0, 96)
	b = strconv.AppendUint(b, k.Netns, 10)
	b = append(b, '/')
	b = append(b, TransportName(k.Protocol)...)
	b = append(b, '/')
	b = k.Local.AppendTo(b)
	b = append(b, '/')
	b = k.Remote.AppendTo(b)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(k.Inode), 10)
	return string(b)
}

// BytesOut is the payload this side sent and the peer acknowledged:
// tcpi_bytes_acked less the sequence numbers of an acknowledged SYN (active
// opener) and FIN.
func (f *Flow) BytesOut() uint64 {
	n := f.TCP.BytesAcked
	if f.Direction == Outbound && f.State != stateSynSent {
		n = sub1(n)
	}
	if f.State == stateFinWait2 || f.State == stateTimeWait || f.FINAcked {
		n = sub1(n)
	}
	return n
}

// BytesIn is the payload received: tcpi_bytes_received less a received FIN.
func (f *Flow) BytesIn() uint64 {
	n := f.TCP.BytesReceived
	switch f.State {
	case stateCloseWait, stateLastAck, stateClosing, stateTimeWait:
		n = sub1(n)
	default:
		if f.FINReceived {
			n = sub1(n)
		}
	}
	return n
}

func sub1(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	return n - 1
}

// delta computes f's counters against prev, the same flow one period ago,
// or against zero when prev is nil (a flow born during the period).
func delta(f, prev *Flow) Delta {
	var d Delta
	if prev == nil {
		prev = &Flow{Direction: f.Direction, State: f.State}
	}
	d.BytesIn = diff(f.BytesIn(), prev.BytesIn())
	d.BytesOut = diff(f.BytesOut(), prev.BytesOut())
	// The segment counters are 32 bits wide (tcpi_segs_in, tcpi_segs_out,
	// tcpi_total_retrans): unsigned subtraction absorbs a wrap.
	d.SegsIn = uint64(f.TCP.SegsIn - prev.TCP.SegsIn)
	d.SegsOut = uint64(f.TCP.SegsOut - prev.TCP.SegsOut)
	d.Retrans = uint64(f.TCP.TotalRetrans - prev.TCP.TotalRetrans)
	return d
}

// diff never goes negative: the 64-bit byte counters of one socket only
// grow; a payload figure can shrink by the one sequence number of a SYN
// when the flow's direction changes (its listener went away), which is
// no traffic.
func diff(cur, prev uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	return 0
}

// FamilyName is "ipv4" or "ipv6", as ECS network.type names a family.
func FamilyName(f uint8) string {
	if f == afInet6 {
		return "ipv6"
	}
	return "ipv4"
}
