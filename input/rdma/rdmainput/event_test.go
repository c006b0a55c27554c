package rdmainput

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/input/rdma"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// pair is the two ends of one rping connection on one rxe device, as the
// collector reports them: the client from an ephemeral port, the server
// on the listening port (inbound).
func pair(sqC, sqS uint32) rdma.Snapshot {
	srv := netip.MustParseAddrPort("10.77.0.1:7471")
	cli := netip.MustParseAddrPort("10.77.0.1:40001")
	return rdma.Snapshot{
		Devices: []rdma.Device{{Index: 1, Name: "rxe0", Protocol: "roce", Ports: []rdma.Port{{Index: 1, State: "ACTIVE", Netdev: "veth0",
			Counters: map[string]uint64{"sent_pkts": uint64(sqC + sqS), "rcvd_pkts": uint64(sqC + sqS)}}}}},
		QPs: []rdma.QP{
			{DeviceIndex: 1, Device: "rxe0", Port: 1, LQPN: 1, Type: "GSI", State: "RTS", KernelOwner: "ib_core"},
			{DeviceIndex: 1, Device: "rxe0", Port: 1, LQPN: 17, RQPN: 18, Type: "RC", State: "RTS", SQPSN: sqC, RQPSN: sqS, PID: 100,
				Process: &process.Process{PID: 100, Name: "rping", UID: 0, User: "root"}, Netns: 4026531840,
				CM: &rdma.CMID{ID: 3, LQPN: 17, PortSpace: "tcp", State: "CONNECT", Src: cli, Dst: srv, PID: 100}},
			{DeviceIndex: 1, Device: "rxe0", Port: 1, LQPN: 18, RQPN: 17, Type: "RC", State: "RTS", SQPSN: sqS, RQPSN: sqC, PID: 101,
				Process: &process.Process{PID: 101, Name: "rping", UID: 0, User: "root"}, Netns: 4026531840,
				CM: &rdma.CMID{ID: 4, LQPN: 18, PortSpace: "tcp", State: "CONNECT", Src: srv, Dst: cli, Inbound: true, PID: 101}},
		},
	}
}

func get(t *testing.T, m pipeline.M, key string) any {
	t.Helper()
	v, ok := m.GetValue(key)
	if !ok {
		t.Errorf("no %s in %v", key, m)
	}
	return v
}

// TestQueuePairEventsAcrossPeriods: the first collection's queue pair
// events have no delta and there are no counter events; the next has the
// PSN deltas, both ends with the initiator (the client) as source, one
// flow id, and the counters' deltas; a queue pair that went gets exactly
// one final event; kernel queue pairs only with kernel_qps.
func TestQueuePairEventsAcrossPeriods(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s1, s2 := pair(100, 200), pair(140, 280)
	s1.Time, s2.Time = t0, t0.Add(10*time.Second)
	cfg := DefaultConfig()
	times := input.Times{Window: 10 * time.Second}

	first := events(rdma.Diff(rdma.Snapshot{}, s1), s1, true, cfg, times)
	if len(first) != 2 {
		t.Fatalf("first collection: %d events, want the 2 user queue pairs: %v", len(first), first)
	}
	if _, ok := first[0].Fields.GetValue("fleutan.rdma.delta"); ok {
		t.Errorf("first collection has a delta: %v", first[0].Fields)
	}

	evs := events(rdma.Diff(s1, s2), s2, false, cfg, times)
	if len(evs) != 4 {
		t.Fatalf("%d events, want 2 queue pairs and 2 counters: %v", len(evs), evs)
	}
	c, s := evs[0].Fields, evs[1].Fields
	for key, want := range map[string]any{
		"event.dataset":              Dataset,
		"event.duration":             int64(10 * time.Second),
		"network.transport":          "roce",
		"network.type":               "ipv4",
		"network.direction":          "egress",
		"source.ip":                  "10.77.0.1",
		"source.port":                40001,
		"destination.port":           7471,
		"process.name":               "rping",
		"process.pid":                100,
		"user.name":                  "root",
		"fleutan.rdma.scope":         "qp",
		"fleutan.rdma.device":        "rxe0",
		"fleutan.rdma.netdev":        "veth0",
		"fleutan.rdma.qp.lqpn":       int64(17),
		"fleutan.rdma.qp.rqpn":       int64(18),
		"fleutan.rdma.qp.type":       "RC",
		"fleutan.rdma.delta.sq_psn":  int64(40),
		"fleutan.rdma.delta.rq_psn":  int64(80),
		"fleutan.rdma.local.port":    40001,
		"fleutan.rdma.remote.port":   7471,
		"fleutan.rdma.cm.port_space": "tcp",
		"fleutan.rdma.final":         false,
		"fleutan.rdma.netns":         int64(4026531840),
	} {
		if got := get(t, c, key); !reflect.DeepEqual(got, want) {
			t.Errorf("client %s = %#v, want %#v", key, got, want)
		}
	}
	for key, want := range map[string]any{
		"network.direction":         "ingress",
		"source.port":               40001,
		"destination.port":          7471,
		"fleutan.rdma.local.port":   7471,
		"fleutan.rdma.delta.sq_psn": int64(80),
		"process.pid":               101,
	} {
		if got := get(t, s, key); !reflect.DeepEqual(got, want) {
			t.Errorf("server %s = %#v, want %#v", key, got, want)
		}
	}
	if a, b := get(t, c, "fleutan.rdma.flow_id"), get(t, s, "fleutan.rdma.flow_id"); a != b || a == "" {
		t.Errorf("flow ids %v and %v, want one for both ends", a, b)
	}
	if evs[0].Series == evs[1].Series {
		t.Errorf("both ends have series %q", evs[0].Series)
	}
	for i, want := range []struct {
		name  string
		delta int64
	}{{"rcvd_pkts", 120}, {"sent_pkts", 120}} {
		f := evs[2+i].Fields
		if get(t, f, "fleutan.rdma.scope") != "counter" || get(t, f, "fleutan.rdma.counter.name") != want.name ||
			get(t, f, "fleutan.rdma.counter.delta") != want.delta || get(t, f, "fleutan.rdma.counter.rate") != float64(want.delta)/10 {
			t.Errorf("counter event %d: %v, want %s up by %d", i, f, want.name, want.delta)
		}
	}

	// The client's queue pair goes.
	s3 := pair(150, 300)
	s3.Time = t0.Add(20 * time.Second)
	s3.QPs = append(s3.QPs[:1], s3.QPs[2])
	cfg.Counters = false
	cfg.KernelQPs = true
	evs = events(rdma.Diff(s2, s3), s3, false, cfg, times)
	finals := 0
	for _, e := range evs {
		if get(t, e.Fields, "fleutan.rdma.final") == true {
			finals++
			if get(t, e.Fields, "process.pid") != 100 || get(t, e.Fields, "fleutan.rdma.qp.sq_psn") != int64(140) {
				t.Errorf("final event %v, want the client's last state", e.Fields)
			}
			if _, ok := e.Fields.GetValue("fleutan.rdma.delta"); ok {
				t.Errorf("final event has a delta")
			}
		}
	}
	if finals != 1 || len(evs) != 3 {
		t.Errorf("%d events with %d final, want the kernel QP, the server and one final: %v", len(evs), finals, evs)
	}
	if get(t, evs[0].Fields, "fleutan.rdma.kernel_owner") != "ib_core" {
		t.Errorf("kernel queue pair event %v", evs[0].Fields)
	}
}

func TestTransportNames(t *testing.T) {
	for in, want := range map[string]string{"roce": "roce", "ib": "infiniband", "iw": "iwarp", "opa": "opa", "": "unknown"} {
		if got := Transport(in); got != want {
			t.Errorf("Transport(%q) = %q, want %q", in, got, want)
		}
	}
}
