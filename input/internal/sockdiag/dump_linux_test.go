package sockdiag

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"golang.org/x/sys/unix"
)

// newNetns is a namespace whose default congestion control is reno, so the
// congestion name can be asserted exactly (a non-initial namespace may only
// choose from tcp_allowed_congestion_control; reno is always built in).
func newNetns(t testing.TB) *nstest.Netns {
	t.Helper()
	ns := nstest.New(t)
	ns.Run(t, "sysctl", "-qw", "net.ipv4.tcp_congestion_control=reno")
	return ns
}

func dumperIn(t testing.TB, ns *nstest.Netns) *Dumper {
	t.Helper()
	d, err := OpenIn(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDumpTCPConnectionInNamespace(t *testing.T) {
	cases := []struct {
		name, network, listen string
		family                uint8
		unspecified           string
	}{
		{"ipv4", "tcp4", "127.0.0.1:0", unix.AF_INET, "0.0.0.0:0"},
		{"ipv6", "tcp6", "[::1]:0", unix.AF_INET6, "[::]:0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := newNetns(t)
			p := newTCPPair(t, ns.Path(), c.network, c.listen, nil)
			d := dumperIn(t, ns)
			req := Request{Family: c.family, Protocol: unix.IPPROTO_TCP, Ext: ExtTCPDefault}
			waitAllAcked(t, d, req)
			socks := collect(t, d, req)
			if len(socks) != 3 {
				t.Fatalf("dumped %d sockets, want listener, client and server: %+v", len(socks), socks)
			}

			ln, err := findLocal(socks, addrPort(p.ln.Addr()), netip.MustParseAddrPort(c.unspecified))
			if err != nil {
				t.Fatal(err)
			}
			if ln.State != TCP_LISTEN || ln.Inode != socketInode(t, p.ln) || ln.Family != c.family {
				t.Errorf("listener: state %d inode %d family %d, want %d %d %d", ln.State, ln.Inode, ln.Family, TCP_LISTEN, socketInode(t, p.ln), c.family)
			}

			// bytes_acked counts from the initial sequence number, so
			// the client's includes the SYN its peer acknowledged
			// (tcp_snd_una_update); the server's child socket starts
			// with snd_una past its SYN-ACK (tcp_create_openreq_child).
			// bytes_received counts data only (tcp_rcv_nxt_update is
			// not used for the SYN).
			ends := []struct {
				name                  string
				conn                  *net.TCPConn
				acked, received, sent uint64
			}{
				{"client", p.client, upBytes + 1, downBytes, upBytes},
				{"server", p.server, downBytes, upBytes, downBytes},
			}
			for _, e := range ends {
				s, err := findLocal(socks, addrPort(e.conn.LocalAddr()), addrPort(e.conn.RemoteAddr()))
				if err != nil {
					t.Fatal(err)
				}
				if s.State != TCP_ESTABLISHED || s.Protocol != unix.IPPROTO_TCP || s.Family != c.family {
					t.Errorf("%s: state %d protocol %d family %d", e.name, s.State, s.Protocol, s.Family)
				}
				if want := socketInode(t, e.conn); s.Inode != want {
					t.Errorf("%s: inode %d, want %d from /proc/self/fd", e.name, s.Inode, want)
				}
				if s.UID != uint32(os.Geteuid()) {
					t.Errorf("%s: uid %d, want %d", e.name, s.UID, os.Geteuid())
				}
				ti := s.TCPInfo
				if !s.HasTCPInfo || ti.Len < 232 || ti.State != TCP_ESTABLISHED {
					t.Fatalf("%s: tcp_info %v len %d state %d", e.name, s.HasTCPInfo, ti.Len, ti.State)
				}
				// bytes_sent includes retransmissions, which loopback
				// sees under CPU contention (tail loss probes), so only
				// the difference is exact.
				if ti.BytesAcked != e.acked || ti.BytesReceived != e.received || ti.BytesSent-ti.BytesRetrans != e.sent {
					t.Errorf("%s: bytes acked/received = %d/%d, sent-retrans = %d-%d; want %d/%d, %d", e.name,
						ti.BytesAcked, ti.BytesReceived, ti.BytesSent, ti.BytesRetrans, e.acked, e.received, e.sent)
				}
				if s.Congestion != "reno" {
					t.Errorf("%s: congestion %q, want reno", e.name, s.Congestion)
				}
				if !s.HasMem || s.Mem.Rcvbuf == 0 || s.Mem.Sndbuf == 0 {
					t.Errorf("%s: skmeminfo %v %+v", e.name, s.HasMem, s.Mem)
				}
				if s.Cookie == 0 {
					t.Errorf("%s: no socket cookie", e.name)
				}
			}
		})
	}
}

func TestDumpUDPConnectedAndUnconnected(t *testing.T) {
	cases := []struct {
		name, network, addr string
		family              uint8
		unspecified         string
	}{
		{"ipv4", "udp4", "127.0.0.1:0", unix.AF_INET, "0.0.0.0:0"},
		{"ipv6", "udp6", "[::1]:0", unix.AF_INET6, "[::]:0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := newNetns(t)
			var srv, cl *net.UDPConn
			inNetns(t, ns.Path(), func() error {
				la, err := net.ResolveUDPAddr(c.network, c.addr)
				if err != nil {
					return err
				}
				if srv, err = net.ListenUDP(c.network, la); err != nil {
					return err
				}
				cl, err = net.DialUDP(c.network, nil, srv.LocalAddr().(*net.UDPAddr))
				return err
			})
			t.Cleanup(func() { srv.Close(); cl.Close() })
			d := dumperIn(t, ns)
			socks := collect(t, d, Request{Family: c.family, Protocol: unix.IPPROTO_UDP, Ext: ExtTCPDefault})
			if len(socks) != 2 {
				t.Fatalf("dumped %d sockets, want 2: %+v", len(socks), socks)
			}
			want := []struct {
				name          string
				conn          *net.UDPConn
				local, remote netip.AddrPort
				state         uint8
			}{
				{"unconnected", srv, addrPort(srv.LocalAddr()), netip.MustParseAddrPort(c.unspecified), TCP_CLOSE},
				{"connected", cl, addrPort(cl.LocalAddr()), addrPort(cl.RemoteAddr()), TCP_ESTABLISHED},
			}
			for _, w := range want {
				s, err := findLocal(socks, w.local, w.remote)
				if err != nil {
					t.Fatal(err)
				}
				if s.State != w.state || s.Protocol != unix.IPPROTO_UDP || s.Inode != socketInode(t, w.conn) {
					t.Errorf("%s: state %d protocol %d inode %d, want %d %d %d", w.name, s.State, s.Protocol, s.Inode, w.state, unix.IPPROTO_UDP, socketInode(t, w.conn))
				}
				if s.HasTCPInfo || s.Congestion != "" || !s.HasMem {
					t.Errorf("%s: tcp_info %v congestion %q skmeminfo %v, want only skmeminfo", w.name, s.HasTCPInfo, s.Congestion, s.HasMem)
				}
			}
		})
	}
}

func TestDumpStatesFilterListenOnly(t *testing.T) {
	ns := newNetns(t)
	p := newTCPPair(t, ns.Path(), "tcp4", "127.0.0.1:0", nil)
	d := dumperIn(t, ns)
	socks := collect(t, d, Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 1 << TCP_LISTEN, Ext: ExtTCPDefault})
	if len(socks) != 1 || socks[0].State != TCP_LISTEN || socks[0].Local != addrPort(p.ln.Addr()) {
		t.Fatalf("got %+v, want only the listener %v", socks, p.ln.Addr())
	}
	socks = collect(t, d, Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: 1 << TCP_ESTABLISHED})
	if len(socks) != 2 || socks[0].State != TCP_ESTABLISHED || socks[1].State != TCP_ESTABLISHED {
		t.Fatalf("got %+v, want the two established ends", socks)
	}
	if socks[0].HasTCPInfo || socks[0].HasMem || socks[0].Congestion != "" {
		t.Errorf("extensions present without being requested: %+v", socks[0])
	}
}

func TestDumpHostNamespaceDoesNotSeeNamespaceSockets(t *testing.T) {
	ns := newNetns(t)
	p := newTCPPair(t, ns.Path(), "tcp4", "127.0.0.1:0", nil)
	inodes := map[uint32]bool{socketInode(t, p.ln): true, socketInode(t, p.client): true, socketInode(t, p.server): true}

	host, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for _, s := range collect(t, host, Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}) {
		if inodes[s.Inode] {
			t.Errorf("host dump shows namespace socket %v -> %v (inode %d)", s.Local, s.Remote, s.Inode)
		}
	}
	seen := 0
	for _, s := range collect(t, dumperIn(t, ns), Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}) {
		if inodes[s.Inode] {
			seen++
		}
	}
	if seen != 3 {
		t.Errorf("namespace dump shows %d of its 3 sockets", seen)
	}
}

// manyConns opens n loopback connections inside the namespace and returns
// the listener; both ends stay open until the test ends.
func manyConns(t testing.TB, nsPath string, n int) *net.TCPListener {
	t.Helper()
	var ln *net.TCPListener
	clients := make([]*net.TCPConn, 0, n)
	inNetns(t, nsPath, func() error {
		var err error
		if ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			return err
		}
		for range n {
			c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
			if err != nil {
				return err
			}
			clients = append(clients, c)
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
		ln.Close()
	})
	for range n {
		c, err := ln.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	return ln
}

func TestDumpCallbackErrorStopsAndDumperStaysUsable(t *testing.T) {
	const conns = 300 // 601 sockets: several datagrams of at most 32 KiB
	ns := newNetns(t)
	manyConns(t, ns.Path(), conns)
	d := dumperIn(t, ns)
	req := Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Ext: ExtTCPDefault}

	stop := errors.New("stop here")
	calls := 0
	err := d.Dump(req, func(*Socket) error {
		calls++
		if calls == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 5 {
		t.Fatalf("Dump = %v after %d callbacks, want the callback's error after 5", err, calls)
	}
	for i := range 2 {
		if got := len(collect(t, d, req)); got != 2*conns+1 {
			t.Fatalf("dump %d after the stopped one: %d sockets, want %d", i+1, got, 2*conns+1)
		}
	}
}

func TestOpenInBadPathNamesIt(t *testing.T) {
	notNetns := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(notNetns, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/run/netns/fleutanbeat-does-not-exist", notNetns} {
		d, err := OpenIn(path)
		if err == nil {
			d.Close()
			t.Fatalf("OpenIn(%q) succeeded", path)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
	}
}

func TestDumpAfterCloseAndBadRequest(t *testing.T) {
	nstest.RequireRoot(t)
	d, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Dump(Request{Family: unix.AF_UNIX, Protocol: unix.IPPROTO_TCP}, func(*Socket) error { return nil }); err == nil {
		t.Error("AF_UNIX request accepted")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.Dump(Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP}, func(*Socket) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Dump after Close = %v, want ErrClosed", err)
	}
}

func TestDumpUnknownProtocolIsAKernelError(t *testing.T) {
	ns := newNetns(t)
	d := dumperIn(t, ns)
	// No kernel has an inet_diag handler for GRE (raw_diag, which the
	// matrix kernels load, answers for IPPROTO_RAW): the kernel answers
	// NLMSG_ERROR, which must surface as its errno.
	err := d.Dump(Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_GRE}, func(*Socket) error { return nil })
	if err == nil || !strings.Contains(err.Error(), ns.Path()) {
		t.Fatalf("Dump(gre) = %v, want a kernel error naming the namespace", err)
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		t.Errorf("error %v carries no errno", err)
	}
	if got := len(collect(t, d, Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP})); got != 0 {
		t.Errorf("empty namespace dumped %d TCP sockets after the error", got)
	}
}
