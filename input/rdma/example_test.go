package rdma_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fleutan/fleutanbeat/input/rdma"
)

// Collect twice and print each process's queue pairs with how far their
// send PSN moved in between. A kernel without RDMA is ErrNotSupported.
func Example() {
	c, err := rdma.New(rdma.Options{})
	if errors.Is(err, rdma.ErrNotSupported) {
		fmt.Println("no RDMA here")
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	prev, _ := c.Collect(context.Background())
	time.Sleep(time.Second)
	cur, _ := c.Collect(context.Background())
	for _, d := range rdma.Diff(prev, cur).QPs {
		if d.QP.PID != 0 && !d.Final {
			fmt.Printf("%s QP %d of pid %d: %d packets sent\n", d.QP.Device, d.QP.LQPN, d.QP.PID, d.SQPSN)
		}
	}
}

// Diff gives each queue pair its PSN moves (modulo 2^24) and each gone
// one a final delta; the snapshots here are built by hand.
func ExampleDiff() {
	t0 := time.Unix(100, 0)
	cm := &rdma.CMID{PortSpace: "tcp", State: "CONNECT", Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.0.0.2:7471")}
	a := rdma.QP{Device: "rxe0", LQPN: 17, RQPN: 30, Type: "RC", State: "RTS", SQPSN: 0xfffff0, RQPSN: 100, PID: 42, CM: cm}
	b := rdma.QP{Device: "rxe0", LQPN: 18, RQPN: 31, Type: "RC", State: "RTS", SQPSN: 5, PID: 42}
	prev := rdma.Snapshot{Time: t0, QPs: []rdma.QP{a, b}}
	a.SQPSN, a.RQPSN = 0x10, 160
	cur := rdma.Snapshot{Time: t0.Add(10 * time.Second), QPs: []rdma.QP{a}}
	for _, d := range rdma.Diff(prev, cur).QPs {
		fmt.Printf("QP %d final %v: sq +%d rq +%d\n", d.QP.LQPN, d.Final, d.SQPSN, d.RQPSN)
	}
	// Output:
	// QP 17 final false: sq +32 rq +60
	// QP 18 final true: sq +0 rq +0
}
