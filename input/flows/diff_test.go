package flows

import (
	"net/netip"
	"testing"
	"time"
)

// TestDiffRules: the delta of each kind of flow, on built snapshots, as
// the collector's collections give them (see the package doc).
func TestDiffRules(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	ap := netip.MustParseAddrPort
	tcp := func(local string, inode uint32, acked, received uint64, segsOut, segsIn uint32) Flow {
		return Flow{Netns: 7, Family: afInet, Protocol: protoTCP, State: stateEstablished,
			Local: ap(local), Remote: ap("10.0.0.9:80"), Inode: inode, Cookie: uint64(inode) + 1000,
			Direction: Outbound, HasTCP: true,
			TCP: TCPInfo{BytesAcked: acked, BytesReceived: received, SegsOut: segsOut, SegsIn: segsIn}}
	}
	// final is f's last report; with the close counters the kernel had
	// at TCP_CLOSE, after our FIN was acknowledged and the peer's came.
	final := func(f Flow, closeCounters bool) Flow {
		f.Final = true
		if closeCounters {
			f.CloseCounters, f.State, f.FINAcked, f.FINReceived = true, stateClose, true, true
		}
		return f
	}
	closed := func(f Flow, started bool) Flow {
		f.Final, f.CloseCounters, f.Closed, f.Started = true, true, true, started
		return f
	}
	listen := Flow{Netns: 7, Family: afInet, Protocol: protoTCP, State: stateListen,
		Local: ap("10.0.0.1:80"), Inode: 5, Direction: Listening, HasTCP: true, TCP: TCPInfo{BytesAcked: 9}}
	udp := Flow{Netns: 7, Family: afInet, Protocol: protoUDP, State: stateEstablished,
		Local: ap("10.0.0.1:53"), Remote: ap("10.0.0.9:53"), Inode: 6, Direction: Outbound}
	ns := func(known bool) []Namespace { return []Namespace{{Inode: 7, Known: known}} }
	snap := func(ns []Namespace, fl ...Flow) Snapshot { return Snapshot{Time: t0, Namespaces: ns, Flows: fl} }
	d := func(in, out, segsIn, segsOut uint64) FlowDelta {
		return FlowDelta{OK: true, Delta: Delta{BytesIn: in, BytesOut: out, SegsIn: segsIn, SegsOut: segsOut}}
	}
	none := FlowDelta{}

	tests := []struct {
		name      string
		prev, cur Snapshot
		want      []FlowDelta
	}{
		{"zero prev: no delta, but for a connection the tracker saw born and closed",
			Snapshot{}, snap(ns(false), tcp("10.0.0.1:1", 11, 101, 50, 3, 2), closed(tcp("10.0.0.1:2", 12, 201, 0, 4, 2), true), closed(tcp("10.0.0.1:3", 13, 201, 0, 4, 2), false)),
			[]FlowDelta{none, d(0, 200, 2, 4), none}},
		{"zero prev with a namespace the collector knew: still the first collection",
			Snapshot{}, snap(ns(true), tcp("10.0.0.1:1", 11, 101, 50, 3, 2)),
			[]FlowDelta{none}},
		{"the same flow again: the change; a new one in a known namespace: everything",
			snap(ns(false), tcp("10.0.0.1:1", 11, 101, 50, 3, 2)),
			snap(ns(true), tcp("10.0.0.1:1", 11, 1101, 80, 13, 5), tcp("10.0.0.1:4", 14, 11, 0, 2, 1)),
			[]FlowDelta{d(30, 1000, 3, 10), d(0, 10, 1, 2)}},
		{"a new flow in a namespace seen for the first time: none",
			snap(nil), snap(ns(false), tcp("10.0.0.1:4", 14, 11, 0, 2, 1)),
			[]FlowDelta{none}},
		{"listening and UDP sockets: none",
			snap(ns(false), listen, udp), snap(ns(true), listen, udp),
			[]FlowDelta{none, none}},
		{"final without close counters: none; with them: since the last report",
			snap(ns(false), tcp("10.0.0.1:1", 11, 101, 50, 3, 2), tcp("10.0.0.1:5", 15, 101, 50, 3, 2)),
			snap(ns(true), final(tcp("10.0.0.1:1", 11, 101, 50, 3, 2), false), final(tcp("10.0.0.1:5", 15, 302, 51, 8, 4), true)),
			[]FlowDelta{none, d(0, 200, 2, 5)}},
		{"a lingering flow's close: since its last live report, collections ago",
			Snapshot{Time: t0, Namespaces: ns(true), Lingering: []Flow{tcp("10.0.0.1:6", 16, 101, 50, 3, 2)}},
			snap(ns(true), final(tcp("10.0.0.1:6", 16, 502, 51, 9, 3), true)),
			[]FlowDelta{d(0, 400, 1, 6)}},
		{"a flow held while its namespace failed: since its last report",
			Snapshot{Time: t0, Namespaces: []Namespace{{Inode: 7, Known: true, Failed: true}}, Held: []Flow{tcp("10.0.0.1:1", 11, 101, 50, 3, 2)}},
			snap(ns(true), tcp("10.0.0.1:1", 11, 151, 50, 5, 2)),
			[]FlowDelta{d(0, 50, 0, 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.prev, tt.cur)
			if len(got) != len(tt.want) {
				t.Fatalf("%d deltas for %d flows, want %d", len(got), len(tt.cur.Flows), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("flow %d (%s): %+v, want %+v", i, tt.cur.Flows[i].Key(), got[i], tt.want[i])
				}
			}
		})
	}
}

// TestDiffOfClonedSnapshot: a Clone diffs as its original, also once the
// collector's buffers are reused (the index is copied).
func TestDiffOfClonedSnapshot(t *testing.T) {
	f := Flow{Netns: 1, Protocol: protoTCP, State: stateEstablished, Local: netip.MustParseAddrPort("10.0.0.1:1"),
		Remote: netip.MustParseAddrPort("10.0.0.2:2"), Inode: 3, Direction: Outbound, HasTCP: true, TCP: TCPInfo{BytesAcked: 11}}
	prev := Snapshot{Time: time.Unix(1, 0), Flows: []Flow{f}}
	prev.idx, prev.live = prev.index()
	c := prev.Clone()
	prev.Flows[0].TCP.BytesAcked = 999 // the collector reuses its buffer
	prev.idx.reset(1)
	f.TCP.BytesAcked = 31
	got := Diff(c, Snapshot{Time: time.Unix(2, 0), Flows: []Flow{f}})
	if want := (FlowDelta{OK: true, Delta: Delta{BytesOut: 20}}); got[0] != want {
		t.Errorf("%+v, want %+v", got[0], want)
	}
}
