package pathsinput

import (
	"context"
	"net"
	"net/netip"
	"os"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/communityid"
	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/paths/pathtest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type recorder struct{ events []pipeline.Event }

func (r *recorder) Publish(_ context.Context, events ...pipeline.Event) error {
	r.events = append(r.events, events...)
	return nil
}

// newTestInput builds the input from YAML, its flows collector pointed at
// ns.
func newTestInput(t *testing.T, src string, ns *nstest.Netns) *pathsInput {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	in, err := New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0"), input.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	pi := in.(*pathsInput)
	var st unix.Stat_t
	if err := unix.Stat(ns.Path(), &st); err != nil {
		t.Fatal(err)
	}
	nss := []flows.Namespace{{Inode: st.Ino, Path: ns.Path(), Name: ns.Name}}
	pi.flowOpts.Namespaces = func() ([]flows.Namespace, error) { return nss, nil }
	t.Cleanup(func() {
		if pi.coll != nil {
			_ = pi.coll.Close()
		}
	})
	return pi
}

// in runs fn, which opens sockets, inside ns.
func in(t *testing.T, ns *nstest.Netns, fn func() error) {
	t.Helper()
	if err := netns.Do(ns.Path(), fn); err != nil {
		t.Fatal(err)
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

// TestInputTracesThePeersOfSelectedFlows: a TCP flow from the client to
// the server gives one path event with the three routers and the server
// in order, the flow's community id and the test's own process, and one
// event per hop; a flow to a peer outside cidrs.include and a loopback
// flow get no trace. A route change through the parallel router makes
// the next round's path changed, with the first hash as previous.
func TestInputTracesThePeersOfSelectedFlows(t *testing.T) {
	tp := pathtest.New(t)
	var ln net.Listener
	in(t, tp.Server, func() (err error) { ln, err = net.Listen("tcp", "10.80.4.2:8080"); return })
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	var conns []net.Conn
	for _, d := range [][2]string{{"tcp", "10.80.4.2:8080"}, {"udp", "10.80.1.2:53"}} {
		in(t, tp.Client, func() error {
			c, err := net.Dial(d[0], d[1])
			conns = append(conns, c)
			return err
		})
	}
	var lo net.Listener
	in(t, tp.Client, func() (err error) { lo, err = net.Listen("tcp", "127.0.0.1:8081"); return })
	in(t, tp.Client, func() error { c, err := net.Dial("tcp", "127.0.0.1:8081"); conns = append(conns, c); return err })
	t.Cleanup(func() {
		lo.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	tcp := conns[0]
	wantID := communityid.V1(0, flows.ProtocolTCP, netip.MustParseAddrPort(tcp.LocalAddr().String()), netip.MustParseAddrPort("10.80.4.2:8080"))

	pi := newTestInput(t, "interval: 1h\nrate: 1000\nprobe_timeout: 2s\nmax_ttl: 8\ncidrs: {include: [10.80.4.0/24]}\n", tp.Client)
	rec := &recorder{}
	if err := pi.round(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 5 {
		t.Fatalf("%d events, want 1 path and 4 hops: %v", len(rec.events), rec.events)
	}
	hopsWant := [][]string{{"10.80.1.2"}, {"10.80.2.2"}, {"10.80.3.2"}, {"10.80.4.2"}}
	path := rec.events[0].Fields
	for key, want := range map[string]any{
		"event.dataset":                     Dataset,
		"destination.ip":                    "10.80.4.2",
		"fleutan.paths.type":                "path",
		"fleutan.paths.peer.ip":             "10.80.4.2",
		"fleutan.paths.hop_count":           4,
		"fleutan.paths.method":              "udp",
		"fleutan.paths.port":                33434,
		"fleutan.paths.reached":             true,
		"fleutan.paths.changed":             false,
		"fleutan.paths.flows.count":         1,
		"fleutan.paths.flows.community_ids": []string{wantID},
		"fleutan.paths.processes.pid":       []int64{int64(os.Getpid())},
	} {
		if got := get(t, path, key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", key, got, want)
		}
	}
	for _, k := range []string{"fleutan.paths.previous_hash", "fleutan.paths.first_divergent_hop"} {
		if _, ok := path.GetValue(k); ok {
			t.Errorf("first round has %s", k)
		}
	}
	hops := get(t, path, "fleutan.paths.hops").([]any)
	for i, h := range hops {
		hm := h.(pipeline.M)
		recv, _ := hm["received"].(int)
		if !reflect.DeepEqual(hm["addrs"], hopsWant[i]) || hm["ttl"] != i+1 || hm["sent"] != 3 || recv < 1 || !reflect.DeepEqual(hm["loss"], pipeline.M{"pct": float64(3-recv) / 3}) {
			t.Errorf("hop %d: %v, want addrs %v, 3 sent, at least 1 received and the loss of the others", i+1, hm, hopsWant[i])
		}
		he := rec.events[1+i].Fields
		if get(t, he, "fleutan.paths.type") != "hop" || !reflect.DeepEqual(get(t, he, "fleutan.paths.hop.addrs"), hopsWant[i]) ||
			get(t, he, "fleutan.paths.hash") != get(t, path, "fleutan.paths.hash") {
			t.Errorf("hop event %d: %v", i+1, he)
		}
	}
	icmp := hops[3].(pipeline.M)["icmp"].(pipeline.M)
	if icmp["type"] != 3 || icmp["code"] != 3 {
		t.Errorf("last hop ICMP %v, want port unreachable 3/3", icmp)
	}
	first := get(t, path, "fleutan.paths.hash")

	tp.R1.Run(t, "ip", "route", "replace", "10.80.4.0/24", "via", "10.80.5.2")
	rec.events = nil
	if err := pi.round(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 5 {
		t.Fatalf("second round: %d events, want 5", len(rec.events))
	}
	path = rec.events[0].Fields
	if get(t, path, "fleutan.paths.changed") != true || get(t, path, "fleutan.paths.previous_hash") != first || get(t, path, "fleutan.paths.hash") == first {
		t.Errorf("after the route change: changed %v, hash %v, previous %v; first hash %v", get(t, path, "fleutan.paths.changed"),
			get(t, path, "fleutan.paths.hash"), get(t, path, "fleutan.paths.previous_hash"), first)
	}
	if got, want := get(t, path, "fleutan.paths.first_divergent_hop"), (pipeline.M{"ttl": 2, "addrs": []string{"10.80.5.2"}, "previous_addrs": []string{"10.80.2.2"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("first divergent hop %v, want %v", got, want)
	}
	if got := get(t, rec.events[2].Fields, "fleutan.paths.hop.addrs"); !reflect.DeepEqual(got, []string{"10.80.5.2"}) {
		t.Errorf("hop 2 after the change: %v, want [10.80.5.2]", got)
	}
}

// TestInputTCPProbesGoToTheFlowsPort: with method tcp the SYN probes go
// to the flow's own destination port, whose listener answers SYN-ACK at
// the last hop.
func TestInputTCPProbesGoToTheFlowsPort(t *testing.T) {
	tp := pathtest.New(t)
	var ln net.Listener
	in(t, tp.Server, func() (err error) { ln, err = net.Listen("tcp", "[fd80:4::2]:8443"); return })
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	var c net.Conn
	in(t, tp.Client, func() (err error) { c, err = net.Dial("tcp", "[fd80:4::2]:8443"); return })
	t.Cleanup(func() { c.Close() })

	pi := newTestInput(t, "method: tcp\ninterval: 1h\nrate: 1000\nprobe_timeout: 2s\nmax_ttl: 8\n", tp.Client)
	rec := &recorder{}
	if err := pi.round(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 5 {
		t.Fatalf("%d events, want 1 path and 4 hops: %v", len(rec.events), rec.events)
	}
	path := rec.events[0].Fields
	for key, want := range map[string]any{"fleutan.paths.method": "tcp", "fleutan.paths.port": 8443, "fleutan.paths.reached": true} {
		if got := get(t, path, key); got != want {
			t.Errorf("%s = %#v, want %#v", key, got, want)
		}
	}
	hops := get(t, path, "fleutan.paths.hops").([]any)
	for i, want := range []string{"fd80:1::2", "fd80:2::2", "fd80:3::2", "fd80:4::2"} {
		if got := hops[i].(pipeline.M)["addrs"]; !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("hop %d: %v, want [%s]", i+1, got, want)
		}
	}
	last := hops[3].(pipeline.M)
	if last["tcp_flags"] != 0x12 || last["icmp"] != nil {
		t.Errorf("last hop %v: want tcp_flags 18 (SYN-ACK) and no icmp", last)
	}
}
