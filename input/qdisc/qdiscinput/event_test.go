package qdiscinput

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/input/qdisc"
)

func TestQdiscEventFields(t *testing.T) {
	dev := &qdisc.Device{Netns: 4026531840, NetnsName: "blue", Index: 3, Name: "eth0", TxQueues: 4, XPS: []string{"1", "2", "0", "0"}}
	s := qdisc.Qdisc{
		Scope: qdisc.ScopeQdisc, Device: dev, Kind: "fq_codel", Handle: 0x80010000, Parent: 0x10002, TxQueue: 1,
		Counters: qdisc.Counters{Bytes: 5000, Packets: 5, Drops: 1}, Backlog: 1514, Qlen: 1,
		KindStats: qdisc.KindStats{FQCodel: &qdisc.FQCodel{MaxPacket: 1514}},
	}
	d := qdisc.QdiscDelta{OK: true, Delta: qdisc.Counters{Bytes: 2000, Packets: 2}, Elapsed: 2 * time.Second}
	ts := time.Unix(1700000000, 0)
	// event.duration is the time the deltas cover (Elapsed), not the
	// collection's time, which is fleutan.collection.duration_us.
	times := input.Times{Window: 10 * time.Second, Collection: 3 * time.Millisecond}
	ev := Event(&s, d, ts, times)
	if ev.Series != "4026531840/eth0/qdisc/8001:/1:2/fq_codel" || !ev.Timestamp.Equal(ts) {
		t.Errorf("series %q ts %v", ev.Series, ev.Timestamp)
	}
	for path, want := range map[string]any{
		"event.dataset":                    "fleutan.qdisc",
		"event.duration":                   int64(2e9),
		"fleutan.collection.duration_us":   int64(3000),
		"fleutan.qdisc.scope":              "qdisc",
		"fleutan.qdisc.device":             "eth0",
		"fleutan.qdisc.netns_name":         "blue",
		"fleutan.qdisc.handle":             "8001:",
		"fleutan.qdisc.parent":             "1:2",
		"fleutan.qdisc.root":               false,
		"fleutan.qdisc.tx_queue":           1,
		"fleutan.qdisc.xps_cpus":           "2",
		"fleutan.qdisc.device_tx_queues":   uint64(4),
		"fleutan.qdisc.bytes":              uint64(5000),
		"fleutan.qdisc.backlog_bytes":      uint64(1514),
		"fleutan.qdisc.qlen":               uint64(1),
		"fleutan.qdisc.delta.bytes":        uint64(2000),
		"fleutan.qdisc.delta.packets":      uint64(2),
		"fleutan.qdisc.reset":              false,
		"fleutan.qdisc.rate.bps":           8000.0,
		"fleutan.qdisc.rate.pps":           1.0,
		"fleutan.qdisc.fq_codel.maxpacket": uint64(1514),
		"fleutan.qdisc.fq_codel.ecn_mark":  uint64(0),
	} {
		got, ok := ev.Fields.GetValue(path)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v (%v), want %#v", path, got, ok, want)
		}
	}
	d.OK, s.TxQueue, s.Parent = false, -1, 0xFFFFFFFF // TC_H_ROOT
	ev = Event(&s, d, ts, times)
	// Without a delta: the collection's window.
	if d, _ := ev.Fields.GetValue("event.duration"); d != int64(10e9) {
		t.Errorf("event.duration without a delta = %v, want the window, 10s", d)
	}
	for _, path := range []string{"fleutan.qdisc.delta", "fleutan.qdisc.rate", "fleutan.qdisc.tx_queue", "fleutan.qdisc.xps_cpus"} {
		if _, ok := ev.Fields.GetValue(path); ok {
			t.Errorf("%s present without a delta or queue", path)
		}
	}
	if r, _ := ev.Fields.GetValue("fleutan.qdisc.root"); r != true {
		t.Errorf("root = %v", r)
	}
}

// TestQueueFlowEvents: the events of the queue flows that
// TestJoinFlowsTopPerQueueAndOther (input/qdisc) joins.
func TestQueueFlowEvents(t *testing.T) {
	dev := &qdisc.Device{Netns: 10, Index: 2, Name: "veth0", TxQueues: 2}
	ap := netip.MustParseAddrPort
	proc := &process.Process{PID: 42, PPID: 7, Name: "sender", UID: 1000, User: "alice"}
	out := flows.Flow{Netns: 11, Protocol: 17, Local: ap("10.0.0.1:1000"), Remote: ap("10.0.0.2:80"), Inode: 501, Direction: flows.Outbound, Process: proc}
	in := flows.Flow{Netns: 11, Protocol: 6, Local: ap("10.0.0.1:443"), Remote: ap("10.0.0.9:5555"), Inode: 0, Direction: flows.Inbound}
	got := []qdisc.QueueFlow{
		1: {Device: dev, TxQueue: 0, Protocol: 17, Local: ap("10.0.0.1:1000"), Remote: ap("10.0.0.2:80"), SockNetns: 11, Inode: 501, Flow: &out, Bytes: 300, Packets: 3},
		2: {Device: dev, TxQueue: 0, Other: true, Bytes: 160, Packets: 2, OtherFlows: 1},
		3: {Device: dev, TxQueue: 1, Protocol: 6, Local: ap("10.0.0.1:443"), Remote: ap("10.0.0.9:5555"), SockNetns: 11, Flow: &in, Bytes: 700, Packets: 7},
	}

	ev := FlowEvent(&got[1], time.Unix(1, 0), input.Times{Window: 5 * time.Second, Collection: time.Millisecond})
	for path, want := range map[string]any{
		"fleutan.qdisc.scope":         "flow",
		"event.duration":              int64(5e9),
		"fleutan.qdisc.tx_queue":      0,
		"fleutan.qdisc.delta.bytes":   uint64(300),
		"fleutan.qdisc.delta.packets": uint64(3),
		"fleutan.qdisc.socket_inode":  uint64(501),
		"network.transport":           "udp",
		"network.direction":           "egress",
		"source.ip":                   "10.0.0.1",
		"source.port":                 1000,
		"destination.port":            80,
		"process.pid":                 42,
		"process.name":                "sender",
		"process.parent.pid":          7, // the same process fields as the flows input's
		"user.id":                     "1000",
		"user.name":                   "alice",
	} {
		if v, ok := ev.Fields.GetValue(path); !ok || !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %#v, want %#v", path, v, want)
		}
	}
	// Inbound: the remote side initiated, so it is the ECS source.
	ev = FlowEvent(&got[3], time.Unix(1, 0), input.Times{})
	if v, _ := ev.Fields.GetValue("source.port"); v != 5555 {
		t.Errorf("inbound source.port = %v, want 5555", v)
	}
	if v, _ := ev.Fields.GetValue("network.direction"); v != "ingress" {
		t.Errorf("inbound network.direction = %v, want ingress (ECS, host-based)", v)
	}
	ev = FlowEvent(&got[2], time.Unix(1, 0), input.Times{})
	if v, _ := ev.Fields.GetValue("fleutan.qdisc.other_flows"); v != 1 || ev.Series != "10/veth0/0/flow/other" {
		t.Errorf("other event: other_flows %v series %q", v, ev.Series)
	}

	// Two namespaces' kernel ICMPv6 sockets (no inode, the same unspecified
	// address) sending on one queue: two series, so two ids, not one event
	// stored over the other.
	a := queueFlowOf(dev, 58, "[::]:0", "[ff02::16]:0", 11)
	b := queueFlowOf(dev, 58, "[::]:0", "[ff02::16]:0", 12)
	ea, eb := FlowEvent(&a, time.Unix(1, 0), input.Times{}), FlowEvent(&b, time.Unix(1, 0), input.Times{})
	if ea.Series == eb.Series {
		t.Errorf("sockets of two namespaces share the series %q", ea.Series)
	}
	if v, _ := eb.Fields.GetValue("fleutan.qdisc.socket_netns"); v != uint64(12) {
		t.Errorf("fleutan.qdisc.socket_netns = %#v, want 12", v)
	}
}

// queueFlowOf is an inode-less queue flow of one namespace's socket.
func queueFlowOf(dev *qdisc.Device, proto uint8, local, remote string, netns uint64) qdisc.QueueFlow {
	return qdisc.QueueFlow{Device: dev, TxQueue: 0, Protocol: proto, Local: netip.MustParseAddrPort(local),
		Remote: netip.MustParseAddrPort(remote), SockNetns: netns, Bytes: 90, Packets: 1}
}

// TestKindFieldsNameEveryKind: each kind-specific statistics type has
// its event fields.
func TestKindFieldsNameEveryKind(t *testing.T) {
	for _, k := range []qdisc.KindStats{
		{HTB: &qdisc.HTBQdisc{}}, {HTBClass: &qdisc.HTBClass{}}, {TBF: &qdisc.TBF{}},
		{FQCodel: &qdisc.FQCodel{}}, {FQ: &qdisc.FQ{}}, {Cake: &qdisc.Cake{}},
	} {
		if m, ok := kindFields(&k); !ok || len(m) == 0 {
			t.Errorf("%+v: fields %v %v", k, m, ok)
		}
	}
	if _, ok := kindFields(&qdisc.KindStats{}); ok {
		t.Error("fields without kind-specific statistics")
	}
}
