package flows

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// routeTopology is a client namespace with two links to a router
// namespace, a0 (10.71.1.0/24, fd71:1::/64) and b0 (10.71.2.0/24,
// fd71:2::/64), and routes to 10.99.1.0/24 via a0, to 10.99.2.0/24 via b0
// with the source address of a0, and the v6 counterparts. The peers are
// only connected-to UDP sockets: connect(2) sends nothing, and every
// address lives inside the two namespaces.
func routeTopology(t *testing.T) (client *nstest.Netns) {
	t.Helper()
	client, router := nstest.New(t), nstest.New(t)
	for _, l := range []struct{ dev, v4, v6 string }{
		{"a0", "10.71.1", "fd71:1:"},
		{"b0", "10.71.2", "fd71:2:"},
	} {
		client.Run(t, "ip", "link", "add", l.dev, "type", "veth", "peer", "name", l.dev+"p", "netns", router.Name)
		client.Run(t, "ip", "addr", "add", l.v4+".1/24", "dev", l.dev)
		client.Run(t, "ip", "addr", "add", l.v6+":1/64", "dev", l.dev, "nodad")
		client.Run(t, "ip", "link", "set", l.dev, "up")
		router.Run(t, "ip", "addr", "add", l.v4+".2/24", "dev", l.dev+"p")
		router.Run(t, "ip", "addr", "add", l.v6+":2/64", "dev", l.dev+"p", "nodad")
		router.Run(t, "ip", "link", "set", l.dev+"p", "up")
	}
	client.Run(t, "ip", "route", "add", "10.99.1.0/24", "via", "10.71.1.2", "dev", "a0")
	client.Run(t, "ip", "route", "add", "10.99.2.0/24", "via", "10.71.2.2", "dev", "b0", "src", "10.71.1.1")
	client.Run(t, "ip", "-6", "route", "add", "fd99:1::/64", "via", "fd71:1::2", "dev", "a0")
	client.Run(t, "ip", "-6", "route", "add", "fd99:2::/64", "via", "fd71:2::2", "dev", "b0")
	return client
}

// connectUDP opens a UDP socket in ns connected to peer.
func connectUDP(t *testing.T, ns *nstest.Netns, peer string) {
	t.Helper()
	ap := netip.MustParseAddrPort(peer)
	var sa unix.Sockaddr
	domain := unix.AF_INET
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		domain = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd := ns.Socket(t, domain, unix.SOCK_DGRAM)
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatalf("connect %s: %v", peer, err)
	}
}

func routeOf(t *testing.T, flows []Flow, remote string) Route {
	t.Helper()
	for _, f := range flows {
		if f.Remote.String() == remote {
			if f.Route == nil {
				t.Fatalf("flow to %s has no route", remote)
			}
			return *f.Route
		}
	}
	t.Fatalf("no flow to %s in %s", remote, dumpFlows(flows))
	return Route{}
}

func TestCollectorRoutePerPeerFollowsRouteChange(t *testing.T) {
	client := routeTopology(t)
	peers := []string{"10.99.1.5:53", "10.99.2.5:53", "10.71.2.2:53", "[fd99:1::5]:53", "[fd99:2::5]:53", "[fd71:1::2]:53"}
	for _, p := range peers {
		connectUDP(t, client, p)
	}
	// A second flow to one peer shares the lookup.
	connectUDP(t, client, "10.99.1.5:54")

	c := collectorIn(t, Options{Protocols: []uint8{protoUDP}, NoProcesses: true, Routes: true}, namespaceOf(t, client))
	a := netip.MustParseAddr
	want := map[string]Route{
		"10.99.1.5:53":   {Device: "a0", Gateway: a("10.71.1.2"), Src: a("10.71.1.1")},
		"10.99.1.5:54":   {Device: "a0", Gateway: a("10.71.1.2"), Src: a("10.71.1.1")},
		"10.99.2.5:53":   {Device: "b0", Gateway: a("10.71.2.2"), Src: a("10.71.1.1")},
		"10.71.2.2:53":   {Device: "b0", Src: a("10.71.2.1")},
		"[fd99:1::5]:53": {Device: "a0", Gateway: a("fd71:1::2"), Src: a("fd71:1::1")},
		"[fd99:2::5]:53": {Device: "b0", Gateway: a("fd71:2::2"), Src: a("fd71:2::1")},
		"[fd71:1::2]:53": {Device: "a0", Src: a("fd71:1::1")},
	}
	check := func(flows []Flow, want map[string]Route) {
		t.Helper()
		for remote, w := range want {
			if got := routeOf(t, flows, remote); got != w {
				t.Errorf("route to %s: %+v, want %+v", remote, got, w)
			}
		}
	}
	flows := collect(t, c)
	check(flows, want)
	for _, f := range flows {
		if f.Direction == Listening && f.Route != nil {
			t.Errorf("listening flow %s has a route %+v", f.Key(), f.Route)
		}
	}

	// The change made before the next collection shows in it, although
	// the cached answers have a minute to live.
	client.Run(t, "ip", "route", "replace", "10.99.1.0/24", "via", "10.71.2.2", "dev", "b0")
	client.Run(t, "ip", "-6", "route", "replace", "fd99:2::/64", "via", "fd71:1::2", "dev", "a0")
	want["10.99.1.5:53"] = Route{Device: "b0", Gateway: a("10.71.2.2"), Src: a("10.71.2.1")}
	want["10.99.1.5:54"] = want["10.99.1.5:53"]
	want["[fd99:2::5]:53"] = Route{Device: "a0", Gateway: a("fd71:1::2"), Src: a("fd71:1::1")}
	check(collect(t, c), want)

	// A peer without a route has none, and costs no error.
	client.Run(t, "ip", "route", "del", "10.99.2.0/24")
	snapFlows := collect(t, c)
	for _, f := range snapFlows {
		if f.Remote.String() == "10.99.2.5:53" && f.Route != nil {
			t.Errorf("route to 10.99.2.5 after its route was deleted: %+v", f.Route)
		}
	}
}

// The TTL bounds a cached answer even when no notification comes: a
// collector whose clock jumps past it asks again.
func TestRouteTableTTL(t *testing.T) {
	client := routeTopology(t)
	connectUDP(t, client, "10.99.1.5:53")
	now := time.Unix(1e9, 0)
	c := collectorIn(t, Options{Protocols: []uint8{protoUDP}, NoProcesses: true, Routes: true, RouteTTL: time.Second,
		Now: func() time.Time { return now }}, namespaceOf(t, client))
	collect(t, c)
	// Change the cache behind the collector's back, as a lost
	// notification would leave it.
	ns := namespaceOf(t, client)
	tbl, err := c.routes.tables.Get(netns.Namespace{Inode: ns.Inode, Path: ns.Path, Name: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("10.99.1.5")
	tbl.entries[peer] = routeEntry{r: &Route{Device: "stale"}, expires: now.Add(time.Second)}
	if got := routeOf(t, collect(t, c), "10.99.1.5:53"); got.Device != "stale" {
		t.Fatalf("within the TTL: device %q, want the cached stale", got.Device)
	}
	now = now.Add(time.Second)
	if got := routeOf(t, collect(t, c), "10.99.1.5:53"); got.Device != "a0" {
		t.Fatalf("after the TTL: device %q, want a0", got.Device)
	}
}

// BenchmarkRouteAssign is the cost Options.Routes adds to a collection of
// 36,000 flows to as many distinct peers (the worst case: nothing shared):
// "cold" after a route change, when every peer is looked up again (one
// RTM_GETROUTE each), and "steady", from the cache.
func BenchmarkRouteAssign(b *testing.B) {
	const n = 36000
	ns, peer := nstest.New(b), nstest.New(b)
	nstest.VethPair(b, ns, peer, "r0", 1, "10.72.0.1", "10.72.0.2")
	ns.Run(b, "ip", "route", "add", "10.64.0.0/10", "via", "10.72.0.2", "dev", "r0")
	info := namespaceOf(b, ns)
	nss := []netns.Namespace{{Inode: info.Inode, Path: info.Path, Name: info.Name}}
	present := map[uint64]bool{info.Inode: true}
	flows := make([]Flow, n)
	for i := range flows {
		flows[i] = Flow{Netns: info.Inode, Protocol: protoTCP, Direction: Outbound,
			Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 64 + byte(i>>16), byte(i >> 8), byte(i)}), 443)}
	}
	r := newRoutes(time.Hour, slog.New(slog.DiscardHandler), func(netns.Namespace) bool { return false })
	b.Cleanup(func() { _ = r.Close() })
	assign := func() {
		for i := range flows {
			flows[i].Route = nil
		}
		if err := r.assign(flows, nss, present, time.Now()); err != nil {
			b.Fatal(err)
		}
		if flows[n-1].Route == nil || flows[n-1].Route.Device != "r0" {
			b.Fatalf("route %+v", flows[n-1].Route)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			// A route change drops the cache.
			ns.Run(b, "ip", "route", "replace", "10.64.0.0/10", "via", "10.72.0.2", "dev", "r0")
			assign()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/flow")
	})
	b.Run("steady", func(b *testing.B) {
		assign()
		for b.Loop() {
			assign()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/flow")
	})
}
