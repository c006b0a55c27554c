// Package pathtest builds the routed namespace topology the paths tests
// trace through.
package pathtest

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// Topology is client — r1 — r2 — r3 — server, with r2b parallel to r2
// (r1 — r2b — r3), every link on IPv4 (10.80.L.0/24) and IPv6
// (fd80:L::/64), L numbering the links:
//
//	1 client .1 – .2 r1    2 r1 .1 – .2 r2    3 r2 .1 – .2 r3
//	4 r3 .1 – .2 server    5 r1 .1 – .2 r2b   6 r2b .1 – .2 r3
//
// The client has no route but the one to the server's link: a probe can
// go nowhere else.
type Topology struct {
	Client, R1, R2, R2b, R3, Server *nstest.Netns
}

func New(t testing.TB) *Topology {
	t.Helper()
	tp := &Topology{Client: nstest.New(t), R1: nstest.New(t), R2: nstest.New(t), R2b: nstest.New(t), R3: nstest.New(t), Server: nstest.New(t)}
	for _, n := range []*nstest.Netns{tp.Client, tp.R1, tp.R2, tp.R2b, tp.R3, tp.Server} {
		n.Run(t, "sysctl", "-qw",
			"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
			// Every probe answered: no ICMP rate limit, and no reverse
			// path filter against the asymmetric routes after a change.
			"net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
			"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
		// The namespace's global ICMP budget (v4 and v6), whose spending
		// is randomised since 6.11, too. Older kernels (Debian's 5.10 in
		// the kernel matrix) have one budget for the host, with no sysctl
		// in other namespaces: the tests leave it as it is.
		n.Run(t, "sh", "-c", "[ ! -e /proc/sys/net/ipv4/icmp_msgs_per_sec ] || sysctl -qw net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=100000")
	}
	link := func(l int, a, b *nstest.Netns, da, db string) {
		a.Run(t, "ip", "link", "add", da, "type", "veth", "peer", "name", db, "netns", b.Name)
		for _, e := range []struct {
			n    *nstest.Netns
			dev  string
			host int
		}{{a, da, 1}, {b, db, 2}} {
			e.n.Run(t, "ip", "addr", "add", "10.80."+strconv.Itoa(l)+"."+strconv.Itoa(e.host)+"/24", "dev", e.dev)
			e.n.Run(t, "ip", "addr", "add", "fd80:"+strconv.Itoa(l)+"::"+strconv.Itoa(e.host)+"/64", "dev", e.dev, "nodad")
			e.n.Run(t, "ip", "link", "set", e.dev, "up")
		}
	}
	link(1, tp.Client, tp.R1, "c1", "r1a")
	link(2, tp.R1, tp.R2, "r1b", "r2a")
	link(3, tp.R2, tp.R3, "r2b", "r3a")
	link(4, tp.R3, tp.Server, "r3b", "s1")
	link(5, tp.R1, tp.R2b, "r1c", "x2a")
	link(6, tp.R2b, tp.R3, "x2b", "r3c")
	// route sends link l's prefix via host vh of link vl.
	route := func(n *nstest.Netns, l, vl, vh int) {
		n.Run(t, "ip", "route", "add", "10.80."+strconv.Itoa(l)+".0/24", "via", "10.80."+strconv.Itoa(vl)+"."+strconv.Itoa(vh))
		n.Run(t, "ip", "-6", "route", "add", "fd80:"+strconv.Itoa(l)+"::/64", "via", "fd80:"+strconv.Itoa(vl)+"::"+strconv.Itoa(vh))
	}
	route(tp.Client, 4, 1, 2)
	route(tp.R1, 4, 2, 2)
	route(tp.R2, 4, 3, 2)
	route(tp.R2, 1, 2, 1)
	route(tp.R3, 1, 3, 1)
	route(tp.R2b, 4, 6, 2)
	route(tp.R2b, 1, 5, 1)
	route(tp.Server, 1, 4, 1)
	return tp
}

// DelayR2R3 holds every packet r2 forwards towards the server's link for
// d before it leaves for r3: this kernel has no netem, and a token bucket
// (tbf, htb) delays only packets that find it empty, never a lone probe.
// r2 routes the server's prefixes into a TUN device; the test reads each
// packet there and, d later, sends it on r2's link to r3 from a packet
// socket, to r3's MAC address. Hops up to r2 answer undelayed; r3 and
// the server answer d later. Packets back to the client are not delayed.
func (tp *Topology) DelayR2R3(t testing.TB, d time.Duration) {
	t.Helper()
	var tun, pkt, ifindex int
	err := netns.Do(tp.R2.Path(), func() error {
		var err error
		if tun, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
		ifr, err := unix.NewIfreq("dly")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(tun, unix.TUNSETIFF, ifr); err != nil {
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		if pkt, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("r2b")
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		return nil
	})
	if err != nil {
		t.Fatalf("delay on r2: %v", err)
	}
	f := os.NewFile(uintptr(tun), "dly")
	// A packet still held when the test ends is dropped: its descriptor
	// number may by then name another socket.
	var mu sync.Mutex
	closed := false
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		f.Close()
		unix.Close(pkt)
	})
	mac, err := net.ParseMAC(strings.TrimSpace(tp.R3.Run(t, "cat", "/sys/class/net/r3a/address")))
	if err != nil {
		t.Fatal(err)
	}
	tp.R2.Run(t, "ip", "link", "set", "dly", "up")
	tp.R2.Run(t, "ip", "route", "replace", "10.80.4.0/24", "dev", "dly")
	tp.R2.Run(t, "ip", "-6", "route", "replace", "fd80:4::/64", "dev", "dly")
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			p := slices.Clone(buf[:n])
			proto := uint16(unix.ETH_P_IP)
			if p[0]>>4 == 6 {
				proto = unix.ETH_P_IPV6
			}
			sa := &unix.SockaddrLinklayer{Protocol: proto<<8 | proto>>8, Ifindex: ifindex, Halen: 6}
			copy(sa.Addr[:], mac)
			time.AfterFunc(d, func() {
				mu.Lock()
				defer mu.Unlock()
				if !closed {
					_ = unix.Sendto(pkt, p, 0, sa)
				}
			})
		}
	}()
}

// Connect opens a TCP connection from the client to the server's port on
// IPv4 and one on IPv6, kept until the test ends: the flows whose peers
// a paths input traces. It returns their local endpoints.
func (tp *Topology) Connect(t testing.TB, port int) (locals []string) {
	t.Helper()
	for _, addr := range []string{"10.80.4.2", "fd80:4::2"} {
		addr := net.JoinHostPort(addr, strconv.Itoa(port))
		var ln net.Listener
		if err := netns.Do(tp.Server.Path(), func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		var c net.Conn
		if err := netns.Do(tp.Client.Path(), func() (err error) { c, err = net.Dial("tcp", addr); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		locals = append(locals, c.LocalAddr().String())
	}
	return locals
}

// Reroute sends r1's traffic to the server through r2b instead of r2,
// on IPv4 and IPv6.
func (tp *Topology) Reroute(t testing.TB) {
	t.Helper()
	tp.R1.Run(t, "ip", "route", "replace", "10.80.4.0/24", "via", "10.80.5.2")
	tp.R1.Run(t, "ip", "-6", "route", "replace", "fd80:4::/64", "via", "fd80:5::2")
}
