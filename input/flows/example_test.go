package flows_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
)

// Collect the TCP sockets of this namespace twice and report each flow's
// payload over the period in between. What that report says depends on
// the host, so it goes to io.Discard here; the example prints whether
// both collections worked.
func Example() {
	c, err := flows.New(flows.Options{Protocols: []uint8{flows.ProtocolTCP}, NoProcesses: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	prev, err1 := c.Collect(context.Background())
	cur, err2 := c.Collect(context.Background())
	deltas := flows.Diff(prev, cur)
	for i, f := range cur.Flows {
		if d := deltas[i]; d.OK && d.BytesIn+d.BytesOut > 0 {
			fmt.Fprintf(io.Discard, "%s %s: %d bytes in, %d out\n", f.Key(), flows.StateName(f.State), d.BytesIn, d.BytesOut)
		}
	}
	fmt.Println(err1 == nil, err2 == nil, len(deltas) == len(cur.Flows))
	// Output: true true true
}

// A collector with bad Options fails at New, naming the value.
func ExampleNew() {
	_, err := flows.New(flows.Options{Protocols: []uint8{1}})
	fmt.Println(err)
	// Output: flows: protocol 1 is not TCP (6) or UDP (17)
}

// Diff gives each flow of the current snapshot its change since the
// previous one; the snapshots here are built by hand.
func ExampleDiff() {
	ap := netip.MustParseAddrPort
	conn := flows.Flow{
		Netns: 4026531840, Family: flows.FamilyIPv4, Protocol: flows.ProtocolTCP, State: 1, // established
		Local: ap("192.0.2.1:40000"), Remote: ap("192.0.2.2:443"), Inode: 1234,
		Direction: flows.Outbound, HasTCP: true,
		// bytes_acked counts the SYN: 1,000 payload bytes sent.
		TCP: flows.TCPInfo{BytesAcked: 1001, BytesReceived: 5000, SegsOut: 10, SegsIn: 8},
	}
	ns := []flows.Namespace{{Inode: 4026531840, Known: true}}
	prev := flows.Snapshot{Time: time.Unix(100, 0), Namespaces: ns, Flows: []flows.Flow{conn}}
	conn.TCP = flows.TCPInfo{BytesAcked: 3001, BytesReceived: 5500, SegsOut: 15, SegsIn: 12}
	cur := flows.Snapshot{Time: time.Unix(110, 0), Namespaces: ns, Flows: []flows.Flow{conn}}

	for i, d := range flows.Diff(prev, cur) {
		f := cur.Flows[i]
		fmt.Printf("%s %s: in %d out %d bytes, %d/%d segments\n", f.Key(), f.Direction, d.BytesIn, d.BytesOut, d.SegsIn, d.SegsOut)
	}
	// A zero prev is a first collection: no deltas.
	fmt.Println(flows.Diff(flows.Snapshot{}, cur)[0].OK)
	// Output:
	// 4026531840/tcp/192.0.2.1:40000/192.0.2.2:443/1234 outbound: in 500 out 2000 bytes, 4/5 segments
	// false
}

// Filter keeps the flows a caller asks for; the adapter parses the YAML
// options into one.
func ExampleFilter() {
	f := flows.Filter{
		CIDRInclude: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		PortExclude: []flows.PortRange{{Lo: 22, Hi: 22}},
	}
	for _, fl := range []flows.Flow{
		{Local: netip.MustParseAddrPort("10.1.0.1:40000"), Remote: netip.MustParseAddrPort("10.2.0.1:443"), Direction: flows.Outbound},
		{Local: netip.MustParseAddrPort("10.1.0.1:22"), Remote: netip.MustParseAddrPort("10.2.0.1:50000"), Direction: flows.Inbound},
		{Local: netip.MustParseAddrPort("10.1.0.1:40001"), Remote: netip.MustParseAddrPort("192.0.2.1:443"), Direction: flows.Outbound},
	} {
		fmt.Println(fl.Remote, f.Keep(&fl))
	}
	// Output:
	// 10.2.0.1:443 true
	// 10.2.0.1:50000 false
	// 192.0.2.1:443 false
}

// StateMask takes ss(8)'s state names for Options.States.
func ExampleStateMask() {
	est, _ := flows.StateMask("established")
	lst, _ := flows.StateMask("listening")
	_, ok := flows.StateMask("bogus")
	fmt.Printf("%#x %v %s\n", est|lst, ok, flows.StateName(10))
	// Output: 0x402 false listen
}
