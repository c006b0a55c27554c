package paths

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/paths/pathtest"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func hopAddrs(p Path) [][]netip.Addr {
	var out [][]netip.Addr
	for _, h := range p.Hops {
		out = append(out, h.Addrs)
	}
	return out
}

func trace(t *testing.T, p *Prober, ns *nstest.Netns, dst string) Path {
	t.Helper()
	path, err := p.Trace(context.Background(), Target{Netns: ns.Path(), Dst: netip.MustParseAddr(dst)})
	if err != nil {
		t.Fatalf("trace %s: %v", dst, err)
	}
	return path
}

func wantPath(t *testing.T, what string, got Path, want ...string) {
	t.Helper()
	var w [][]netip.Addr
	for _, a := range want {
		w = append(w, addrs(a))
	}
	if !slices.EqualFunc(hopAddrs(got), w, slices.Equal) || !got.Reached {
		t.Fatalf("%s: path\n%s(reached %v), want %v", what, got.String(), got.Reached, want)
	}
	for _, h := range got.Hops {
		// A probe may still be lost on a loaded host; the addresses are
		// what must be exact.
		if h.Sent != 3 || h.Received < 1 || h.RTTMin <= 0 || h.RTTMean < h.RTTMin {
			t.Errorf("%s: hop %d: sent %d received %d rtt min %s mean %s", what, h.TTL, h.Sent, h.Received, h.RTTMin, h.RTTMean)
		}
	}
}

func TestTraceHopOrderAndRouteChange(t *testing.T) {
	tp := pathtest.New(t)
	p, err := New(Options{Rate: 1000, Burst: 10, Timeout: 2 * time.Second, MaxTTL: 8})
	if err != nil {
		t.Fatal(err)
	}
	v4 := trace(t, p, tp.Client, "10.80.4.2")
	wantPath(t, "v4", v4, "10.80.1.2", "10.80.2.2", "10.80.3.2", "10.80.4.2")
	last := v4.Hops[3]
	if last.ICMPType != icmpUnreachable || last.ICMPCode != 3 {
		t.Errorf("v4 last hop: ICMP %d/%d, want port unreachable 3/3", last.ICMPType, last.ICMPCode)
	}
	if h := v4.Hops[0]; h.ICMPType != icmpTimeExceeded || h.ICMPCode != 0 {
		t.Errorf("v4 first hop: ICMP %d/%d, want time exceeded 11/0", h.ICMPType, h.ICMPCode)
	}
	v6 := trace(t, p, tp.Client, "fd80:4::2")
	wantPath(t, "v6", v6, "fd80:1::2", "fd80:2::2", "fd80:3::2", "fd80:4::2")
	if h := v6.Hops[3]; h.ICMPType != icmp6Unreachable || h.ICMPCode != 4 {
		t.Errorf("v6 last hop: ICMPv6 %d/%d, want port unreachable 1/4", h.ICMPType, h.ICMPCode)
	}
	if h := v6.Hops[0]; h.ICMPType != icmp6TimeExceeded {
		t.Errorf("v6 first hop: ICMPv6 type %d, want time exceeded 3", h.ICMPType)
	}

	// The same path again hashes the same; through r2b it does not.
	if again := trace(t, p, tp.Client, "10.80.4.2"); again.Hash() != v4.Hash() {
		t.Errorf("same path, hashes %s and %s", v4.Hash(), again.Hash())
	}
	tp.R1.Run(t, "ip", "route", "replace", "10.80.4.0/24", "via", "10.80.5.2")
	tp.R1.Run(t, "ip", "-6", "route", "replace", "fd80:4::/64", "via", "fd80:5::2")
	v4b := trace(t, p, tp.Client, "10.80.4.2")
	wantPath(t, "v4 through r2b", v4b, "10.80.1.2", "10.80.5.2", "10.80.3.2", "10.80.4.2")
	v6b := trace(t, p, tp.Client, "fd80:4::2")
	// ICMPv6 errors leave from the address the probe came in on (r3's
	// link to r2b); ICMPv4 ones from the address of the route back.
	wantPath(t, "v6 through r2b", v6b, "fd80:1::2", "fd80:5::2", "fd80:6::2", "fd80:4::2")
	if v4b.Hash() == v4.Hash() || v6b.Hash() == v6.Hash() {
		t.Errorf("route change kept the hashes: v4 %s → %s, v6 %s → %s", v4.Hash(), v4b.Hash(), v6.Hash(), v6b.Hash())
	}
}

var sentRE = regexp.MustCompile(`Sent \d+ bytes (\d+) pkt`)

// TestTraceRateLimitAndNothingElse counts, for each kind of probe, the
// packets of the probes' protocol leaving the client on its one link
// (classes of an htb qdisc, which count what they send; this kernel has
// no tc gact action): all of them go to the target, one per probe, and
// no faster than the rate.
func TestTraceRateLimitAndNothingElse(t *testing.T) {
	for _, tc := range []struct {
		method Method
		// proto is the IPv4 protocol of the probes; v6 matches an IPv6
		// probe of the same kind (not neighbour discovery).
		proto string
		v6    []string
	}{
		{MethodUDP, "17", []string{"match", "ip6", "protocol", "17", "0xff"}},
		{MethodICMP, "1", []string{"match", "ip6", "protocol", "58", "0xff", "match", "u8", "128", "0xff", "at", "40"}},
		// A SYN to a closed port: the server resets, the client has
		// nothing to answer.
		{MethodTCP, "6", []string{"match", "ip6", "protocol", "6", "0xff"}},
	} {
		t.Run(string(tc.method), func(t *testing.T) {
			tp := pathtest.New(t)
			run := func(args ...string) { tp.Client.Run(t, append([]string{"tc"}, args...)...) }
			run("qdisc", "add", "dev", "c1", "root", "handle", "1:", "htb", "default", "99")
			for _, c := range []string{"1:10", "1:20", "1:30", "1:99"} {
				run("class", "add", "dev", "c1", "parent", "1:", "classid", c, "htb", "rate", "1gbit")
			}
			// 1:10 probes to the target, 1:20 any other IPv4 packet of
			// the protocol, 1:30 IPv6 ones, 1:99 the rest (ARP,
			// neighbour discovery).
			run("filter", "add", "dev", "c1", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
				"match", "ip", "protocol", tc.proto, "0xff", "match", "ip", "dst", "10.80.4.2/32", "flowid", "1:10")
			run("filter", "add", "dev", "c1", "parent", "1:", "protocol", "ip", "prio", "2", "u32",
				"match", "ip", "protocol", tc.proto, "0xff", "flowid", "1:20")
			run(append(append([]string{"filter", "add", "dev", "c1", "parent", "1:", "protocol", "ipv6", "prio", "3", "u32"}, tc.v6...), "flowid", "1:30")...)
			count := func(class string) int {
				out := tp.Client.Run(t, "tc", "-s", "class", "show", "dev", "c1", "classid", class)
				m := sentRE.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no counter in:\n%s", out)
				}
				n, _ := strconv.Atoi(m[1])
				return n
			}

			const rate = 10
			p, err := New(Options{Method: tc.method, Rate: rate, Burst: 1, Timeout: 2 * time.Second, MaxTTL: 8})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			path, err := p.Trace(context.Background(), Target{Netns: tp.Client.Path(), Dst: netip.MustParseAddr("10.80.4.2"), Port: 8080})
			if err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			sent := 0
			for _, h := range path.Hops {
				sent += h.Sent
			}
			if sent != 12 || !path.Reached {
				t.Fatalf("%d probes over %d hops (reached %v), want 12 over 4", sent, len(path.Hops), path.Reached)
			}
			toTarget, other4, other6 := count("1:10"), count("1:20"), count("1:30")
			if toTarget != sent || other4 != 0 || other6 != 0 {
				t.Errorf("packets on the wire: %d %s to the target, %d other IPv4, %d IPv6; want %d, 0, 0", toTarget, tc.method, other4, other6, sent)
			}
			// The bucket holds one token: n packets need (n-1)/rate
			// seconds.
			if min := time.Duration(sent-1) * time.Second / rate; elapsed < min {
				t.Errorf("%d packets in %s: faster than %d/s (at least %s)", sent, elapsed, rate, min)
			}
			t.Logf("%d probes in %s at rate %d/s", sent, elapsed, rate)
		})
	}
}

// TestTraceMultipathSetAndParisStability: r1 spreads flows over r2 and
// r2b by their ports (a multipath route, hash policy L4). Probing with
// several flow identifiers gives hop 2 as a two-address set; one flow
// identifier, kept across rounds, finds one address per hop and the same
// path every round. UDP and TCP probes both: their identifiers are
// ports, which the hash reads (Linux hashes no ICMP identifier, so every
// echo request of a peer takes one path).
func TestTraceMultipathSetAndParisStability(t *testing.T) {
	tp := pathtest.New(t)
	tp.R1.Run(t, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1")
	tp.R1.Run(t, "ip", "route", "replace", "10.80.4.0/24", "nexthop", "via", "10.80.2.2", "nexthop", "via", "10.80.5.2")
	tp.R1.Run(t, "ip", "-6", "route", "replace", "fd80:4::/64", "nexthop", "via", "fd80:2::2", "nexthop", "via", "fd80:5::2")

	for _, m := range []Method{MethodUDP, MethodTCP} {
		// 16 identifiers all hashed to one next hop: a chance of 2^-15.
		many, err := New(Options{Method: m, Rate: 1000, Burst: 10, Timeout: 2 * time.Second, MaxTTL: 8, FlowIDs: 16})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			dst  string
			want [][]netip.Addr
		}{
			{"10.80.4.2", [][]netip.Addr{addrs("10.80.1.2"), addrs("10.80.2.2", "10.80.5.2"), addrs("10.80.3.2"), addrs("10.80.4.2")}},
			// r3 answers from the link each probe came in on (see above).
			{"fd80:4::2", [][]netip.Addr{addrs("fd80:1::2"), addrs("fd80:2::2", "fd80:5::2"), addrs("fd80:3::2", "fd80:6::2"), addrs("fd80:4::2")}},
		} {
			p, err := many.Trace(context.Background(), Target{Netns: tp.Client.Path(), Dst: netip.MustParseAddr(tc.dst), SrcPort: 41000, Port: 8080})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(hopAddrs(p), tc.want, slices.Equal) || !p.Reached || len(p.SrcPorts) != 16 || p.SrcPorts[15] != 41015 {
				t.Errorf("%s %s with 16 flow identifiers: path\n%s(reached %v, ports %v), want %v", m, tc.dst, p.String(), p.Reached, p.SrcPorts, tc.want)
			}
			if h := p.Hops[1]; h.Sent != 48 || h.Received < 2 {
				t.Errorf("%s %s hop 2: sent %d received %d, want 48 and at least 2", m, tc.dst, h.Sent, h.Received)
			}
		}

		one, err := New(Options{Method: m, Rate: 1000, Burst: 10, Timeout: 2 * time.Second, MaxTTL: 8})
		if err != nil {
			t.Fatal(err)
		}
		for _, dst := range []string{"10.80.4.2", "fd80:4::2"} {
			var hashes []string
			for range 4 {
				p, err := one.Trace(context.Background(), Target{Netns: tp.Client.Path(), Dst: netip.MustParseAddr(dst), SrcPort: 42000, Port: 8080})
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range p.Hops {
					if len(h.Addrs) != 1 {
						t.Errorf("%s %s, one flow identifier: hop %d answered from %v", m, dst, h.TTL, h.Addrs)
					}
				}
				if !p.Reached || len(p.Hops) != 4 {
					t.Errorf("%s %s: path\n%s(reached %v)", m, dst, p.String(), p.Reached)
				}
				hashes = append(hashes, p.Hash())
			}
			if len(slices.Compact(slices.Clone(hashes))) != 1 {
				t.Errorf("%s %s: one flow identifier over 4 rounds gave paths %v", m, dst, hashes)
			}
		}
	}
}

// TestTraceWithoutCapabilities: UDP probes need no capability, CAP_NET_RAW
// included: the test binary, run inside the client namespace with every
// capability dropped (bounding set too), traces the server. Asked for
// ICMP or TCP probes without CAP_NET_RAW it says so in one log line and
// traces with UDP; with CAP_NET_RAW alone it sends what was asked.
func TestTraceWithoutCapabilities(t *testing.T) {
	tp := pathtest.New(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const noCaps, netRaw = "0000000000000000", "0000000000002000"
	fallback := func(m string) string {
		return `level=WARN msg="paths: ` + m + ` probes need CAP_NET_RAW, which this process does not have: probing with UDP instead" error="raw socket: operation not permitted"` + "\n"
	}
	for _, tc := range []struct {
		ask    Method
		caps   string
		method Method
		log    string
	}{
		{MethodUDP, noCaps, MethodUDP, ""},
		{MethodICMP, noCaps, MethodUDP, fallback("icmp")},
		{MethodTCP, noCaps, MethodUDP, fallback("tcp")},
		{MethodICMP, netRaw, MethodICMP, ""},
		{MethodTCP, netRaw, MethodTCP, ""},
	} {
		caps := "-all"
		if tc.caps == netRaw {
			caps = "-all,+net_raw"
		}
		for _, dst := range []string{"10.80.4.2", "fd80:4::2"} {
			what := fmt.Sprintf("%s asked with capabilities %s, %s", tc.ask, tc.caps, dst)
			cmd := tp.Client.Command("setpriv", "--bounding-set="+caps, "--inh-caps="+caps, "--ambient-caps="+caps, "--", exe)
			cmd.Env = append(os.Environ(), helperEnv+"="+dst, methodEnv+"="+string(tc.ask))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s%s", what, err, out, stderr.String())
			}
			var got struct {
				CapEff string
				Method Method
				Path   Path
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s: %v: %s", what, err, out)
			}
			if got.CapEff != tc.caps {
				t.Fatalf("%s: helper ran with capabilities %s", what, got.CapEff)
			}
			if got.Method != tc.method || got.Path.Method != tc.method || stderr.String() != tc.log {
				t.Errorf("%s: probed with %s (path says %s), log\n%q\nwant %s and log\n%q", what, got.Method, got.Path.Method, stderr.String(), tc.method, tc.log)
			}
			want := []string{"10.80.1.2", "10.80.2.2", "10.80.3.2", "10.80.4.2"}
			if dst != "10.80.4.2" {
				want = []string{"fd80:1::2", "fd80:2::2", "fd80:3::2", "fd80:4::2"}
			}
			wantPath(t, what, got.Path, want...)
		}
	}
}

// listen accepts TCP connections on addr inside ns until the test ends.
func listen(t *testing.T, ns *nstest.Netns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := netns.Do(ns.Path(), func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}

// TestTraceICMPAndTCPHopOrder: ICMP echo and TCP SYN probes find the three
// routers and the server in order, on IPv4 and IPv6: the routers answer
// time exceeded, the server an echo reply or, from its listening port,
// a SYN-ACK. The flow identifier asked for is the one used.
func TestTraceICMPAndTCPHopOrder(t *testing.T) {
	tp := pathtest.New(t)
	listen(t, tp.Server, "10.80.4.2:8080")
	listen(t, tp.Server, "[fd80:4::2]:8080")
	for _, m := range []Method{MethodICMP, MethodTCP} {
		p, err := New(Options{Method: m, Rate: 1000, Burst: 10, Timeout: 2 * time.Second, MaxTTL: 8})
		if err != nil {
			t.Fatal(err)
		}
		if p.Method() != m {
			t.Fatalf("method %s asked, %s given (the test runs as root)", m, p.Method())
		}
		for _, tc := range []struct {
			dst               string
			want              []string
			timeExceeded, end uint8
		}{
			{"10.80.4.2", []string{"10.80.1.2", "10.80.2.2", "10.80.3.2", "10.80.4.2"}, icmpTimeExceeded, icmpEchoReply},
			{"fd80:4::2", []string{"fd80:1::2", "fd80:2::2", "fd80:3::2", "fd80:4::2"}, icmp6TimeExceeded, icmp6EchoReply},
		} {
			what := string(m) + " " + tc.dst
			path, err := p.Trace(context.Background(), Target{Netns: tp.Client.Path(), Dst: netip.MustParseAddr(tc.dst), SrcPort: 42000, Port: 8080})
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			wantPath(t, what, path, tc.want...)
			if h := path.Hops[0]; h.ICMPType != tc.timeExceeded || h.ICMPCode != 0 || h.TCPFlags != 0 {
				t.Errorf("%s first hop: ICMP %d/%d TCP flags %#x, want time exceeded %d/0", what, h.ICMPType, h.ICMPCode, h.TCPFlags, tc.timeExceeded)
			}
			last := path.Hops[3]
			switch m {
			case MethodICMP:
				if last.ICMPType != tc.end || last.TCPFlags != 0 {
					t.Errorf("%s last hop: ICMP type %d TCP flags %#x, want echo reply %d", what, last.ICMPType, last.TCPFlags, tc.end)
				}
			case MethodTCP:
				if last.TCPFlags != tcpSYN|tcpACK || last.ICMPType != 0 {
					t.Errorf("%s last hop: TCP flags %#x ICMP type %d, want SYN-ACK 0x12", what, last.TCPFlags, last.ICMPType)
				}
			}
			if path.Method != m || !slices.Equal(path.SrcPorts, []uint16{42000}) {
				t.Errorf("%s: method %s, flow identifiers %v; want %s, [42000]", what, path.Method, path.SrcPorts, m)
			}
		}
	}
}

// TestTraceRTTAboveADelay: with every packet r2 forwards to r3 held for
// 150ms, the hops past that link (r3, the server) answer no sooner than
// 150ms, and those before it (r1, r2) sooner, for every kind of probe.
func TestTraceRTTAboveADelay(t *testing.T) {
	tp := pathtest.New(t)
	const delay = 150 * time.Millisecond
	tp.DelayR2R3(t, delay)
	for _, m := range []Method{MethodUDP, MethodICMP, MethodTCP} {
		p, err := New(Options{Method: m, Rate: 1000, Burst: 10, Timeout: 2 * time.Second, MaxTTL: 8})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			dst  string
			want []string
		}{
			{"10.80.4.2", []string{"10.80.1.2", "10.80.2.2", "10.80.3.2", "10.80.4.2"}},
			{"fd80:4::2", []string{"fd80:1::2", "fd80:2::2", "fd80:3::2", "fd80:4::2"}},
		} {
			what := string(m) + " " + tc.dst
			path, err := p.Trace(context.Background(), Target{Netns: tp.Client.Path(), Dst: netip.MustParseAddr(tc.dst), Port: 8080})
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			wantPath(t, what, path, tc.want...)
			for _, h := range path.Hops {
				if past := h.TTL >= 3; past != (h.RTTMin >= delay) {
					t.Errorf("%s: hop %d (%v) RTT min %s mean %s; past the delayed link: %v", what, h.TTL, h.Addrs, h.RTTMin, h.RTTMean, past)
				}
			}
			t.Logf("%s: RTT min %s %s %s %s", what, path.Hops[0].RTTMin, path.Hops[1].RTTMin, path.Hops[2].RTTMin, path.Hops[3].RTTMin)
		}
	}
}
