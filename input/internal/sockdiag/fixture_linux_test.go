package sockdiag

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"golang.org/x/sys/unix"
)

// fixtureCase is one captured dump; TestParseFixtures states what each must
// decode to.
type fixtureCase struct {
	name string
	req  Request
}

var fixtureCases = []fixtureCase{
	{"tcp4", Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Ext: ExtTCPDefault}},
	{"tcp6", Request{Family: unix.AF_INET6, Protocol: unix.IPPROTO_TCP, Ext: ExtTCPDefault}},
	{"udp4", Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_UDP, Ext: ExtTCPDefault}},
}

// TestCaptureFixtures rebuilds the fixtures with -update: in a fresh
// namespace with reno as the default congestion control (a non-initial
// namespace may only pick one in tcp_allowed_congestion_control, and reno is
// always built in), fixed ports so the
// expectations are stable, and the exact byte counts of newTCPPair.
func TestCaptureFixtures(t *testing.T) {
	if !*update {
		t.Skip("run with -update to capture fixtures")
	}
	ns := nstest.New(t)
	ns.Run(t, "sysctl", "-qw", "net.ipv4.tcp_congestion_control=reno")
	newTCPPair(t, ns.Path(), "tcp4", "127.0.0.1:8080", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000})
	newTCPPair(t, ns.Path(), "tcp6", "[::1]:8080", &net.TCPAddr{IP: net.IPv6loopback, Port: 40001})
	inNetns(t, ns.Path(), func() error {
		srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353})
		if err != nil {
			return err
		}
		t.Cleanup(func() { srv.Close() })
		cl, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40002}, srv.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return err
		}
		t.Cleanup(func() { cl.Close() })
		return nil
	})
	d, err := OpenIn(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, c := range fixtureCases {
		waitAllAcked(t, d, c.req)
		raw := captureRaw(t, d, c.req)
		if err := os.WriteFile(filepath.Join("testdata", c.name+".bin"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", c.name, len(raw))
	}
}

// captureRaw runs one dump and returns every datagram read, concatenated:
// each read ends on a message boundary, so the result is itself a valid
// message stream.
func captureRaw(t testing.TB, d *Dumper, req Request) []byte {
	t.Helper()
	msg, err := req.marshal(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.Send(msg); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for {
		b, err := d.c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
		done, err := ParseMessages(b, req.Protocol, func(*Socket) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return raw
		}
	}
}
