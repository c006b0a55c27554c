package qdisc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/fleutan/fleutanbeat/input/qdisc"
)

// Collect the qdiscs of this namespace twice and report their traffic in
// between. What that is depends on the host, so the example prints
// whether both collections worked and Diff gave a delta for each qdisc.
func Example() {
	c, err := qdisc.New(qdisc.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	prev, err1 := c.Collect(context.Background())
	cur, err2 := c.Collect(context.Background())
	deltas := qdisc.Diff(prev, cur)
	fmt.Println(err1 == nil, err2 == nil, len(deltas) == len(cur.Qdiscs))
	// Output: true true true
}

// A collector with bad Options fails at New, naming the value.
func ExampleNew() {
	_, err := qdisc.New(qdisc.Options{Devices: []string{"eth["}})
	fmt.Println(err)
	// Output: qdisc: device pattern 0, "eth[", is not a device name or shell pattern
}

// Diff gives each qdisc of the current snapshot its change since the
// previous one; the snapshots here are built by hand.
func ExampleDiff() {
	dev := &qdisc.Device{Netns: 4026531840, Index: 2, Name: "eth0", TxQueues: 1}
	t0 := time.Unix(100, 0)
	t1 := t0.Add(10 * time.Second)
	root := qdisc.Qdisc{Scope: qdisc.ScopeQdisc, Device: dev, Kind: "fq_codel", Handle: 0x80010000, Parent: 0xFFFFFFFF, TxQueue: -1,
		Counters: qdisc.Counters{Bytes: 1_000_000, Packets: 1000}, Time: t0}
	prev := qdisc.Snapshot{Time: t0, Qdiscs: []qdisc.Qdisc{root}, Namespaces: []qdisc.Namespace{{Inode: 4026531840}}}
	root.Counters, root.Time = qdisc.Counters{Bytes: 3_500_000, Packets: 3000, Drops: 4}, t1
	cur := qdisc.Snapshot{Time: t1, Qdiscs: []qdisc.Qdisc{root}, Namespaces: []qdisc.Namespace{{Inode: 4026531840, Previous: t0}}}

	for i, d := range qdisc.Diff(prev, cur) {
		q := cur.Qdiscs[i]
		fmt.Printf("%s %s: %d bytes, %d drops in %s: %.0f bit/s\n", q.Series(), qdisc.FormatHandle(q.Handle),
			d.Delta.Bytes, d.Delta.Drops, d.Elapsed, float64(d.Delta.Bytes)*8/d.Elapsed.Seconds())
	}
	// Output: 4026531840/eth0/qdisc/8001:/root/fq_codel 8001:: 2500000 bytes, 4 drops in 10s: 2000000 bit/s
}
