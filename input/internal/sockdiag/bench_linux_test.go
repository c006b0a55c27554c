package sockdiag

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkDump measures one full collection (tcp_info, congestion,
// skmeminfo) of 2,000 loopback connections, 4,001 sockets with the listener,
// in the benchmark's own namespace: "dump" includes the kernel's work,
// "parse" is the decoding alone over the same bytes.
func BenchmarkDump(b *testing.B) {
	const conns = 2000
	const want = 2*conns + 1
	ns := newNetns(b)
	manyConns(b, ns.Path(), conns)
	d := dumperIn(b, ns)
	req := Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Ext: ExtTCPDefault}
	n := 0
	fn := func(s *Socket) error {
		if s.HasTCPInfo && s.Congestion != "" {
			n++
		}
		return nil
	}

	b.Run("dump", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n = 0
			if err := d.Dump(req, fn); err != nil {
				b.Fatal(err)
			}
		}
		if n != want {
			b.Fatalf("dumped %d sockets with tcp_info and congestion, want %d", n, want)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*want), "ns/socket")
	})

	raw := captureRaw(b, d, req)
	b.Run("parse", func(b *testing.B) {
		var p Parser
		p.Protocol = unix.IPPROTO_TCP
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			n = 0
			if _, err := p.Parse(raw, fn); err != nil {
				b.Fatal(err)
			}
		}
		if n != want {
			b.Fatalf("parsed %d sockets, want %d", n, want)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*want), "ns/socket")
	})
}
