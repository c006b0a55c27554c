package flows

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func collect(t *testing.T, c *Collector) []Flow {
	t.Helper()
	flows, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return flows
}

// only returns the single flow with the given local and remote endpoints.
func only(t *testing.T, flows []Flow, proto uint8, local, remote string) *Flow {
	t.Helper()
	var got []*Flow
	for i := range flows {
		f := &flows[i]
		if f.Protocol == proto && f.Local.String() == local && f.Remote.String() == remote {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one %s flow %s -> %s, got %d in %s", TransportName(proto), local, remote, len(got), dumpFlows(flows))
	}
	return got[0]
}

func dumpFlows(flows []Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString("\n  " + f.Key().String() + " " + string(f.Direction))
		if f.Final {
			b.WriteString(" final")
		}
	}
	return b.String()
}

func splitPair(s string) (string, string) {
	a, b, _ := strings.Cut(s, " ")
	return a, b
}

func TestCollectorTCPBytesEndpointsAndProcesses(t *testing.T) {
	ns := nstest.New(t)
	server, client := startHelper(t, ns), startHelper(t, ns)
	addr := server.do(t, "listen tcp 127.0.0.1:5001")
	cLocal, cRemote := splitPair(client.do(t, "dial tcp %s", addr))
	sLocal, sRemote := splitPair(server.do(t, "accept"))
	client.do(t, "send %d", 1<<20)
	server.do(t, "recv %d", 1<<20)
	client.do(t, "sync")
	server.do(t, "send %d", 64<<10)
	client.do(t, "recv %d", 64<<10)
	server.do(t, "sync")

	c := collectorIn(t, CollectorOptions{States: 1<<stateEstablished | 1<<stateListen}, namespaceOf(t, ns))
	flows := collect(t, c)
	if len(flows) != 3 {
		t.Fatalf("want listener + 2 connection ends, got %d: %s", len(flows), dumpFlows(flows))
	}
	comm := testComm(t)

	cf := only(t, flows, protoTCP, cLocal, cRemote)
	sf := only(t, flows, protoTCP, sLocal, sRemote)
	lf := only(t, flows, protoTCP, "127.0.0.1:5001", "0.0.0.0:0")
	ino := namespaceOf(t, ns).Inode

	tests := []struct {
		name                 string
		f                    *Flow
		dir                  Direction
		state                uint8
		pid                  int
		bytesAcked, bytesRcv uint64
		out, in              uint64
	}{
		// The active opener's SYN is one sequence number inside
		// bytes_acked; the passive side's is not counted (package doc).
		{"client", cf, Outbound, stateEstablished, client.pid(), 1<<20 + 1, 64 << 10, 1 << 20, 64 << 10},
		{"server", sf, Inbound, stateEstablished, server.pid(), 64 << 10, 1 << 20, 64 << 10, 1 << 20},
		{"listener", lf, Listening, stateListen, server.pid(), 0, 0, 0, 0},
	}
	for _, tt := range tests {
		f := tt.f
		if f.Direction != tt.dir || f.State != tt.state || f.Netns != ino || f.NetnsName != ns.Name || f.Family != afInet {
			t.Errorf("%s: direction %s state %d netns %d %q family %d, want %s %d %d %q %d",
				tt.name, f.Direction, f.State, f.Netns, f.NetnsName, f.Family, tt.dir, tt.state, ino, ns.Name, afInet)
		}
		if f.Inode == 0 || f.Final || f.HasDelta || !f.HasTCP {
			t.Errorf("%s: inode %d final %v hasDelta %v hasTCP %v", tt.name, f.Inode, f.Final, f.HasDelta, f.HasTCP)
		}
		if f.Process == nil {
			t.Errorf("%s: no process", tt.name)
		} else if f.Process.PID != tt.pid || f.Process.Name != comm {
			t.Errorf("%s: process %d %q, want %d %q", tt.name, f.Process.PID, f.Process.Name, tt.pid, comm)
		} else if f.Process.UID != 0 || f.Process.User != "root" {
			// The helpers run as root; the name comes from /etc/passwd.
			t.Errorf("%s: user %d %q, want 0 \"root\"", tt.name, f.Process.UID, f.Process.User)
		}
		if f.TCP.BytesAcked != tt.bytesAcked || f.TCP.BytesReceived != tt.bytesRcv {
			t.Errorf("%s: bytes_acked %d bytes_received %d, want %d %d", tt.name, f.TCP.BytesAcked, f.TCP.BytesReceived, tt.bytesAcked, tt.bytesRcv)
		}
		if f.BytesOut() != tt.out || f.BytesIn() != tt.in {
			t.Errorf("%s: payload out %d in %d, want %d %d", tt.name, f.BytesOut(), f.BytesIn(), tt.out, tt.in)
		}
	}
	// tcpi_bytes_sent counts retransmitted bytes again (tcp_info(7) in
	// linux/tcp.h: "RFC4898 tcpEStatsPerfHCDataOctetsOut"); a loaded
	// machine retransmits even on loopback, so the data sent is
	// bytes_sent - bytes_retrans, exactly.
	if got := cf.TCP.BytesSent - cf.TCP.BytesRetrans; got != 1<<20 {
		t.Errorf("client bytes_sent-bytes_retrans = %d (%d-%d), want %d", got, cf.TCP.BytesSent, cf.TCP.BytesRetrans, 1<<20)
	}
	if got := sf.TCP.BytesSent - sf.TCP.BytesRetrans; got != 64<<10 {
		t.Errorf("server bytes_sent-bytes_retrans = %d (%d-%d), want %d", got, sf.TCP.BytesSent, sf.TCP.BytesRetrans, 64<<10)
	}

	// ECS view: the client initiated, so it is the source on both ends.
	ce, se := cf.Event(c.opts.Now(), input.Times{}).Fields, sf.Event(c.opts.Now(), input.Times{}).Fields
	for _, e := range []struct {
		name   string
		fields pipeline.M
	}{{"client", ce}, {"server", se}} {
		m := mustM(e.fields)
		checkField(t, e.name, m, "source.ip", "127.0.0.1")
		checkField(t, e.name, m, "source.port", int(netip.MustParseAddrPort(cLocal).Port()))
		checkField(t, e.name, m, "source.bytes", uint64(1<<20))
		checkField(t, e.name, m, "destination.port", 5001)
		checkField(t, e.name, m, "destination.bytes", uint64(64<<10))
		checkField(t, e.name, m, "network.bytes", uint64(1<<20+64<<10))
	}
	le := mustM(lf.Event(c.opts.Now(), input.Times{}).Fields)
	if _, ok := le.GetValue("destination"); ok {
		t.Errorf("listening socket has a destination: %v", le)
	}
	checkField(t, "listener", le, "network.direction", "unknown")
	checkField(t, "listener", le, "fleutan.flow.direction", "listening")
}

func TestCollectorIPv6AndUDP(t *testing.T) {
	ns := nstest.New(t)
	server, client, udpSrv, udpCli := startHelper(t, ns), startHelper(t, ns), startHelper(t, ns), startHelper(t, ns)
	server.do(t, "listen tcp [::1]:6001")
	cLocal, cRemote := splitPair(client.do(t, "dial tcp [::1]:6001"))
	sLocal, sRemote := splitPair(server.do(t, "accept"))
	client.do(t, "send 1000")
	server.do(t, "recv 1000")
	client.do(t, "sync")
	udpSrv.do(t, "listen udp 127.0.0.1:7001")
	uLocal, uRemote := splitPair(udpCli.do(t, "dial udp 127.0.0.1:7001"))

	c := collectorIn(t, CollectorOptions{States: 1<<stateEstablished | 1<<stateListen}, namespaceOf(t, ns))
	flows := collect(t, c)
	if len(flows) != 5 {
		t.Fatalf("want 5 flows, got %d: %s", len(flows), dumpFlows(flows))
	}
	tests := []struct {
		name          string
		proto         uint8
		local, remote string
		family        uint8
		state         uint8
		dir           Direction
		pid           int
	}{
		{"tcp6 listener", protoTCP, "[::1]:6001", "[::]:0", afInet6, stateListen, Listening, server.pid()},
		{"tcp6 client", protoTCP, cLocal, cRemote, afInet6, stateEstablished, Outbound, client.pid()},
		{"tcp6 server", protoTCP, sLocal, sRemote, afInet6, stateEstablished, Inbound, server.pid()},
		{"udp unconnected", protoUDP, "127.0.0.1:7001", "0.0.0.0:0", afInet, stateClose, Listening, udpSrv.pid()},
		{"udp connected", protoUDP, uLocal, uRemote, afInet, stateEstablished, Outbound, udpCli.pid()},
	}
	for _, tt := range tests {
		f := only(t, flows, tt.proto, tt.local, tt.remote)
		if f.Family != tt.family || f.State != tt.state || f.Direction != tt.dir {
			t.Errorf("%s: family %d state %d direction %s, want %d %d %s", tt.name, f.Family, f.State, f.Direction, tt.family, tt.state, tt.dir)
		}
		if f.Process == nil || f.Process.PID != tt.pid {
			t.Errorf("%s: process %+v, want pid %d", tt.name, f.Process, tt.pid)
		}
		if tt.proto == protoUDP && f.HasTCP {
			t.Errorf("%s: UDP flow with tcp_info", tt.name)
		}
	}
	cf := only(t, flows, protoTCP, cLocal, cRemote)
	if cf.BytesOut() != 1000 || cf.TCP.BytesAcked != 1001 {
		t.Errorf("tcp6 client payload %d acked %d, want 1000 1001", cf.BytesOut(), cf.TCP.BytesAcked)
	}
	m := mustM(cf.Event(c.opts.Now(), input.Times{}).Fields)
	checkField(t, "tcp6 client", m, "network.type", "ipv6")
	checkField(t, "tcp6 client", m, "destination.ip", "::1")
}

func TestCollectorDeltasAcrossPeriodsAndFinal(t *testing.T) {
	ns := nstest.New(t)
	server, client, late := startHelper(t, ns), startHelper(t, ns), startHelper(t, ns)
	server.do(t, "listen tcp 127.0.0.1:5002")
	cLocal, cRemote := splitPair(client.do(t, "dial tcp 127.0.0.1:5002"))
	sLocal, sRemote := splitPair(server.do(t, "accept"))
	client.do(t, "send 5000")
	server.do(t, "recv 5000")
	client.do(t, "sync")

	c := collectorIn(t, CollectorOptions{States: 1 << stateEstablished}, namespaceOf(t, ns))
	// 1: present from the start, so no delta.
	flows := collect(t, c)
	for _, f := range flows {
		if f.HasDelta {
			t.Errorf("first collection: %s has a delta", f.Key())
		}
	}
	first := only(t, flows, protoTCP, cLocal, cRemote).FirstSeen

	// 2: known extra bytes both ways, and a flow born in between.
	client.do(t, "send 1000")
	server.do(t, "recv 1000")
	client.do(t, "sync")
	server.do(t, "send 300")
	client.do(t, "recv 300")
	server.do(t, "sync")
	lLocal, lRemote := splitPair(late.do(t, "dial tcp 127.0.0.1:5002"))
	late.do(t, "send 777")
	// The listener's process accepts the late one as its connection 1.
	lsLocal, lsRemote := splitPair(server.do(t, "accept"))
	server.do(t, "recv 777")
	late.do(t, "sync")
	server.do(t, "use 0")
	flows = collect(t, c)
	type want struct{ in, out uint64 }
	check := func(step string, flows []Flow, cases map[[2]string]want) {
		t.Helper()
		for ep, w := range cases {
			f := only(t, flows, protoTCP, ep[0], ep[1])
			if !f.HasDelta || f.Delta.BytesIn != w.in || f.Delta.BytesOut != w.out {
				t.Errorf("%s: %s -> %s delta %v %+v, want in %d out %d", step, ep[0], ep[1], f.HasDelta, f.Delta, w.in, w.out)
			}
		}
	}
	check("second", flows, map[[2]string]want{
		{cLocal, cRemote}: {in: 300, out: 1000},
		{sLocal, sRemote}: {in: 1000, out: 300},
		// born after the first collection: delta is everything so far
		{lLocal, lRemote}:   {in: 0, out: 777},
		{lsLocal, lsRemote}: {in: 777, out: 0},
	})
	if f := only(t, flows, protoTCP, cLocal, cRemote); !f.FirstSeen.Equal(first) {
		t.Errorf("FirstSeen moved from %v to %v", first, f.FirstSeen)
	}
	if f := only(t, flows, protoTCP, cLocal, cRemote); f.Delta.SegsOut == 0 || f.Delta.SegsIn == 0 {
		t.Errorf("segment deltas are zero: %+v", f.Delta)
	}

	// 3
	client.do(t, "send 20000")
	server.do(t, "recv 20000")
	client.do(t, "sync")
	flows = collect(t, c)
	check("third", flows, map[[2]string]want{
		{cLocal, cRemote}:   {in: 0, out: 20000},
		{sLocal, sRemote}:   {in: 20000, out: 0},
		{lLocal, lRemote}:   {in: 0, out: 0},
		{lsLocal, lsRemote}: {in: 0, out: 0},
	})

	// The late connection goes away: one final report for each end, then
	// none.
	late.stop()
	for _, step := range []string{"after close", "once more"} {
		flows = collect(t, c)
		finals := 0
		for _, f := range flows {
			if f.Final {
				finals++
				if f.HasDelta {
					t.Errorf("%s: final flow with a delta", step)
				}
				if (f.Local.String() != lLocal || f.Remote.String() != lRemote) && (f.Local.String() != lsLocal || f.Remote.String() != lsRemote) {
					t.Errorf("%s: unexpected final %s", step, f.Key())
				}
			}
		}
		want := 2
		if step == "once more" {
			want = 0
		}
		if finals != want {
			t.Errorf("%s: %d final flows, want %d: %s", step, finals, want, dumpFlows(flows))
		}
	}
}

func TestCollectorAllNamespacesTagsEach(t *testing.T) {
	a, b := nstest.New(t), nstest.New(t)
	ha, hb := startHelper(t, a), startHelper(t, b)
	ha.do(t, "listen tcp 127.0.0.1:5003")
	hb.do(t, "listen tcp 127.0.0.1:5003")

	c := NewCollector(CollectorOptions{AllNamespaces: true, Protocols: []uint8{protoTCP}, States: 1 << stateListen, NoProcesses: true})
	t.Cleanup(func() { _ = c.Close() })
	flows := collect(t, c)
	for _, ns := range []struct {
		ns  *nstest.Netns
		pid int
	}{{a, ha.pid()}, {b, hb.pid()}} {
		want := namespaceOf(t, ns.ns)
		n := 0
		for _, f := range flows {
			if f.Netns == want.Inode {
				n++
				if f.NetnsName != want.Name || f.Local.String() != "127.0.0.1:5003" {
					t.Errorf("netns %d: flow %s named %q, want %q", want.Inode, f.Key(), f.NetnsName, want.Name)
				}
			}
		}
		if n != 1 {
			t.Errorf("netns %s (%d): %d flows, want 1: %s", want.Name, want.Inode, n, dumpFlows(flows))
		}
	}
}

func TestCollectorProcessGoneBeforeLookup(t *testing.T) {
	ns := nstest.New(t)
	h := startHelper(t, ns)
	h.do(t, "listen tcp 127.0.0.1:5004")
	c := collectorIn(t, CollectorOptions{Protocols: []uint8{protoTCP}}, namespaceOf(t, ns))
	c.afterDump = func() { h.stop() } // the owner exits between dump and /proc walk
	flows := collect(t, c)
	f := only(t, flows, protoTCP, "127.0.0.1:5004", "0.0.0.0:0")
	if f.Process != nil {
		t.Errorf("process of an exited owner: %+v", f.Process)
	}
	m := mustM(f.Event(c.opts.Now(), input.Times{}).Fields)
	if _, ok := m.GetValue("process"); ok {
		t.Errorf("event has process fields: %v", m)
	}
}

func TestCollectorNamespaceGoneClosesDumperAndFinalsFlows(t *testing.T) {
	a, b := nstest.New(t), nstest.New(t)
	ha, hb := startHelper(t, a), startHelper(t, b)
	ha.do(t, "listen tcp 127.0.0.1:5005")
	hb.do(t, "listen tcp 127.0.0.1:5006")
	nsA, nsB := namespaceOf(t, a), namespaceOf(t, b)
	list := []netns.Namespace{nsA, nsB}
	c := NewCollector(CollectorOptions{Protocols: []uint8{protoTCP}, NoProcesses: true,
		Namespaces: func() ([]netns.Namespace, error) { return list, nil }})
	t.Cleanup(func() { _ = c.Close() })
	if flows := collect(t, c); len(flows) != 2 || c.dumpers.Len() != 2 {
		t.Fatalf("%d flows, %d dumpers, want 2 and 2: %s", len(flows), c.dumpers.Len(), dumpFlows(flows))
	}
	list = list[:1]
	flows := collect(t, c)
	if c.dumpers.Len() != 1 {
		t.Errorf("%d dumpers after netns %d went away, want 1", c.dumpers.Len(), nsB.Inode)
	}
	if len(flows) != 2 || flows[1].Netns != nsB.Inode || !flows[1].Final || flows[0].Final {
		t.Errorf("want the live flow of A and one final of B: %s", dumpFlows(flows))
	}
}

func TestCollectorSkipsUnopenableNamespaceLoggingOnce(t *testing.T) {
	ns := nstest.New(t)
	h := startHelper(t, ns)
	h.do(t, "listen tcp 127.0.0.1:5007")
	var logs bytes.Buffer
	bogus := netns.Namespace{Inode: 1, Path: t.TempDir() + "/missing"}
	c := NewCollector(CollectorOptions{Protocols: []uint8{protoTCP}, NoProcesses: true,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		Namespaces: func() ([]netns.Namespace, error) { return []netns.Namespace{bogus, namespaceOf(t, ns)}, nil }})
	t.Cleanup(func() { _ = c.Close() })
	for range 3 {
		if flows := collect(t, c); len(flows) != 1 {
			t.Fatalf("%d flows, want the one of the good namespace: %s", len(flows), dumpFlows(flows))
		}
	}
	if n := strings.Count(logs.String(), "cannot be opened"); n != 1 {
		t.Errorf("%d log lines about the namespace, want 1:\n%s", n, logs.String())
	}
}
