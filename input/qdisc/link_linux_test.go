package qdisc

import (
	"encoding/binary"
	"slices"
	"testing"
)

// linkPayload is an RTM_NEWLINK payload: struct ifinfomsg with index and
// flags, then the attributes (type, payload) as given.
func linkPayload(index int32, flags uint32, attrs ...any) []byte {
	b := make([]byte, ifinfomsgLn)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	for i := 0; i+1 < len(attrs); i += 2 {
		v := attrs[i+1].([]byte)
		var h [4]byte
		binary.NativeEndian.PutUint16(h[0:], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(h[2:], uint16(attrs[i].(int)))
		b = append(append(b, h[:]...), v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func u32le(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// TestDecodeLink: the library's decoder gives the fields the collector
// uses, and malformed data, on which the library indexes past an
// attribute's end, is an error, never a panic.
func TestDecodeLink(t *testing.T) {
	const ifname, numTxQueues, loopback = 3, 31, 0x8
	good := []struct {
		name string
		b    []byte
		want linkMsg
	}{
		{"veth with 4 queues", linkPayload(7, 0x1003, ifname, []byte("vb0\x00"), numTxQueues, u32le(4)), linkMsg{Index: 7, Name: "vb0", TxQueues: 4}},
		{"loopback", linkPayload(1, 0x9|loopback, ifname, []byte("lo\x00"), numTxQueues, u32le(1)), linkMsg{Index: 1, Name: "lo", Loopback: true, TxQueues: 1}},
		{"no queue count", linkPayload(3, 0, ifname, []byte("d0\x00")), linkMsg{Index: 3, Name: "d0"}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeLink(tt.b)
			if err != nil || got != tt.want {
				t.Errorf("decodeLink = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	bad := []struct {
		name string
		b    []byte
	}{
		{"shorter than ifinfomsg", make([]byte, ifinfomsgLn-1)},
		// Unpadded, at the end of the buffer: nothing to read past it.
		{"queue count of 2 bytes", slices.Clip(append(linkPayload(7, 0, ifname, []byte("vb0\x00")), 6, 0, numTxQueues, 0, 4, 0))},
		{"attribute longer than the message", append(make([]byte, ifinfomsgLn), 0x40, 0x00, 0x03, 0x00, 'x')},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := decodeLink(tt.b); err == nil {
				t.Errorf("decodeLink = %+v, want an error", got)
			}
		})
	}
}

func FuzzDecodeLink(f *testing.F) {
	f.Add(linkPayload(7, 0x1003, 3, []byte("vb0\x00"), 31, u32le(4)))
	f.Add(slices.Clip(append(linkPayload(7, 0, 3, []byte("vb0\x00")), 6, 0, 31, 0, 4, 0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeLink(b)
	})
}
