package communityid

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type vector struct {
	Seed        uint16  `json:"seed"`
	Proto       uint8   `json:"proto"`
	SAddr       string  `json:"saddr"`
	DAddr       string  `json:"daddr"`
	SPort       *uint16 `json:"sport"`
	DPort       *uint16 `json:"dport"`
	CommunityID string  `json:"communityid"`
}

func loadVectors(t *testing.T, name string, seed uint16) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if seed != 0 {
		for i := range vs {
			vs[i].Seed = seed
		}
	}
	return vs
}

func port(p *uint16) uint16 {
	if p == nil {
		return 0
	}
	return *p
}

func TestV1MatchesSpecBaselines(t *testing.T) {
	files := []struct {
		name string
		seed uint16
		want int
	}{
		{"baseline_deflt.json", 0, 23},
		{"baseline_seed1.json", 1, 23},
		{"tables.json", 0, 32}, // seeds are per row
	}
	for _, f := range files {
		vs := loadVectors(t, f.name, f.seed)
		if len(vs) != f.want {
			t.Fatalf("%s: %d vectors, want %d", f.name, len(vs), f.want)
		}
		for i, v := range vs {
			src := netip.AddrPortFrom(netip.MustParseAddr(v.SAddr), port(v.SPort))
			dst := netip.AddrPortFrom(netip.MustParseAddr(v.DAddr), port(v.DPort))
			if got := V1(v.Seed, v.Proto, src, dst); got != v.CommunityID {
				t.Errorf("%s[%d] seed=%d proto=%d %v -> %v: got %s, want %s", f.name, i, v.Seed, v.Proto, src, dst, got, v.CommunityID)
			}
		}
	}
}

func TestV1EdgeCases(t *testing.T) {
	tcp := V1(0, 6, netip.MustParseAddrPort("1.2.3.4:1122"), netip.MustParseAddrPort("5.6.7.8:3344"))
	tests := []struct {
		name     string
		src, dst string
		proto    uint8
		want     string
	}{
		{"v4-mapped addresses hash as IPv4", "[::ffff:1.2.3.4]:1122", "[::ffff:5.6.7.8]:3344", 6, tcp},
		{"zones are ignored", "[fe80::1%eth0]:1", "[fe80::2%eth0]:2", 6,
			V1(0, 6, netip.MustParseAddrPort("[fe80::1]:1"), netip.MustParseAddrPort("[fe80::2]:2"))},
		{"mixed families give empty", "1.2.3.4:1", "[2001:db8::1]:2", 6, ""},
		{"same address orders by port", "10.0.0.1:80", "10.0.0.1:1000", 6,
			V1(0, 6, netip.MustParseAddrPort("10.0.0.1:1000"), netip.MustParseAddrPort("10.0.0.1:80"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := V1(0, tt.proto, netip.MustParseAddrPort(tt.src), netip.MustParseAddrPort(tt.dst))
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := V1(0, 6, netip.AddrPort{}, netip.MustParseAddrPort("1.2.3.4:1")); got != "" {
		t.Errorf("invalid address: got %q, want empty", got)
	}
}

// Router discovery (RFC 1256): a solicitation to all-routers and the
// advertisement answering it are one flow, whichever is seen. The ids are
// those of the reference implementation (communityid 1.5.0 on PyPI).
func TestV1ICMPRouterDiscoveryIsOneFlow(t *testing.T) {
	icmp := func(src string, typ uint16, dst string) string {
		return V1(0, protoICMP, netip.AddrPortFrom(netip.MustParseAddr(src), typ), netip.AddrPortFrom(netip.MustParseAddr(dst), 0))
	}
	tests := []struct {
		name string
		src  string
		typ  uint16
		dst  string
		want string
	}{
		{"advertisement to all-systems", "192.168.1.1", 9, "224.0.0.1", "1:THmmK/QRj37KMuzh5OFYuU0Og+s="},
		{"solicitation it answers", "224.0.0.1", 10, "192.168.1.1", "1:THmmK/QRj37KMuzh5OFYuU0Og+s="},
		{"advertisement to all-routers", "192.168.1.1", 9, "224.0.0.2", "1:vkMnDyjR+kz6khnGeaF8P+Ccq/E="},
		{"solicitation to all-routers", "224.0.0.2", 10, "192.168.1.1", "1:vkMnDyjR+kz6khnGeaF8P+Ccq/E="},
	}
	for _, tt := range tests {
		if got := icmp(tt.src, tt.typ, tt.dst); got != tt.want {
			t.Errorf("%s: type %d %s -> %s: got %s, want %s", tt.name, tt.typ, tt.src, tt.dst, got, tt.want)
		}
	}
}

func TestV1AllocatesOnlyTheResult(t *testing.T) {
	src := netip.MustParseAddrPort("[2001:470:e5bf:dead:4957:2174:e82c:4887]:63943")
	dst := netip.MustParseAddrPort("[2607:f8b0:400c:c03::1a]:25")
	var sink string
	if n := testing.AllocsPerRun(100, func() { sink = V1(0, 6, src, dst) }); n != 1 {
		t.Errorf("allocs per call = %v, want 1", n)
	}
	if len(sink) != 30 {
		t.Errorf("id %q", sink)
	}
}

func FuzzV1Symmetric(f *testing.F) {
	f.Add(uint16(0), uint8(6), []byte{1, 2, 3, 4}, uint16(1122), []byte{5, 6, 7, 8}, uint16(3344))
	f.Add(uint16(1), uint8(58), make([]byte, 16), uint16(128), []byte{0xfe, 0x80, 15: 1}, uint16(0))
	f.Add(uint16(0), uint8(46), []byte{10, 1, 12, 1}, uint16(0), []byte{10, 1, 12, 2}, uint16(0))
	f.Add(uint16(0), uint8(1), []byte{10, 0, 0, 1}, uint16(8), []byte{10, 0, 0, 2}, uint16(0))
	f.Add(uint16(0), uint8(1), []byte{10, 0, 0, 1}, uint16(9), []byte{224, 0, 0, 1}, uint16(0))
	f.Add(uint16(0), uint8(1), []byte{224, 0, 0, 2}, uint16(10), []byte{10, 0, 0, 1}, uint16(0))
	f.Add(uint16(0), uint8(58), []byte{0xfe, 0x80, 15: 1}, uint16(134), []byte{0xff, 0x02, 15: 1}, uint16(0))
	f.Fuzz(func(t *testing.T, seed uint16, proto uint8, a []byte, ap uint16, b []byte, bp uint16) {
		sa, _ := netip.AddrFromSlice(a)
		da, _ := netip.AddrFromSlice(b)
		src, dst := netip.AddrPortFrom(sa, ap), netip.AddrPortFrom(da, bp)
		fwd, rev := V1(seed, proto, src, dst), V1(seed, proto, dst, src)
		if fwd != "" {
			if sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(fwd, "1:")); err != nil || len(sum) != 20 || fwd[:2] != "1:" {
				t.Fatalf("malformed id %q", fwd)
			}
		}
		// The same endpoints written otherwise are the same flow: IPv4 as
		// IPv4-mapped IPv6, and with a zone.
		if alt := V1(seed, proto, otherForm(src), otherForm(dst)); alt != fwd {
			t.Fatalf("V1(%v,%v)=%q but V1(%v,%v)=%q", src, dst, fwd, otherForm(src), otherForm(dst), alt)
		}
		if proto == protoICMP || proto == protoICMPv6 {
			checkICMPPairs(t, seed, proto, src, dst, fwd)
			return
		}
		if fwd != rev {
			t.Fatalf("V1(%v,%v)=%q but V1(%v,%v)=%q", src, dst, fwd, dst, src, rev)
		}
	})
}

func otherForm(ap netip.AddrPort) netip.AddrPort {
	a := ap.Addr()
	switch {
	case a.Is4():
		a = netip.AddrFrom16(a.As16())
	case a.Is6():
		a = a.WithZone("eth0")
	}
	return netip.AddrPortFrom(a, ap.Port())
}

// checkICMPPairs holds the ICMP mapping to what makes a request and its
// reply one flow: the reply to (type t, code c) from src to dst is the
// counterpart type sent back, with any code, and must hash alike. A type
// that maps to another must be mapped back by it, or the reply of a
// request would be a one-way message of its own (router advertisement 9
// once was).
func checkICMPPairs(t *testing.T, seed uint16, proto uint8, src, dst netip.AddrPort, fwd string) {
	t.Helper()
	counterpart := icmp4Counterpart
	if proto == protoICMPv6 {
		counterpart = icmp6Counterpart
	}
	typ := src.Port()
	c, ok := counterpart(typ)
	if !ok {
		return
	}
	if back, ok := counterpart(c); !ok || back != typ {
		t.Fatalf("proto %d: type %d maps to %d, which maps to %d (ok %v)", proto, typ, c, back, ok)
	}
	reply := V1(seed, proto, netip.AddrPortFrom(dst.Addr(), c), netip.AddrPortFrom(src.Addr(), dst.Port()^0x5a))
	if reply != fwd {
		t.Fatalf("proto %d: type %d %v -> %v hashes %q, its reply type %d hashes %q", proto, typ, src, dst, fwd, c, reply)
	}
}

func BenchmarkV1(b *testing.B) {
	for _, bc := range []struct{ name, src, dst string }{
		{"ipv4", "192.168.1.52:54585", "8.8.8.8:53"},
		{"ipv6", "[2001:470:e5bf:dead:4957:2174:e82c:4887]:63943", "[2607:f8b0:400c:c03::1a]:25"},
	} {
		src, dst := netip.MustParseAddrPort(bc.src), netip.MustParseAddrPort(bc.dst)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var sink string
			for b.Loop() {
				sink = V1(0, 6, src, dst)
			}
			_ = sink
		})
	}
}
