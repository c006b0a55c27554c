package sockdiag

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
)

// Sentinel errors, for errors.Is: package netlink's, which frames the
// dumps.
var (
	// ErrMalformed marks kernel data that does not parse: a length that
	// runs past its buffer, a message shorter than its fixed header.
	ErrMalformed = netlink.ErrMalformed
	// ErrDumpIncomplete marks a dump that lost messages (ENOBUFS,
	// NLMSG_OVERRUN, a truncated read): the sockets passed to the callback
	// were real, but some are missing.
	ErrDumpIncomplete = netlink.ErrDumpIncomplete
	// ErrDumpInterrupted marks a dump the kernel flagged NLM_F_DUMP_INTR:
	// the socket tables changed under it, so the set may be inconsistent.
	ErrDumpInterrupted = netlink.ErrDumpInterrupted
)

// Constants from linux/sock_diag.h and linux/inet_diag.h, kept here so the
// parser builds (and fuzzes) on any OS.
const (
	sockDiagByFamily = 20

	inetDiagMsgLen = 72 // struct inet_diag_msg
	inetDiagReqLen = 56 // struct inet_diag_req_v2

	nlaHdrLen   = 4
	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER

	attrMemInfo   = 1 // INET_DIAG_MEMINFO
	attrInfo      = 2 // INET_DIAG_INFO
	attrCong      = 4 // INET_DIAG_CONG
	attrSkMemInfo = 7 // INET_DIAG_SKMEMINFO

	// Linux values, independent of the OS the parser is built for.
	afInet      = 2
	afInet6     = 10
	ipprotoTCP  = 6
	ipprotoUDP  = 17
	maxInterned = 32
)

var (
	ne = binary.NativeEndian // netlink is host byte order
	be = binary.BigEndian    // ports and addresses are network byte order

	// littleEndian decides the layout of tcp_info's bitfields, which C
	// compilers allocate from the low bit on little-endian targets and from
	// the high bit on big-endian ones.
	littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
)

func align4(n int) int { return (n + 3) &^ 3 }

// Parser decodes SOCK_DIAG_BY_FAMILY replies in place: the Socket passed to
// the callback is the parser's own, overwritten by the next message, and
// congestion names are interned, so decoding allocates nothing per socket.
// The zero value is ready; a Parser is not safe for concurrent use.
type Parser struct {
	// Protocol is copied to every Socket and decides how INET_DIAG_INFO is
	// read: struct inet_diag_msg does not carry the protocol (the kernel
	// adds INET_DIAG_PROTOCOL for raw sockets only), the request does.
	Protocol uint8

	sock     Socket
	cong     []string
	f        netlink.Framer // NLM_F_DUMP_INTR across Parse calls
	fnFailed bool           // the last parse stopped on an error from fn
}

// ParseMessages decodes a buffer of netlink messages as received from a
// NETLINK_SOCK_DIAG dump of protocol (unix.IPPROTO_TCP, ...) and calls fn for
// each socket. done reports that the end of the dump (NLMSG_DONE or
// NLMSG_ERROR) was reached; an error from fn stops decoding and is returned
// unchanged. Truncated or garbage data yields an error wrapping ErrMalformed.
func ParseMessages(b []byte, protocol uint8, fn func(*Socket) error) (done bool, err error) {
	p := Parser{Protocol: protocol}
	return p.Parse(b, fn)
}

// Parse is ParseMessages on a reusable Parser.
func (p *Parser) Parse(b []byte, fn func(*Socket) error) (done bool, err error) {
	done, err = p.parse(b, 0, fn)
	if err != nil && !p.fnFailed {
		err = fmt.Errorf("sockdiag: parse: %w", err)
	}
	return done, err
}

// parse skips messages whose sequence number is not seq (when seq is not 0),
// so stale replies of an abandoned dump never reach fn. A nil fn only looks
// for the end of the dump. It steps through the messages with Framer.Next
// rather than Walk: a callback per message, one more indirect call, made
// BenchmarkDump/parse ~7 ns (~9%) slower per socket.
func (p *Parser) parse(b []byte, seq uint32, fn func(*Socket) error) (done bool, err error) {
	p.fnFailed = false
	f := &p.f
	f.Reset(b, seq)
	for f.Next() {
		if fn == nil {
			continue
		}
		if err := p.message(f.Type, f.Payload, fn); err != nil {
			return false, err
		}
	}
	return f.Done(), f.Err()
}

// message decodes one netlink message of a dump and passes its socket to
// fn. Types other than SOCK_DIAG_BY_FAMILY, which a newer kernel may add,
// carry no socket.
func (p *Parser) message(typ uint16, payload []byte, fn func(*Socket) error) error {
	if typ != sockDiagByFamily {
		return nil
	}
	if err := p.decode(payload); err != nil {
		return err
	}
	if err := fn(&p.sock); err != nil {
		p.fnFailed = true
		return err
	}
	return nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// decode fills p.sock from a struct inet_diag_msg and its attributes.
func (p *Parser) decode(m []byte) error {
	if len(m) < inetDiagMsgLen {
		return malformed("inet_diag_msg of %d bytes, want %d", len(m), inetDiagMsgLen)
	}
	s := &p.sock
	*s = Socket{
		Family:    m[0],
		Protocol:  p.Protocol,
		State:     m[1],
		Timer:     m[2],
		Retrans:   m[3],
		Interface: ne.Uint32(m[40:44]),
		// sock_diag_save_cookie stores the low half first.
		Cookie:  uint64(ne.Uint32(m[44:48])) | uint64(ne.Uint32(m[48:52]))<<32,
		Expires: ne.Uint32(m[52:56]),
		RQueue:  ne.Uint32(m[56:60]),
		WQueue:  ne.Uint32(m[60:64]),
		UID:     ne.Uint32(m[64:68]),
		Inode:   ne.Uint32(m[68:72]),
	}
	// struct inet_diag_sockid: sport, dport, src[4], dst[4] (__be32 each).
	sport, dport := be.Uint16(m[4:6]), be.Uint16(m[6:8])
	switch m[0] {
	case afInet:
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(m[8:12])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(m[24:28])), dport)
	case afInet6:
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(m[8:24])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(m[24:40])), dport)
	default:
		return malformed("inet_diag_msg family %d", m[0])
	}

	for a := m[inetDiagMsgLen:]; len(a) > 0; {
		if len(a) < nlaHdrLen {
			return malformed("%d trailing attribute bytes", len(a))
		}
		l := int(ne.Uint16(a[0:2]))
		if l < nlaHdrLen || l > len(a) {
			return malformed("attribute of length %d, %d bytes left", l, len(a))
		}
		v := a[nlaHdrLen:l]
		switch ne.Uint16(a[2:4]) & nlaTypeMask {
		case attrInfo:
			if p.Protocol == ipprotoTCP {
				parseTCPInfo(v, &s.TCPInfo)
				s.HasTCPInfo = true
			}
		case attrCong:
			s.Congestion = p.intern(cstring(v))
		case attrSkMemInfo:
			parseSkMemInfo(v, &s.Mem)
			s.HasMem = true
		case attrMemInfo:
			s.MemInfo = MemInfo{Rmem: u32(v, 0), Wmem: u32(v, 4), Fmem: u32(v, 8), Tmem: u32(v, 12)}
			s.HasMemInfo = true
		}
		a = a[min(align4(l), len(a)):]
	}
	return nil
}

// cstring cuts a NUL-terminated attribute string.
func cstring(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// intern returns a string equal to b, allocated once per distinct name; the
// table is bounded so garbage names cannot grow it without limit.
func (p *Parser) intern(b []byte) string {
	for _, s := range p.cong {
		if s == string(b) { // compiled without a conversion allocation
			return s
		}
	}
	s := string(b)
	if len(p.cong) < maxInterned {
		p.cong = append(p.cong, s)
	}
	return s
}

// u32 and u64 read a field at off if the kernel's struct reached it: the
// struct grows at its end from one kernel release to the next, and older
// kernels send a shorter one.
func u32(b []byte, off int) uint32 {
	if off+4 > len(b) {
		return 0
	}
	return ne.Uint32(b[off:])
}

func u64(b []byte, off int) uint64 {
	if off+8 > len(b) {
		return 0
	}
	return ne.Uint64(b[off:])
}

func u16(b []byte, off int) uint32 {
	if off+2 > len(b) {
		return 0
	}
	return uint32(ne.Uint16(b[off:]))
}

func u8(b []byte, off int) uint8 {
	if off >= len(b) {
		return 0
	}
	return b[off]
}

// parseSkMemInfo reads the u32 array indexed by SK_MEMINFO_*
// (linux/sock_diag.h).
func parseSkMemInfo(b []byte, m *SkMemInfo) {
	*m = SkMemInfo{
		RmemAlloc:  u32(b, 0),
		Rcvbuf:     u32(b, 4),
		WmemAlloc:  u32(b, 8),
		Sndbuf:     u32(b, 12),
		FwdAlloc:   u32(b, 16),
		WmemQueued: u32(b, 20),
		Optmem:     u32(b, 24),
		Backlog:    u32(b, 28),
		Drops:      u32(b, 32),
	}
}

// parseTCPInfo reads struct tcp_info (linux/tcp.h) at the offsets of its
// uapi layout, each field only if present.
func parseTCPInfo(b []byte, t *TCPInfo) {
	wscale, flags := u8(b, 6), u8(b, 7)
	var snd, rcv uint8
	var appLimited bool
	if littleEndian {
		snd, rcv, appLimited = wscale&0xf, wscale>>4, flags&1 != 0
	} else {
		snd, rcv, appLimited = wscale>>4, wscale&0xf, flags&0x80 != 0
	}
	*t = TCPInfo{
		Len:                    len(b),
		State:                  u8(b, 0),
		CAState:                u8(b, 1),
		Retransmits:            u8(b, 2),
		Probes:                 u8(b, 3),
		Backoff:                u8(b, 4),
		Options:                u8(b, 5),
		SndWScale:              snd,
		RcvWScale:              rcv,
		DeliveryRateAppLimited: appLimited,

		RTO:    u32(b, 8),
		ATO:    u32(b, 12),
		SndMSS: u32(b, 16),
		RcvMSS: u32(b, 20),

		Unacked: u32(b, 24),
		Sacked:  u32(b, 28),
		Lost:    u32(b, 32),
		Retrans: u32(b, 36),
		Fackets: u32(b, 40),

		LastDataSent: u32(b, 44),
		LastAckSent:  u32(b, 48),
		LastDataRecv: u32(b, 52),
		LastAckRecv:  u32(b, 56),

		PMTU:        u32(b, 60),
		RcvSsthresh: u32(b, 64),
		RTT:         u32(b, 68),
		RTTVar:      u32(b, 72),
		SndSsthresh: u32(b, 76),
		SndCwnd:     u32(b, 80),
		AdvMSS:      u32(b, 84),
		Reordering:  u32(b, 88),

		RcvRTT:       u32(b, 92),
		RcvSpace:     u32(b, 96),
		TotalRetrans: u32(b, 100),

		PacingRate:    u64(b, 104),
		MaxPacingRate: u64(b, 112),
		BytesAcked:    u64(b, 120),
		BytesReceived: u64(b, 128),
		SegsOut:       u32(b, 136),
		SegsIn:        u32(b, 140),

		NotsentBytes: u32(b, 144),
		MinRTT:       u32(b, 148),
		DataSegsIn:   u32(b, 152),
		DataSegsOut:  u32(b, 156),

		DeliveryRate: u64(b, 160),

		BusyTime:      u64(b, 168),
		RwndLimited:   u64(b, 176),
		SndbufLimited: u64(b, 184),

		Delivered:   u32(b, 192),
		DeliveredCE: u32(b, 196),

		BytesSent:    u64(b, 200),
		BytesRetrans: u64(b, 208),
		DSackDups:    u32(b, 216),
		ReordSeen:    u32(b, 220),

		RcvOOOPack: u32(b, 224),
		SndWnd:     u32(b, 228),
		RcvWnd:     u32(b, 232),
		Rehash:     u32(b, 236),

		// __u16 tcpi_total_rto, tcpi_total_rto_recoveries (Linux 6.7).
		TotalRTO:           u16(b, 240),
		TotalRTORecoveries: u16(b, 242),
		TotalRTOTime:       u32(b, 244),
	}
}
