package paths

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestEchoChecksumIsConstant: every echo request of a flow identifier has
// the same checksum, and it is the right one.
func TestEchoChecksumIsConstant(t *testing.T) {
	p := newRawProbe(MethodICMP, Target{Dst: netip.MustParseAddr("10.80.4.2")})
	p.id = 0x1234
	var first uint16
	for _, seq := range []uint32{1, 2, 3, 255, 256, 0x7fff, 0xfffe} {
		b := p.echo(seq)
		if checksum(0, b) != 0 {
			t.Errorf("seq %d: checksum %#04x does not verify", seq, binary.BigEndian.Uint16(b[2:]))
		}
		c := binary.BigEndian.Uint16(b[2:])
		if seq == 1 {
			first = c
		} else if c != first {
			t.Errorf("seq %d: checksum %#04x, seq 1 had %#04x", seq, c, first)
		}
		if got := binary.BigEndian.Uint16(b[6:]); got != uint16(seq) {
			t.Errorf("seq %d: sequence field %d", seq, got)
		}
	}
}

// FuzzRawAnswer: whatever a raw socket reads, parsing it does not panic,
// and a packet it takes for an answer names a sender.
func FuzzRawAnswer(f *testing.F) {
	v4 := newRawProbe(MethodTCP, Target{Dst: netip.MustParseAddr("10.80.4.2"), Port: 8080})
	v4.id, v4.seq = 40000, 3
	v6 := newRawProbe(MethodICMP, Target{Dst: netip.MustParseAddr("fd80:4::2")})
	v6.id, v6.seq = 7, 3
	f.Add(false, false, []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 80, 1, 2, 10, 80, 1, 1, 11, 0, 0, 0, 0, 0, 0, 0})
	f.Add(true, true, []byte{0x4f, 0, 0, 20})
	// An IPv4 header length past the packet.
	f.Add(false, true, append([]byte{0x4f}, make([]byte, 19)...))
	f.Add(true, false, make([]byte, 48))
	f.Fuzz(func(t *testing.T, v6probe, tcp bool, b []byte) {
		p := v4
		if v6probe {
			p = v6
		}
		var a answer
		if p.parse(tcp, b, netip.MustParseAddr("fd80:3::2"), &a) && !a.from.IsValid() {
			t.Errorf("answer without a sender from %x", b)
		}
	})
}
