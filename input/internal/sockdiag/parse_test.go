package sockdiag

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
)

var update = flag.Bool("update", false, "capture testdata/*.bin from the running kernel (Linux, root) and rewrite testdata/*.golden.json")

// Linux numbers, spelled out so these tests build on any OS.
const (
	tcp = ipprotoTCP
	udp = ipprotoUDP
)

type wantSocket struct {
	family, state uint8
	local, remote string
	bytesAcked    uint64 // only checked for established TCP sockets
	bytesReceived uint64
	bytesSent     uint64
	tcpInfo       bool
	congestion    string
}

// The fixtures were captured by TestCaptureFixtures: one listener and one
// connection per TCP family after 1 MiB client->server and 64 KiB back, and
// an unconnected plus a connected UDP socket. The client's bytes_acked is one
// more than it sent because the peer's acknowledgement of the SYN advances
// snd_una by one (tcp_snd_una_update in net/ipv4/tcp_input.c); the server's
// child socket starts with snd_una past its SYN-ACK (tcp_create_openreq_child),
// and bytes_received never counts SYN or FIN.
var fixtureWant = map[string][]wantSocket{
	"tcp4": {
		{family: afInet, state: TCP_LISTEN, local: "127.0.0.1:8080", remote: "0.0.0.0:0", tcpInfo: true, congestion: "reno"},
		{family: afInet, state: TCP_ESTABLISHED, local: "127.0.0.1:8080", remote: "127.0.0.1:40000", tcpInfo: true, congestion: "reno",
			bytesAcked: 64 << 10, bytesReceived: 1 << 20, bytesSent: 64 << 10},
		{family: afInet, state: TCP_ESTABLISHED, local: "127.0.0.1:40000", remote: "127.0.0.1:8080", tcpInfo: true, congestion: "reno",
			bytesAcked: 1<<20 + 1, bytesReceived: 64 << 10, bytesSent: 1 << 20},
	},
	"tcp6": {
		{family: afInet6, state: TCP_LISTEN, local: "[::1]:8080", remote: "[::]:0", tcpInfo: true, congestion: "reno"},
		{family: afInet6, state: TCP_ESTABLISHED, local: "[::1]:8080", remote: "[::1]:40001", tcpInfo: true, congestion: "reno",
			bytesAcked: 64 << 10, bytesReceived: 1 << 20, bytesSent: 64 << 10},
		{family: afInet6, state: TCP_ESTABLISHED, local: "[::1]:40001", remote: "[::1]:8080", tcpInfo: true, congestion: "reno",
			bytesAcked: 1<<20 + 1, bytesReceived: 64 << 10, bytesSent: 1 << 20},
	},
	"udp4": {
		{family: afInet, state: TCP_CLOSE, local: "127.0.0.1:5353", remote: "0.0.0.0:0"},
		{family: afInet, state: TCP_ESTABLISHED, local: "127.0.0.1:40002", remote: "127.0.0.1:5353"},
	},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	if !littleEndian {
		t.Skip("fixtures hold a little-endian host's netlink data")
	}
	b, err := os.ReadFile(filepath.Join("testdata", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixturesDecodeExactValues(t *testing.T) {
	for _, name := range []string{"tcp4", "tcp6", "udp4"} {
		t.Run(name, func(t *testing.T) {
			proto := uint8(tcp)
			if name == "udp4" {
				proto = udp
			}
			var got []Socket
			done, err := ParseMessages(readFixture(t, name), proto, func(s *Socket) error {
				got = append(got, *s)
				return nil
			})
			if err != nil || !done {
				t.Fatalf("ParseMessages = %v, %v; want done, nil", done, err)
			}
			want := fixtureWant[name]
			if len(got) != len(want) {
				t.Fatalf("got %d sockets, want %d", len(got), len(want))
			}
			for _, w := range want {
				s := findSocket(t, got, w.local, w.remote)
				if s.Family != w.family || s.State != w.state || s.Protocol != proto {
					t.Errorf("%s: family/state/protocol = %d/%d/%d, want %d/%d/%d", w.local, s.Family, s.State, s.Protocol, w.family, w.state, proto)
				}
				if s.Inode == 0 || s.Cookie == 0 {
					t.Errorf("%s: inode %d cookie %d, want both set", w.local, s.Inode, s.Cookie)
				}
				if !s.HasMem || s.Mem.Rcvbuf == 0 || s.Mem.Sndbuf == 0 {
					t.Errorf("%s: skmeminfo %v %+v, want rcvbuf and sndbuf", w.local, s.HasMem, s.Mem)
				}
				if s.HasTCPInfo != w.tcpInfo || s.Congestion != w.congestion {
					t.Errorf("%s: tcp_info %v congestion %q, want %v %q", w.local, s.HasTCPInfo, s.Congestion, w.tcpInfo, w.congestion)
				}
				if !w.tcpInfo {
					continue
				}
				ti := s.TCPInfo
				// Linux 6.18 sends 280 bytes of tcp_info (AccECN counters
				// after tcpi_total_rto_time).
				if ti.Len != 280 || ti.State != w.state {
					t.Errorf("%s: tcp_info len %d state %d, want 280 %d", w.local, ti.Len, ti.State, w.state)
				}
				if w.state != TCP_ESTABLISHED {
					continue
				}
				if ti.BytesAcked != w.bytesAcked || ti.BytesReceived != w.bytesReceived || ti.BytesSent != w.bytesSent {
					t.Errorf("%s: bytes acked/received/sent = %d/%d/%d, want %d/%d/%d", w.local,
						ti.BytesAcked, ti.BytesReceived, ti.BytesSent, w.bytesAcked, w.bytesReceived, w.bytesSent)
				}
				// lo has MTU 65536; IPv4 caps the path MTU at IP_MAX_MTU
				// (0xFFFF, a 16-bit total length), IPv6 does not.
				wantPMTU := uint32(65536)
				if w.family == afInet {
					wantPMTU = 65535
				}
				if ti.PMTU != wantPMTU || ti.RTT == 0 || ti.SndCwnd == 0 || ti.Unacked != 0 {
					t.Errorf("%s: pmtu %d rtt %d cwnd %d unacked %d, want pmtu %d", w.local, ti.PMTU, ti.RTT, ti.SndCwnd, ti.Unacked, wantPMTU)
				}
			}
			checkGolden(t, name, got)
		})
	}
}

func findSocket(t *testing.T, socks []Socket, local, remote string) Socket {
	t.Helper()
	l, r := netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)
	for _, s := range socks {
		if s.Local == l && s.Remote == r {
			return s
		}
	}
	t.Fatalf("no socket %s -> %s", local, remote)
	return Socket{}
}

// checkGolden compares every decoded field with testdata/NAME.golden.json,
// so a change in any offset shows up, not only in the fields asserted above.
func checkGolden(t *testing.T, name string, got []Socket) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("decoded %s differs from %s:\n%s", name, path, b)
	}
}

func TestParseReusedParserAllocatesNothing(t *testing.T) {
	raw := readFixture(t, "tcp4")
	var p Parser
	p.Protocol = tcp
	n := 0
	fn := func(s *Socket) error { n++; return nil }
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := p.Parse(raw, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %.1f times per buffer, want 0", allocs)
	}
	if n != 3*101 {
		t.Errorf("callback ran %d times, want %d", n, 3*101)
	}
}

func TestParseInternsCongestionNames(t *testing.T) {
	var ptrs []*byte
	_, err := ParseMessages(readFixture(t, "tcp4"), tcp, func(s *Socket) error {
		ptrs = append(ptrs, unsafe.StringData(s.Congestion))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ptrs) != 3 || ptrs[0] != ptrs[1] || ptrs[1] != ptrs[2] {
		t.Errorf("congestion names not shared: %v", ptrs)
	}
}

// Builders for hand-made messages.

func nlmsg(typ, flags uint16, seq uint32, payload []byte) []byte {
	b := ne.AppendUint32(nil, uint32(netlink.HdrLen+len(payload)))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, flags)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func attr(typ uint16, v []byte) []byte {
	b := ne.AppendUint16(nil, uint16(nlaHdrLen+len(v)))
	b = ne.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// diagMsg is a struct inet_diag_msg for 10.0.0.1:80 -> 10.0.0.2:4242,
// inode 77, followed by attrs.
func diagMsg(family uint8, attrs ...[]byte) []byte {
	m := make([]byte, inetDiagMsgLen)
	m[0], m[1] = family, TCP_ESTABLISHED
	be.PutUint16(m[4:], 80)
	be.PutUint16(m[6:], 4242)
	copy(m[8:], []byte{10, 0, 0, 1})
	copy(m[24:], []byte{10, 0, 0, 2})
	ne.PutUint32(m[44:], 0xdeadbeef)
	ne.PutUint32(m[48:], 0x1)
	ne.PutUint32(m[68:], 77)
	for _, a := range attrs {
		m = append(m, a...)
	}
	return m
}

func errnoPayload(e syscall.Errno) []byte {
	return ne.AppendUint32(nil, uint32(-int32(e)))
}

// tcpInfoBytes is a tcp_info of n bytes with a recognisable value in every
// field it reaches.
func tcpInfoBytes(n int) []byte {
	b := make([]byte, n)
	b[0] = TCP_ESTABLISHED
	b[6] = 7 | 9<<4 // snd_wscale 7, rcv_wscale 9 (little-endian bitfields)
	b[7] = 1
	put32 := func(off int, v uint32) {
		if off+4 <= n {
			ne.PutUint32(b[off:], v)
		}
	}
	put64 := func(off int, v uint64) {
		if off+8 <= n {
			ne.PutUint64(b[off:], v)
		}
	}
	put32(68, 1234)     // rtt
	put32(100, 5)       // total_retrans
	put64(120, 1000001) // bytes_acked
	put64(128, 2000000) // bytes_received
	put32(228, 65535)   // snd_wnd
	put32(244, 42)      // total_rto_time
	return b
}

func TestParseMessages(t *testing.T) {
	done := nlmsg(netlink.TypeDone, netlink.FlagMulti, 1, ne.AppendUint32(nil, 0))
	cases := []struct {
		name     string
		in       []byte
		proto    uint8
		wantN    int
		wantDone bool
		wantErr  error // checked with errors.Is
		check    func(t *testing.T, s *Socket)
	}{
		{
			name: "header fields and addresses", proto: tcp, wantN: 1, wantDone: true,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet)), done...),
			check: func(t *testing.T, s *Socket) {
				if s.Local != netip.MustParseAddrPort("10.0.0.1:80") || s.Remote != netip.MustParseAddrPort("10.0.0.2:4242") ||
					s.Inode != 77 || s.Cookie != 0x1deadbeef || s.State != TCP_ESTABLISHED || s.Protocol != tcp || s.HasTCPInfo {
					t.Errorf("got %+v", s)
				}
			},
		},
		{
			name: "short tcp_info of an old kernel leaves newer fields zero", proto: tcp, wantN: 1, wantDone: true,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet, attr(attrInfo, tcpInfoBytes(104)))), done...),
			check: func(t *testing.T, s *Socket) {
				ti := s.TCPInfo
				if !s.HasTCPInfo || ti.Len != 104 || ti.RTT != 1234 || ti.TotalRetrans != 5 || ti.BytesAcked != 0 || ti.PacingRate != 0 {
					t.Errorf("got %+v", ti)
				}
			},
		},
		{
			name: "tcp_info cut inside a u64 drops the partial field", proto: tcp, wantN: 1, wantDone: true,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet, attr(attrInfo, tcpInfoBytes(124)))), done...),
			check: func(t *testing.T, s *Socket) {
				if s.TCPInfo.Len != 124 || s.TCPInfo.BytesAcked != 0 || s.TCPInfo.TotalRetrans != 5 {
					t.Errorf("got %+v", s.TCPInfo)
				}
			},
		},
		{
			name: "longer tcp_info of a newer kernel is read up to what we know", proto: tcp, wantN: 1, wantDone: true,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet, attr(attrInfo, tcpInfoBytes(400)))), done...),
			check: func(t *testing.T, s *Socket) {
				ti := s.TCPInfo
				if ti.Len != 400 || ti.BytesAcked != 1000001 || ti.BytesReceived != 2000000 || ti.SndWnd != 65535 ||
					ti.TotalRTOTime != 42 || (littleEndian && (ti.SndWScale != 7 || ti.RcvWScale != 9 || !ti.DeliveryRateAppLimited)) {
					t.Errorf("got %+v", ti)
				}
			},
		},
		{
			name: "INET_DIAG_INFO on UDP is not read as tcp_info", proto: udp, wantN: 1, wantDone: true,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet, attr(attrInfo, tcpInfoBytes(248)))), done...),
			check: func(t *testing.T, s *Socket) {
				if s.HasTCPInfo || s.Protocol != udp {
					t.Errorf("got %+v", s)
				}
			},
		},
		{
			name: "congestion, skmeminfo, meminfo and flagged or unknown attributes", proto: tcp, wantN: 1, wantDone: true,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet,
				attr(attrCong, []byte("reno\x00")),
				attr(attrSkMemInfo, []byte{1, 0, 0, 0, 2, 0, 0, 0}),
				attr(attrMemInfo|0x8000, make([]byte, 16)),
				attr(99, []byte{1, 2, 3}),
			)), done...),
			check: func(t *testing.T, s *Socket) {
				if s.Congestion != "reno" || !s.HasMem || (littleEndian && (s.Mem.RmemAlloc != 1 || s.Mem.Rcvbuf != 2)) || s.Mem.Sndbuf != 0 || !s.HasMemInfo {
					t.Errorf("got %+v", s)
				}
			},
		},
		{
			name: "IPv6 addresses", proto: tcp, wantN: 1, wantDone: true,
			in: func() []byte {
				m := diagMsg(afInet6)
				copy(m[8:24], netip.MustParseAddr("2001:db8::1").AsSlice())
				copy(m[24:40], netip.MustParseAddr("::ffff:10.1.2.3").AsSlice())
				return append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, m), done...)
			}(),
			check: func(t *testing.T, s *Socket) {
				if s.Local != netip.MustParseAddrPort("[2001:db8::1]:80") || s.Remote != netip.MustParseAddrPort("[::ffff:10.1.2.3]:4242") {
					t.Errorf("got %v -> %v", s.Local, s.Remote)
				}
			},
		},
		{
			name: "multi-part without NLMSG_DONE is not done", proto: tcp, wantN: 2,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet)), nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet))...),
		},
		{
			name: "NOOP and unknown message types are skipped", proto: tcp, wantN: 0, wantDone: true,
			in: append(append(nlmsg(netlink.TypeNoop, 0, 1, nil), nlmsg(77, 0, 1, []byte{1, 2, 3, 4})...), done...),
		},
		{
			name: "NLMSG_ERROR carries the errno", proto: tcp, wantDone: true, wantErr: syscall.EPERM,
			in: nlmsg(netlink.TypeError, 0, 1, append(errnoPayload(syscall.EPERM), make([]byte, 16)...)),
		},
		{
			name: "NLMSG_ERROR ENOBUFS says the dump is incomplete", proto: tcp, wantDone: true, wantErr: ErrDumpIncomplete,
			in: nlmsg(netlink.TypeError, 0, 1, errnoPayload(syscall.ENOBUFS)),
		},
		{
			name: "NLMSG_ERROR 0 is an acknowledgement", proto: tcp, wantDone: true,
			in: nlmsg(netlink.TypeError, 0, 1, make([]byte, 20)),
		},
		{
			name: "NLMSG_DONE with a negative status", proto: tcp, wantDone: true, wantErr: syscall.EINTR,
			in: nlmsg(netlink.TypeDone, netlink.FlagMulti, 1, errnoPayload(syscall.EINTR)),
		},
		{
			name: "NLMSG_OVERRUN", proto: tcp, wantDone: true, wantErr: ErrDumpIncomplete,
			in: nlmsg(netlink.TypeOverrun, 0, 1, nil),
		},
		{
			name: "NLM_F_DUMP_INTR is reported at the end", proto: tcp, wantN: 1, wantDone: true, wantErr: ErrDumpInterrupted,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti|netlink.FlagDumpIntr, 1, diagMsg(afInet)), done...),
		},
		{
			name: "message length past the buffer", proto: tcp, wantErr: ErrMalformed,
			in: nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet))[:60],
		},
		{
			name: "message length below the header", proto: tcp, wantErr: ErrMalformed,
			in: func() []byte { b := nlmsg(netlink.TypeDone, 0, 1, nil); ne.PutUint32(b, 8); return b }(),
		},
		{
			name: "trailing bytes shorter than a header", proto: tcp, wantN: 1, wantErr: ErrMalformed,
			in: append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet)), 1, 2, 3),
		},
		{
			name: "inet_diag_msg too short", proto: tcp, wantErr: ErrMalformed,
			in: nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, make([]byte, 40)),
		},
		{
			name: "unknown address family", proto: tcp, wantErr: ErrMalformed,
			in: nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(1)),
		},
		{
			name: "attribute length below its header", proto: tcp, wantErr: ErrMalformed,
			in: nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet, []byte{2, 0, 2, 0})),
		},
		{
			name: "attribute length past the message", proto: tcp, wantErr: ErrMalformed,
			in: nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet, []byte{200, 0, 2, 0, 1, 2, 3, 4})),
		},
		{
			name: "trailing attribute bytes", proto: tcp, wantErr: ErrMalformed,
			in: nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet, []byte{1, 2})),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			done, err := ParseMessages(c.in, c.proto, func(s *Socket) error {
				n++
				if c.check != nil {
					c.check(t, s)
				}
				return nil
			})
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
			if done != c.wantDone || n != c.wantN {
				t.Errorf("done %v after %d sockets, want %v after %d", done, n, c.wantDone, c.wantN)
			}
		})
	}
}

func TestParseStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	done, err := ParseMessages(readFixture(t, "tcp4"), tcp, func(*Socket) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || done || n != 2 {
		t.Errorf("got done %v err %v after %d sockets, want false, stop, 2", done, err, n)
	}
}

func TestParseSkipsOtherSequenceNumbers(t *testing.T) {
	in := append(nlmsg(sockDiagByFamily, netlink.FlagMulti, 6, diagMsg(afInet)), nlmsg(netlink.TypeDone, netlink.FlagMulti, 6, nil)...)
	in = append(in, nlmsg(sockDiagByFamily, netlink.FlagMulti, 7, diagMsg(afInet))...)
	in = append(in, nlmsg(netlink.TypeDone, netlink.FlagMulti, 7, nil)...)
	var p Parser
	n := 0
	done, err := p.parse(in, 7, func(*Socket) error { n++; return nil })
	if !done || err != nil || n != 1 {
		t.Errorf("got done %v err %v after %d sockets, want the one socket of sequence 7", done, err, n)
	}
}

func TestRequestMarshal(t *testing.T) {
	cases := []struct {
		name string
		req  Request
		ext  uint8
		mask uint32
	}{
		{"tcp keeps every extension", Request{Family: afInet, Protocol: tcp, Ext: ExtTCPDefault}, uint8(ExtTCPDefault), AllStates},
		{"udp drops info and congestion", Request{Family: afInet6, Protocol: udp, Ext: ExtTCPDefault}, uint8(ExtSkMemInfo), AllStates},
		{"state mask passes through", Request{Family: afInet, Protocol: tcp, States: 1 << TCP_LISTEN}, 0, 1 << TCP_LISTEN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.req.marshal(nil, 9)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 72 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != sockDiagByFamily || ne.Uint16(b[6:]) != 0x301 || ne.Uint32(b[8:]) != 9 {
				t.Fatalf("bad header % x", b[:16])
			}
			if b[16] != c.req.Family || b[17] != c.req.Protocol || b[18] != c.ext || ne.Uint32(b[20:]) != c.mask {
				t.Errorf("req_v2 % x: want family %d protocol %d ext %#x states %#x", b[16:24], c.req.Family, c.req.Protocol, c.ext, c.mask)
			}
			if !bytes.Equal(b[24:], make([]byte, 48)) {
				t.Errorf("sockid not zero: % x", b[24:])
			}
		})
	}
	if _, err := (Request{Family: 1, Protocol: tcp}).marshal(nil, 1); err == nil {
		t.Error("AF_UNIX request accepted")
	}
}

func TestStateName(t *testing.T) {
	cases := map[uint8]string{
		TCP_ESTABLISHED: "established", TCP_SYN_SENT: "syn_sent", TCP_SYN_RECV: "syn_recv",
		TCP_FIN_WAIT1: "fin_wait1", TCP_FIN_WAIT2: "fin_wait2", TCP_TIME_WAIT: "time_wait",
		TCP_CLOSE: "close", TCP_CLOSE_WAIT: "close_wait", TCP_LAST_ACK: "last_ack",
		TCP_LISTEN: "listen", TCP_CLOSING: "closing", TCP_NEW_SYN_RECV: "new_syn_recv",
		0: "unknown", 14: "unknown", 255: "unknown",
	}
	for s, want := range cases {
		if got := StateName(s); got != want {
			t.Errorf("StateName(%d) = %q, want %q", s, got, want)
		}
	}
}

func FuzzParseMessages(f *testing.F) {
	for _, name := range []string{"tcp4", "tcp6", "udp4"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".bin"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(tcp))
	}
	f.Add(nlmsg(sockDiagByFamily, netlink.FlagMulti, 1, diagMsg(afInet6, attr(attrInfo, tcpInfoBytes(30)), attr(attrCong, []byte("x")))), uint8(tcp))
	f.Fuzz(func(t *testing.T, b []byte, proto uint8) {
		n := 0
		_, _ = ParseMessages(b, proto, func(s *Socket) error {
			n++
			if s.HasTCPInfo && s.TCPInfo.Len > len(b) {
				t.Fatalf("tcp_info length %d beyond input %d", s.TCPInfo.Len, len(b))
			}
			return nil
		})
		// Every socket needs at least a header and an inet_diag_msg.
		if n > len(b)/(netlink.HdrLen+inetDiagMsgLen) {
			t.Fatalf("%d sockets from %d bytes", n, len(b))
		}
	})
}
