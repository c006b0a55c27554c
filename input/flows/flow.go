package flows

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/procindex"
)

// Protocol numbers (IANA) and address families (linux/socket.h) as the
// kernel reports them in inet_diag_msg.
const (
	protoTCP = 6
	protoUDP = 17
	afInet   = 2
	afInet6  = 10
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

// TCPInfo is the part of struct tcp_info (linux/tcp.h) that flows report.
// Rates are in bytes per second as the kernel gives them; the event
// conversion turns them into bits per second.
type TCPInfo struct {
	RTTMicros, RTTVarMicros, MinRTTMicros uint32
	Cwnd, Ssthresh, MSS                   uint32
	SegsIn, SegsOut, TotalRetrans, Lost   uint32
	NotsentBytes                          uint32
	BytesAcked, BytesReceived             uint64
	BytesSent, BytesRetrans               uint64
	DeliveryRate, PacingRate              uint64 // bytes/s
	// Len is how many bytes of struct tcp_info the kernel sent: fields
	// past it are absent (older kernels send a shorter struct), not 0.
	// 0 means unknown: every field is reported.
	Len int
}

// has reports whether the kernel's tcp_info reaches byte end.
func (t *TCPInfo) has(end int) bool { return t.Len == 0 || end <= t.Len }

// BDPBytes is delivery rate × min RTT (see the package doc).
func (t *TCPInfo) BDPBytes() uint64 {
	return t.DeliveryRate * uint64(t.MinRTTMicros) / 1e6
}

// Delta is the change of a flow's counters over one period. Bytes are
// payload bytes (see the package doc); Retrans counts segments.
type Delta struct {
	BytesIn, BytesOut, SegsIn, SegsOut, Retrans uint64
}

// Flow is one socket as seen in one collection.
type Flow struct {
	Netns     uint64 // inode of the network namespace
	NetnsName string // name under /run/netns, if any
	Family    uint8  // AF_INET or AF_INET6
	Protocol  uint8  // IPPROTO_TCP or IPPROTO_UDP
	State     uint8  // linux/tcp_states.h
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Inode     uint32
	UID       uint32
	Direction Direction
	// Cookie is the socket cookie (idiag_cookie), which the eBPF tracker
	// keys connections by.
	Cookie uint64

	// Process owns the socket when the /proc walk found it; nil for sockets
	// without a live owner (TIME-WAIT, orphans, a process that just exited).
	Process *procindex.Process

	HasTCP     bool
	TCP        TCPInfo
	Congestion string

	// HasDelta is false for flows present at the first collection of their
	// namespace and for final flows.
	HasDelta bool
	Delta    Delta

	// Final marks the last report of a flow that has disappeared. Without
	// the eBPF tracker it carries the values of the last collection that
	// saw it; with it, the counters the kernel had at TCP_CLOSE (State is
	// then close) and the delta since the last report.
	Final bool
	// FirstSeen is when the flow began as far as the agent knows: the
	// collection that first saw it.
	FirstSeen time.Time
	// kernelLifetime is, for a final flow whose close the tracker saw, the
	// time from its first state change to TCP_CLOSE; 0 when unknown.
	kernelLifetime time.Duration
	// Closed is set when the flow was born and closed between two
	// collections, so no snapshot ever showed it.
	Closed bool

	// finAcked and finReceived say whether the close-time counters include
	// a FIN's sequence number (see tcplife.Flags).
	finAcked, finReceived bool
	// commOnly: Process has only the pid and comm the tracker saw (the
	// process exited before /proc could be read), so no user is known.
	commOnly bool
}

// Lifetime is how long the flow lived, the event.duration of its final
// event: from its first state change to TCP_CLOSE where the eBPF tracker
// saw both, else from FirstSeen until end (the collection that found it
// gone). It is the one place a flow's age is computed.
func (f *Flow) Lifetime(end time.Time) time.Duration {
	if f.kernelLifetime > 0 {
		// The kernel saw the connection from its first state change to
		// TCP_CLOSE, which is earlier than the collection that reports it.
		return f.kernelLifetime
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
	Netns    uint64
	Protocol uint8
	Local    netip.AddrPort
	Remote   netip.AddrPort
	Inode    uint32
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
	if f.State == stateFinWait2 || f.State == stateTimeWait || f.finAcked {
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
		if f.finReceived {
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

func familyName(f uint8) string {
	if f == afInet6 {
		return "ipv6"
	}
	return "ipv4"
}
