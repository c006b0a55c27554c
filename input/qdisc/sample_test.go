package qdisc

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
)

func TestFormatHandle(t *testing.T) {
	for h, want := range map[uint32]string{
		0xFFFFFFFF: "root", 0x10000: "1:", 0x10001: "1:1", 0x8001000a: "8001:a", 0: "0:", 0xFFFFFFF1: "ffff:fff1",
	} {
		if got := FormatHandle(h); got != want {
			t.Errorf("FormatHandle(%#x) = %q, want %q", h, got, want)
		}
	}
}

func TestDeltaAcrossPeriods(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur Counters
		want      Counters
		reset     bool
	}{
		{"growth", Counters{100, 2, 1, 0, 0}, Counters{350, 5, 3, 4, 1}, Counters{250, 3, 2, 4, 1}, false},
		{"unchanged", Counters{100, 2, 1, 1, 1}, Counters{100, 2, 1, 1, 1}, Counters{}, false},
		{"bytes reset", Counters{1000, 10, 0, 0, 0}, Counters{300, 3, 0, 0, 0}, Counters{300, 3, 0, 0, 0}, true},
		{"packets reset alone", Counters{1000, 10, 0, 0, 0}, Counters{1000, 9, 0, 0, 0}, Counters{1000, 9, 0, 0, 0}, true},
		{"32-bit drops wrap", Counters{10, 1, 0xFFFFFFF0, 0, 0}, Counters{20, 2, 0x10, 0, 0}, Counters{10, 1, 0x20, 0, 0}, false},
		{"drops reset", Counters{10, 1, 500, 0, 0}, Counters{20, 2, 3, 0, 0}, Counters{20, 2, 3, 0, 0}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, reset := delta(tt.cur, tt.prev)
			if d != tt.want || reset != tt.reset {
				t.Errorf("delta = %+v reset %v, want %+v reset %v", d, reset, tt.want, tt.reset)
			}
		})
	}
}

func TestQdiscEventFields(t *testing.T) {
	dev := &Device{Netns: 4026531840, NetnsName: "blue", Index: 3, Name: "eth0", TxQueues: 4, XPS: []string{"1", "2", "0", "0"}}
	s := Sample{
		Scope: ScopeQdisc, Device: dev, Kind: "fq_codel", Handle: 0x80010000, Parent: 0x10002, TxQueue: 1,
		Counters: Counters{Bytes: 5000, Packets: 5, Drops: 1}, Backlog: 1514, Qlen: 1,
		Specific: &FQCodel{MaxPacket: 1514},
		HasDelta: true, Delta: Counters{Bytes: 2000, Packets: 2}, Elapsed: 2 * time.Second,
	}
	ts := time.Unix(1700000000, 0)
	// event.duration is the time the deltas cover (Elapsed), not the
	// collection's time, which is fleutan.collection.duration_us.
	times := input.Times{Window: 10 * time.Second, Collection: 3 * time.Millisecond}
	ev := s.Event(ts, times)
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
	s.HasDelta, s.TxQueue, s.Parent = false, -1, handleRoot
	ev = s.Event(ts, times)
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

func TestJoinFlowsTopPerQueueAndOther(t *testing.T) {
	dev := &Device{Netns: 10, Index: 2, Name: "veth0", TxQueues: 2}
	ap := netip.MustParseAddrPort
	proc := &procindex.Process{PID: 42, PPID: 7, Name: "sender", UID: 1000, User: "alice"}
	fl := []flows.Flow{
		{Netns: 11, Protocol: 17, Local: ap("10.0.0.1:1000"), Remote: ap("10.0.0.2:80"), Inode: 501, Direction: flows.Outbound, Process: proc},
		{Netns: 11, Protocol: 6, Local: ap("10.0.0.1:443"), Remote: ap("10.0.0.9:5555"), Inode: 0, Direction: flows.Inbound},
	}
	d := func(q int, ino uint32, proto uint8, l, r string, bytes uint64) xmitDelta {
		return xmitDelta{DevNetns: 10, Ifindex: 2, Queue: q, SockNetns: 11, Inode: ino, Family: 2, Protocol: proto, Local: ap(l), Remote: ap(r), Bytes: bytes, Packets: bytes / 100}
	}
	deltas := []xmitDelta{
		d(0, 501, 17, "10.0.0.1:1000", "10.0.0.2:80", 300),
		d(0, 502, 17, "10.0.0.1:1001", "10.0.0.2:80", 900),
		d(0, 503, 17, "10.0.0.1:1002", "10.0.0.2:80", 100),
		d(1, 0, 6, "10.0.0.1:443", "10.0.0.9:5555", 700),            // TIME-WAIT-like: joined by 5-tuple
		{DevNetns: 10, Ifindex: 2, Queue: 0, Bytes: 60, Packets: 1}, // no socket (ARP)
		d(0, 504, 17, "10.0.0.1:1003", "10.0.0.2:80", 5),            // other device: left out
	}
	deltas[5].Ifindex = 99
	got := joinFlows(deltas, map[devKey]*Device{{10, 2}: dev}, fl, 2)
	type row struct {
		queue int
		other bool
		bytes uint64
		n     int
		pid   int
		ino   uint32
	}
	var rows []row
	for _, s := range got {
		r := row{queue: s.TxQueue, other: s.Other, bytes: s.Bytes, n: s.OtherFlows, ino: s.Inode}
		if s.Flow != nil && s.Flow.Process != nil {
			r.pid = s.Flow.Process.PID
		}
		rows = append(rows, r)
	}
	want := []row{
		{0, false, 900, 0, 0, 502},
		{0, false, 300, 0, 42, 501},
		{0, true, 160, 1, 0, 0}, // flow 503 and the sockless 60 bytes
		{1, false, 700, 0, 0, 0},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("joinFlows rows\n got %+v\nwant %+v", rows, want)
	}
	if got[3].Flow == nil || got[3].Flow.Direction != flows.Inbound {
		t.Errorf("5-tuple join failed: %+v", got[3].Flow)
	}

	ev := got[1].Event(time.Unix(1, 0), input.Times{Window: 5 * time.Second, Collection: time.Millisecond})
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
	ev = got[3].Event(time.Unix(1, 0), input.Times{})
	if v, _ := ev.Fields.GetValue("source.port"); v != 5555 {
		t.Errorf("inbound source.port = %v, want 5555", v)
	}
	if v, _ := ev.Fields.GetValue("network.direction"); v != "ingress" {
		t.Errorf("inbound network.direction = %v, want ingress (ECS, host-based)", v)
	}
	ev = got[2].Event(time.Unix(1, 0), input.Times{})
	if v, _ := ev.Fields.GetValue("fleutan.qdisc.other_flows"); v != 1 || ev.Series != "10/veth0/0/flow/other" {
		t.Errorf("other event: other_flows %v series %q", v, ev.Series)
	}
}
