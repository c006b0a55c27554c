package flows

import (
	"net/netip"
	"testing"
)

func TestPayloadBytesTakeOutControlFlags(t *testing.T) {
	tests := []struct {
		dir             Direction
		state           uint8
		acked, received uint64
		out, in         uint64
	}{
		{Outbound, stateEstablished, 1001, 50, 1000, 50},
		{Inbound, stateEstablished, 50, 1000, 50, 1000},
		{Outbound, stateFinWait2, 1002, 50, 1000, 50},
		{Outbound, stateTimeWait, 1002, 51, 1000, 50},
		{Inbound, stateCloseWait, 50, 1001, 50, 1000},
		{Inbound, stateLastAck, 50, 1001, 50, 1000},
		{Outbound, stateSynSent, 0, 0, 0, 0},
		{Outbound, stateEstablished, 0, 0, 0, 0}, // never below zero
	}
	for _, tt := range tests {
		f := Flow{Direction: tt.dir, State: tt.state, HasTCP: true, TCP: TCPInfo{BytesAcked: tt.acked, BytesReceived: tt.received}}
		if f.BytesOut() != tt.out || f.BytesIn() != tt.in {
			t.Errorf("%s state %d acked %d received %d: out %d in %d, want %d %d", tt.dir, tt.state, tt.acked, tt.received, f.BytesOut(), f.BytesIn(), tt.out, tt.in)
		}
	}
}

func TestDeltaSegmentCountersWrap(t *testing.T) {
	prev := Flow{Direction: Outbound, State: stateEstablished, TCP: TCPInfo{SegsOut: 1<<32 - 10, BytesAcked: 101}}
	cur := Flow{Direction: Outbound, State: stateEstablished, TCP: TCPInfo{SegsOut: 5, BytesAcked: 201}}
	d := delta(&cur, &prev)
	if d.SegsOut != 15 || d.BytesOut != 100 {
		t.Errorf("delta %+v, want SegsOut 15 BytesOut 100", d)
	}
}

func TestKeyString(t *testing.T) {
	k := Key{Netns: 4026531840, Protocol: protoTCP, Local: netip.MustParseAddrPort("[::1]:80"), Remote: netip.MustParseAddrPort("[::1]:5555"), Inode: 9}
	if got, want := k.String(), "4026531840/tcp/[::1]:80/[::1]:5555/9"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}
