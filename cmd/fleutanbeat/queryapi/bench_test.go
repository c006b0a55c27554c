package queryapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/process"
)

// BenchmarkFlowsEndpoint answers GET /api/v1/flows over 36,000 built
// flows (the flows goal's scale) of 100 processes: the whole list, and a
// filter that keeps one process's 360. Per request: the Diff of the two
// collections (built snapshots: by key), the filter and the JSON.
func BenchmarkFlowsEndpoint(b *testing.B) {
	const n = 36000
	procs := make([]*process.Process, 100)
	for i := range procs {
		procs[i] = &process.Process{PID: 1000 + i, Name: "worker", UID: 1000}
	}
	mk := func(acked uint64) flows.Snapshot {
		s := flows.Snapshot{Time: t0.Add(time.Duration(acked) * time.Second), Namespaces: []flows.Namespace{ns}, Flows: make([]flows.Flow, n)}
		for i := range s.Flows {
			s.Flows[i] = flows.Flow{Netns: ns.Inode, Family: flows.FamilyIPv4, Protocol: flows.ProtocolTCP, State: 1,
				Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 443),
				Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(1024+i)),
				Inode:  uint32(i + 1), Direction: flows.Inbound, Process: procs[i%len(procs)],
				HasTCP: true, TCP: flows.TCPInfo{BytesAcked: acked * 1000, BytesReceived: acked * 10, RTTMicros: 100}}
		}
		return s
	}
	l := input.NewLatest()
	l.Set("flows", input.Collection{Snapshot: mk(1)})
	l.Set("flows", input.Collection{Snapshot: mk(2)})
	h := New(Options{Latest: l, Inputs: []string{"flows"}})
	for _, target := range []string{"/api/v1/flows", "/api/v1/flows?pid=1007"} {
		b.Run(target, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			var w countingWriter
			for b.Loop() {
				w = countingWriter{h: http.Header{}}
				h.ServeHTTP(&w, req)
				if w.status != 200 {
					b.Fatal(w.status)
				}
			}
			b.ReportMetric(float64(w.n), "bytes/answer")
		})
	}
}

// countingWriter is a client that reads the answer as it comes and keeps
// nothing of it.
type countingWriter struct {
	h      http.Header
	status int
	n      int
}

func (c *countingWriter) Header() http.Header { return c.h }
func (c *countingWriter) WriteHeader(s int)   { c.status = s }
func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = 200
	}
	c.n += len(p)
	return len(p), nil
}
