package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/paths/pathtest"
)

// TestPathsLiveOnRoutedNamespaces runs the tool inside the client
// namespace of the routed topology, which holds a TCP flow to the server
// on IPv4 and one on IPv6: --load traces both peers and prints each path
// (the three routers and the server) with its flow; --delta with --dsts
// and ICMP probes labels the flows and puts the two paths side by side,
// every hop coloured (IPv4 and IPv6 share none); --json carries the
// same traces.
func TestPathsLiveOnRoutedNamespaces(t *testing.T) {
	nstest.RequireRoot(t)
	tp := pathtest.New(t)
	locals := tp.Connect(t, 8080)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fleutan := func(args ...string) string {
		t.Helper()
		c := tp.Client.Command(append([]string{exe}, args...)...)
		c.Env = append(os.Environ(), roleEnv+"=fleutan")
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil || stderr.Len() != 0 {
			t.Fatalf("fleutan %v: %v\n%s%s", args, err, out, stderr.String())
		}
		return string(out)
	}
	flow := func(local, remote string) string {
		l, r := netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)
		return fmt.Sprintf("%-10s%20s#%-20d%20s#%d", "tcp", l.Addr(), l.Port(), r.Addr(), r.Port())
	}
	v4, v6 := flow(locals[0], "10.80.4.2:8080"), flow(locals[1], "[fd80:4::2]:8080")

	want := "|10.80.1.2| <---> |10.80.2.2| <---> |10.80.3.2| <---> |10.80.4.2|\n-------\n" + v4 + "\n-------\n" +
		"|fd80:1::2| <---> |fd80:2::2| <---> |fd80:3::2| <---> |fd80:4::2|\n-------\n" + v6 + "\n-------\n"
	if got := fleutan("paths", "--load", "--rate", "1000", "--max-ttl", "8"); got != want {
		t.Errorf("paths --load:\n%s\nwant\n%s", got, want)
	}

	red := func(s string) string { return colorRed + s + colorReset }
	want = "**>Flows\n" + v4 + "        p0\n" + v6 + "        p1\n\n..>paths\n\n" +
		"p0         p1\n---------  ---------\n" +
		red("10.80.1.2") + "  " + red("fd80:1::2") + "\n" +
		red("10.80.2.2") + "  " + red("fd80:2::2") + "\n" +
		red("10.80.3.2") + "  " + red("fd80:3::2") + "\n" +
		red("10.80.4.2") + "  " + red("fd80:4::2") + "\n"
	if got := fleutan("paths", "--delta", "--dsts", "10.80.4.2", "fd80:4::2", "-m", "icmp", "--rate", "1000", "--max-ttl", "8", "--color", "always"); got != want {
		t.Errorf("paths --delta:\n%s\nwant\n%s", got, want)
	}

	var rep pathsReport
	out := fleutan("paths", "--load", "--json", "-m", "tcp", "--rate", "1000", "--max-ttl", "8")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rep.Paths) != 2 || rep.Paths[0].Method != "tcp" || rep.Paths[0].Port != 8080 || !rep.Paths[0].Reached || rep.Paths[0].Hops[3].TCPFlags != 0x12 {
		t.Errorf("paths --json with TCP probes: %s", out)
	}
}
