package qdisc

import (
	"net/netip"
	"reflect"
	"testing"

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
}
