package rdma

import (
	"reflect"
	"testing"
	"time"
)

// TestDiffAcrossSnapshots: PSN deltas wrap at 2^24; a QPN taken by
// another owner is a final delta for the old queue pair and a new one;
// counters give deltas and rates, a counter that went down counts from 0
// and is named in Reset, and a port or counter seen first has no change.
func TestDiffAcrossSnapshots(t *testing.T) {
	t0 := time.Unix(100, 0)
	port := func(c map[string]uint64) []Device {
		return []Device{{Index: 0, Name: "rxe0", Ports: []Port{{Index: 1, Counters: c}}}}
	}
	prev := Snapshot{Time: t0, Devices: port(map[string]uint64{"sent_pkts": 100, "rcvd_pkts": 50, "link_downed": 3}),
		QPs: []QP{
			{Device: "rxe0", LQPN: 17, Type: "RC", SQPSN: psnMask - 1, RQPSN: 10, PID: 7},
			{Device: "rxe0", LQPN: 18, Type: "RC", SQPSN: 5, PID: 7},
		}}
	cur := Snapshot{Time: t0.Add(4 * time.Second), Devices: port(map[string]uint64{"sent_pkts": 140, "rcvd_pkts": 58, "link_downed": 1, "send_err": 9}),
		QPs: []QP{
			{Device: "rxe0", LQPN: 17, Type: "RC", SQPSN: 2, RQPSN: 30, PID: 7},
			{Device: "rxe0", LQPN: 18, Type: "UD", SQPSN: 0, PID: 8},
			{Device: "rxe0", LQPN: 19, Type: "RC", PID: 7},
		}}
	d := Diff(prev, cur)
	type row struct {
		lqpn, pid  int
		new, final bool
		sq, rq     uint32
	}
	var got []row
	for _, q := range d.QPs {
		got = append(got, row{int(q.QP.LQPN), q.QP.PID, q.New, q.Final, q.SQPSN, q.RQPSN})
	}
	want := []row{{17, 7, false, false, 4, 20}, {18, 8, true, false, 0, 0}, {19, 7, true, false, 0, 0}, {18, 7, false, true, 0, 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("queue pair deltas %+v\nwant %+v", got, want)
	}
	if d.Period != 4*time.Second || len(d.Ports) != 1 {
		t.Fatalf("period %s, ports %+v", d.Period, d.Ports)
	}
	p := d.Ports[0]
	wantC := map[string]uint64{"sent_pkts": 40, "rcvd_pkts": 8, "link_downed": 1, "send_err": 0}
	wantR := map[string]float64{"sent_pkts": 10, "rcvd_pkts": 2, "link_downed": 0.25, "send_err": 0}
	if !reflect.DeepEqual(p.Counters, wantC) || !reflect.DeepEqual(p.Rates, wantR) || !reflect.DeepEqual(p.Reset, []string{"link_downed"}) {
		t.Errorf("port delta %+v, want counters %v, rates %v, reset [link_downed]", p, wantC, wantR)
	}

	first := Diff(Snapshot{}, cur)
	if first.Period != 0 || first.QPs[0].New || first.Ports[0].Counters["sent_pkts"] != 0 || len(first.Ports[0].Rates) != 0 {
		t.Errorf("first Diff %+v: want no period, nothing new, no change, no rates", first)
	}
}
