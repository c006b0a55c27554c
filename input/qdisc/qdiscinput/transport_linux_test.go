package qdiscinput

import (
	"context"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// ICMP from a socket (a raw one here, as ping uses when ping sockets are
// not allowed) reaches the flow events under its ECS transport name, the
// IANA keyword: "icmp" and "ipv6-icmp", never the number.
func TestICMPFlowEventsNameTheTransport(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vqi", 1, "10.83.0.1", "10.83.0.2")
	// VethPair turns IPv6 off; the sender needs it, with a permanent
	// neighbour so that no neighbour solicitation competes.
	a.Run(t, "sysctl", "-qw", "net.ipv6.conf.vqi.disable_ipv6=0")
	a.Run(t, "ip", "-6", "addr", "add", "2001:db8:83::1/64", "dev", "vqi", "nodad")
	a.Run(t, "ip", "-6", "neigh", "add", "2001:db8:83::2", "lladdr", "02:00:00:00:00:02", "dev", "vqi", "nud", "permanent")

	cfg := DefaultConfig()
	cfg.Namespaces = NamespacesAll
	cfg.FlowAttribution = AttributionEBPF
	in := newQdiscInput(cfg, input.Settings{}, qdisctest.Namespaces(t, a, b))
	if err := in.startAttribution(); err != nil {
		t.Fatal(err)
	}
	defer in.close()
	ctx := context.Background()
	if _, _, err := in.sample(ctx); err != nil {
		t.Fatal(err)
	}

	const count, payload = 5, 64 // an ICMP echo header and 56 bytes, as ping sends
	tests := []struct {
		domain, proto int
		local, remote netip.Addr
		echoType      byte
		frame         uint64 // Ethernet + IP header + payload
		transport     string
		iana, typ     string
	}{
		{unix.AF_INET, unix.IPPROTO_ICMP, netip.MustParseAddr("10.83.0.1"), netip.MustParseAddr("10.83.0.2"), 8, 14 + 20 + payload, "icmp", "1", "ipv4"},
		{unix.AF_INET6, unix.IPPROTO_ICMPV6, netip.MustParseAddr("2001:db8:83::1"), netip.MustParseAddr("2001:db8:83::2"), 128, 14 + 40 + payload, "ipv6-icmp", "58", "ipv6"},
	}
	for _, tt := range tests {
		sendRawICMP(t, a, tt.domain, tt.proto, tt.local, tt.remote, tt.echoType, payload, count)
	}
	snap, _, err := in.sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs := snap.QueueFlows
	for _, tt := range tests {
		var found []qdisc.QueueFlow
		for _, f := range fs {
			if !f.Other && f.Device.Name == "vqi" && f.Remote.Addr() == tt.remote {
				found = append(found, f)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%s: %d flow samples to %s, want 1: %+v", tt.transport, len(found), tt.remote, fs)
		}
		f := found[0]
		// A raw socket's local port is its protocol (inet_num).
		if f.Protocol != uint8(tt.proto) || f.Local != netip.AddrPortFrom(tt.local, uint16(tt.proto)) || f.Bytes != count*tt.frame || f.Packets != count {
			t.Errorf("%s: sample proto %d local %s bytes %d packets %d, want %d %s %d %d",
				tt.transport, f.Protocol, f.Local, f.Bytes, f.Packets, tt.proto, netip.AddrPortFrom(tt.local, uint16(tt.proto)), count*tt.frame, count)
		}
		ev := FlowEvent(&f, time.Unix(1, 0), input.Times{})
		for path, want := range map[string]any{
			"network.transport":   tt.transport,
			"network.iana_number": tt.iana,
			"network.type":        tt.typ,
			"source.ip":           tt.local.String(),
		} {
			if v, ok := ev.Fields.GetValue(path); !ok || !reflect.DeepEqual(v, want) {
				t.Errorf("%s: %s = %#v, want %#v", tt.transport, path, v, want)
			}
		}
		// No remote port: no destination, and no ICMP type and code to
		// hash a Community ID from.
		for _, path := range []string{"destination", "network.community_id"} {
			if v, ok := ev.Fields.GetValue(path); ok {
				t.Errorf("%s: %s = %#v, want none", tt.transport, path, v)
			}
		}
	}
}

// sendRawICMP sends count echo requests of size bytes from local to remote
// through a raw socket created in ns.
func sendRawICMP(t *testing.T, ns *nstest.Netns, domain, proto int, local, remote netip.Addr, echoType byte, size, count int) {
	t.Helper()
	sockaddr := func(a netip.Addr) unix.Sockaddr {
		if a.Is4() {
			return &unix.SockaddrInet4{Addr: a.As4()}
		}
		return &unix.SockaddrInet6{Addr: a.As16()}
	}
	msg := make([]byte, size)
	msg[0] = echoType // code 0; the kernel sums ICMPv6, the peer drops either unread
	err := netns.Do(ns.Path(), func() error {
		fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, sockaddr(local)); err != nil {
			return err
		}
		if err := unix.Connect(fd, sockaddr(remote)); err != nil {
			return err
		}
		for range count {
			if _, err := unix.Write(fd, msg); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw %s socket in %s: %v", remote, ns.Name, err)
	}
}
