package elasticsearch

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestFaultDeadHostCountedAndFailedOver: of two hosts, one refuses
// connections. The request that meets it is moved to the other (one
// failover), the dead host is then left alone, and the per-host counters
// say so. Fault injection only: the node kills of the cluster tests show
// the same counters against real nodes.
func TestFaultDeadHostCountedAndFailedOver(t *testing.T) {
	srv, _ := fakeES(t, func(req, item int) int { return 201 })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	live := srv.Listener.Addr().String()

	m := pipeline.NewMetrics()
	cl, err := NewClient(faultConfig("http://"+dead, srv.URL), output.Settings{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const batches = 4
	for i := range batches {
		b := pipeline.NewBatch(flowEvents(i*10, 10, time.Now()))
		if err := cl.Publish(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		for j := range b.Len() {
			if st, _ := b.Status(j); st != pipeline.Acked {
				t.Fatalf("batch %d event %d: status %v", i, j, st)
			}
		}
	}
	tree := m.Tree()
	get := func(name, host string) int64 {
		t.Helper()
		v, _ := tree.GetValue(name)
		fam, ok := v.(pipeline.M)
		if !ok {
			t.Fatalf("%s is %T %v, want a family by host", name, v, v)
		}
		n, _ := fam[host].(int64)
		return n
	}
	if n := get(MetricHostRequests, dead); n != 1 {
		t.Errorf("requests to the dead host %s: %d, want 1 (then marked dead)", dead, n)
	}
	if n := get(MetricHostConnErrors, dead); n != 1 {
		t.Errorf("connection errors of the dead host: %d, want 1", n)
	}
	if n := get(MetricHostRequests, live); n != batches {
		t.Errorf("requests to the live host: %d, want %d", n, batches)
	}
	if n := get(MetricHostConnErrors, live); n != 0 {
		t.Errorf("connection errors of the live host: %d", n)
	}
	if v, _ := tree.GetValue(MetricFailovers); v != int64(1) {
		t.Errorf("failovers = %v, want 1", v)
	}
}
