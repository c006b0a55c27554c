package tcplife

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Conn is one closed TCP connection as the tracepoint saw it at TCP_CLOSE.
type Conn struct {
	Cookie uint64 // socket cookie, as sock_diag's idiag_cookie
	Netns  uint32 // inode of the socket's network namespace
	// Inode is the socket's inode while a process held it; 0 when it was
	// never seen with a file (an unaccepted child, an old connection).
	Inode  uint32
	Family uint8 // AF_INET or AF_INET6
	Local  netip.AddrPort
	Remote netip.AddrPort
	// StartNs and EndNs are CLOCK_MONOTONIC nanoseconds of the first state
	// change and of TCP_CLOSE; StartNs is 0 when Flags lacks Started.
	StartNs, EndNs uint64
	Flags          Flags
	// OldState is the TCP state (linux/tcp_states.h) the socket left for
	// TCP_CLOSE.
	OldState uint8
	// TGID and Comm name the process: the caller of connect(2) (Active),
	// the owner of the listener (Listener), else 0 and "".
	TGID uint32
	Comm string

	// tcp_sock counters at close (include/linux/tcp.h).
	BytesAcked, BytesReceived     uint64
	SegsOut, SegsIn, TotalRetrans uint32
	SRTTMicros                    uint32
}

// Flags say what the program knew about a connection.
type Flags uint8

const (
	// Started: the first state change (SYN_SENT, SYN_RECV) was seen, so
	// StartNs is the connection's start.
	Started Flags = 1 << iota
	// Active: opened by connect(2) on this host.
	Active
	// Listener: a passive open; TGID owns the listener.
	Listener
	// FINAcked: our FIN was sent and acknowledged, so BytesAcked counts it.
	FINAcked
	// FINReceived: the peer's FIN arrived, so BytesReceived counts it.
	FINReceived
)

// PayloadOut is what this side sent and the peer acknowledged, without
// the sequence numbers of an acknowledged SYN (active opener: tcp_ack
// counts from the ISN) and FIN.
func (c *Conn) PayloadOut() uint64 {
	n := c.BytesAcked
	if c.Flags&Active != 0 && n > 0 {
		n--
	}
	if c.Flags&FINAcked != 0 && n > 0 {
		n--
	}
	return n
}

// PayloadIn is what the peer sent, without its FIN.
func (c *Conn) PayloadIn() uint64 {
	n := c.BytesReceived
	if c.Flags&FINReceived != 0 && n > 0 {
		n--
	}
	return n
}

// RecordSize is the size of struct closed_conn in bpf/tcplife.c.
const RecordSize = 128

// ErrRecord says a ring buffer record does not have the layout of struct
// closed_conn.
var ErrRecord = errors.New("tcplife: malformed record")

// ParseRecord decodes one ring buffer record (struct closed_conn, native
// byte order). Addresses of an AF_INET record are IPv4; a record of another
// family is an error, as is one of the wrong size.
func ParseRecord(b []byte) (Conn, error) {
	if len(b) < RecordSize {
		return Conn{}, fmt.Errorf("%w: %d bytes, want %d", ErrRecord, len(b), RecordSize)
	}
	ne := binary.NativeEndian
	c := Conn{
		Cookie:        ne.Uint64(b[0:]),
		StartNs:       ne.Uint64(b[8:]),
		EndNs:         ne.Uint64(b[16:]),
		BytesAcked:    ne.Uint64(b[24:]),
		BytesReceived: ne.Uint64(b[32:]),
		SegsOut:       ne.Uint32(b[40:]),
		SegsIn:        ne.Uint32(b[44:]),
		TotalRetrans:  ne.Uint32(b[48:]),
		SRTTMicros:    ne.Uint32(b[52:]),
		TGID:          ne.Uint32(b[56:]),
		Netns:         ne.Uint32(b[60:]),
		Inode:         ne.Uint32(b[64:]),
		Family:        b[104],
		OldState:      b[105],
		Flags:         Flags(b[106]),
	}
	sport, dport := ne.Uint16(b[68:]), ne.Uint16(b[70:])
	switch c.Family {
	case afInet:
		c.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[72:76])), sport)
		c.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[88:92])), dport)
	case afInet6:
		c.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[72:88])), sport)
		c.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[88:104])), dport)
	default:
		return Conn{}, fmt.Errorf("%w: address family %d", ErrRecord, c.Family)
	}
	if c.Flags&Started == 0 {
		c.StartNs = 0
	} else if c.StartNs > c.EndNs {
		return Conn{}, fmt.Errorf("%w: starts at %d ns after its close at %d ns", ErrRecord, c.StartNs, c.EndNs)
	}
	c.Comm = commString(b[108:124])
	return c, nil
}

// commString is a task comm (TASK_COMM_LEN bytes, NUL-terminated unless
// full).
func commString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

const (
	afInet  = 2
	afInet6 = 10
)

// ErrNotSupported is returned by Open where the program cannot run: not
// Linux, or a kernel without BTF, tp_btf or ring buffers. Open wraps it
// with the kernel's reason.
var ErrNotSupported = errors.New("tcplife: eBPF connection tracking not supported")

// Owner is what the program knows about a connection that is still open.
type Owner struct {
	TGID    uint32 // 0 when unknown
	Comm    string
	Inode   uint32
	StartNs uint64 // CLOCK_MONOTONIC; 0 when Flags lacks Started
	Flags   Flags
}

// Stats count what was lost since Open.
type Stats struct {
	// RingFull: closed connections the kernel could not queue.
	RingFull uint64
	// MapFull: connections not tracked because the map was full; their
	// close is still reported, without process or start.
	MapFull uint64
	// PendingFull: closed connections dropped because user space held
	// MaxPending of them already.
	PendingFull uint64
	// BadRecords: records that did not decode.
	BadRecords uint64
}

// Options configure a Tracker.
type Options struct {
	// MaxConnections is how many open connections the kernel map holds
	// (DefaultMaxConnections when 0); more are counted in Stats.MapFull.
	MaxConnections int
	// MaxPending is how many closed connections are held between two
	// Drains (DefaultMaxPending when 0); more are counted in
	// Stats.PendingFull.
	MaxPending int
}

// Defaults of Options.
const (
	DefaultMaxConnections = 65536
	DefaultMaxPending     = 1 << 18
)
