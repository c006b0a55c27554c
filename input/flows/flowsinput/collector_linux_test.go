package flowsinput

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// collect collects once and builds each flow's event as the input does,
// with its delta against the collector's previous collection (none here:
// these tests collect once).
func collect(t *testing.T, c *flows.Collector) []flows.Flow {
	t.Helper()
	snap, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return snap.Flows
}

// event is f's event without a delta, at the collection time.
func event(f *flows.Flow) pipeline.Event {
	return Event(f, flows.FlowDelta{}, time.Now(), input.Times{})
}

func namespaceOf(t testing.TB, ns *nstest.Netns) flows.Namespace {
	return flows.Namespace{Inode: flowtest.Inode(t, ns), Path: ns.Path(), Name: ns.Name}
}

// collectorIn points a collector at the given namespaces only.
func collectorIn(t testing.TB, o flows.Options, nss ...flows.Namespace) *flows.Collector {
	t.Helper()
	o.Namespaces = func() ([]flows.Namespace, error) { return nss, nil }
	c, err := flows.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// only returns the single flow with the given local and remote endpoints.
func only(t *testing.T, fl []flows.Flow, proto uint8, local, remote string) *flows.Flow {
	t.Helper()
	var got []*flows.Flow
	for i := range fl {
		f := &fl[i]
		if f.Protocol == proto && f.Local.String() == local && f.Remote.String() == remote {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one %s flow %s -> %s, got %d in %s", flows.TransportName(proto), local, remote, len(got), dumpFlows(fl))
	}
	return got[0]
}

func dumpFlows(fl []flows.Flow) string {
	var b strings.Builder
	for _, f := range fl {
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
	server, client := flowtest.Start(t, ns), flowtest.Start(t, ns)
	addr := server.Do(t, "listen tcp 127.0.0.1:5001")
	cLocal, cRemote := splitPair(client.Do(t, "dial tcp %s", addr))
	sLocal, sRemote := splitPair(server.Do(t, "accept"))
	client.Do(t, "send %d", 1<<20)
	server.Do(t, "recv %d", 1<<20)
	client.Do(t, "sync")
	server.Do(t, "send %d", 64<<10)
	client.Do(t, "recv %d", 64<<10)
	server.Do(t, "sync")

	c := collectorIn(t, flows.Options{States: 1<<stateEstablished | 1<<stateListen}, namespaceOf(t, ns))
	snap, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	fl := snap.Flows
	// The first collection: Diff against nothing.
	deltas := flows.Diff(flows.Snapshot{}, snap)
	if len(fl) != 3 {
		t.Fatalf("want listener + 2 connection ends, got %d: %s", len(fl), dumpFlows(fl))
	}
	comm := flowtest.Comm(t)

	cf := only(t, fl, flows.ProtocolTCP, cLocal, cRemote)
	sf := only(t, fl, flows.ProtocolTCP, sLocal, sRemote)
	lf := only(t, fl, flows.ProtocolTCP, "127.0.0.1:5001", "0.0.0.0:0")
	ino := namespaceOf(t, ns).Inode

	tests := []struct {
		name                 string
		f                    *flows.Flow
		dir                  flows.Direction
		state                uint8
		pid                  int
		bytesAcked, bytesRcv uint64
		out, in              uint64
	}{
		// The active opener's SYN is one sequence number inside
		// bytes_acked; the passive side's is not counted (package doc).
		{"client", cf, flows.Outbound, stateEstablished, client.PID(), 1<<20 + 1, 64 << 10, 1 << 20, 64 << 10},
		{"server", sf, flows.Inbound, stateEstablished, server.PID(), 64 << 10, 1 << 20, 64 << 10, 1 << 20},
		{"listener", lf, flows.Listening, stateListen, server.PID(), 0, 0, 0, 0},
	}
	for _, tt := range tests {
		f := tt.f
		if f.Direction != tt.dir || f.State != tt.state || f.Netns != ino || f.NetnsName != ns.Name || f.Family != flows.FamilyIPv4 {
			t.Errorf("%s: direction %s state %d netns %d %q family %d, want %s %d %d %q %d",
				tt.name, f.Direction, f.State, f.Netns, f.NetnsName, f.Family, tt.dir, tt.state, ino, ns.Name, flows.FamilyIPv4)
		}
		hasDelta := deltas[indexOf(fl, f)].OK
		if f.Inode == 0 || f.Final || hasDelta || !f.HasTCP {
			t.Errorf("%s: inode %d final %v hasDelta %v hasTCP %v", tt.name, f.Inode, f.Final, hasDelta, f.HasTCP)
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
	ce, se := event(cf).Fields, event(sf).Fields
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
	le := mustM(event(lf).Fields)
	if _, ok := le.GetValue("destination"); ok {
		t.Errorf("listening socket has a destination: %v", le)
	}
	checkField(t, "listener", le, "network.direction", "unknown")
	checkField(t, "listener", le, "fleutan.flow.direction", "listening")
}

func TestCollectorIPv6AndUDP(t *testing.T) {
	ns := nstest.New(t)
	server, client, udpSrv, udpCli := flowtest.Start(t, ns), flowtest.Start(t, ns), flowtest.Start(t, ns), flowtest.Start(t, ns)
	server.Do(t, "listen tcp [::1]:6001")
	cLocal, cRemote := splitPair(client.Do(t, "dial tcp [::1]:6001"))
	sLocal, sRemote := splitPair(server.Do(t, "accept"))
	client.Do(t, "send 1000")
	server.Do(t, "recv 1000")
	client.Do(t, "sync")
	udpSrv.Do(t, "listen udp 127.0.0.1:7001")
	uLocal, uRemote := splitPair(udpCli.Do(t, "dial udp 127.0.0.1:7001"))

	c := collectorIn(t, flows.Options{States: 1<<stateEstablished | 1<<stateListen}, namespaceOf(t, ns))
	fl := collect(t, c)
	if len(fl) != 5 {
		t.Fatalf("want 5 fl, got %d: %s", len(fl), dumpFlows(fl))
	}
	tests := []struct {
		name          string
		proto         uint8
		local, remote string
		family        uint8
		state         uint8
		dir           flows.Direction
		pid           int
	}{
		{"tcp6 listener", flows.ProtocolTCP, "[::1]:6001", "[::]:0", flows.FamilyIPv6, stateListen, flows.Listening, server.PID()},
		{"tcp6 client", flows.ProtocolTCP, cLocal, cRemote, flows.FamilyIPv6, stateEstablished, flows.Outbound, client.PID()},
		{"tcp6 server", flows.ProtocolTCP, sLocal, sRemote, flows.FamilyIPv6, stateEstablished, flows.Inbound, server.PID()},
		{"udp unconnected", flows.ProtocolUDP, "127.0.0.1:7001", "0.0.0.0:0", flows.FamilyIPv4, stateClose, flows.Listening, udpSrv.PID()},
		{"udp connected", flows.ProtocolUDP, uLocal, uRemote, flows.FamilyIPv4, stateEstablished, flows.Outbound, udpCli.PID()},
	}
	for _, tt := range tests {
		f := only(t, fl, tt.proto, tt.local, tt.remote)
		if f.Family != tt.family || f.State != tt.state || f.Direction != tt.dir {
			t.Errorf("%s: family %d state %d direction %s, want %d %d %s", tt.name, f.Family, f.State, f.Direction, tt.family, tt.state, tt.dir)
		}
		if f.Process == nil || f.Process.PID != tt.pid {
			t.Errorf("%s: process %+v, want pid %d", tt.name, f.Process, tt.pid)
		}
		if tt.proto == flows.ProtocolUDP && f.HasTCP {
			t.Errorf("%s: UDP flow with tcp_info", tt.name)
		}
	}
	cf := only(t, fl, flows.ProtocolTCP, cLocal, cRemote)
	if cf.BytesOut() != 1000 || cf.TCP.BytesAcked != 1001 {
		t.Errorf("tcp6 client payload %d acked %d, want 1000 1001", cf.BytesOut(), cf.TCP.BytesAcked)
	}
	m := mustM(event(cf).Fields)
	checkField(t, "tcp6 client", m, "network.type", "ipv6")
	checkField(t, "tcp6 client", m, "destination.ip", "::1")
}

func TestCollectorProcessGoneBeforeLookup(t *testing.T) {
	ns := nstest.New(t)
	h := flowtest.Start(t, ns)
	h.Do(t, "listen tcp 127.0.0.1:5004")
	// the owner exits between dump and /proc walk
	c := collectorIn(t, flows.Options{Protocols: []uint8{flows.ProtocolTCP}, AfterDump: h.Stop}, namespaceOf(t, ns))
	fl := collect(t, c)
	f := only(t, fl, flows.ProtocolTCP, "127.0.0.1:5004", "0.0.0.0:0")
	if f.Process != nil {
		t.Errorf("process of an exited owner: %+v", f.Process)
	}
	m := mustM(event(f).Fields)
	if _, ok := m.GetValue("process"); ok {
		t.Errorf("event has process fields: %v", m)
	}
}

// indexOf is the index of f, a pointer into fl.
func indexOf(fl []flows.Flow, f *flows.Flow) int {
	for i := range fl {
		if &fl[i] == f {
			return i
		}
	}
	return -1
}
