package tcplife

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// record builds a struct closed_conn the way the kernel lays it out.
func record(c Conn, comm string) []byte {
	b := make([]byte, RecordSize)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], c.Cookie)
	ne.PutUint64(b[8:], c.StartNs)
	ne.PutUint64(b[16:], c.EndNs)
	ne.PutUint64(b[24:], c.BytesAcked)
	ne.PutUint64(b[32:], c.BytesReceived)
	ne.PutUint32(b[40:], c.SegsOut)
	ne.PutUint32(b[44:], c.SegsIn)
	ne.PutUint32(b[48:], c.TotalRetrans)
	ne.PutUint32(b[52:], c.SRTTMicros)
	ne.PutUint32(b[56:], c.TGID)
	ne.PutUint32(b[60:], c.Netns)
	ne.PutUint32(b[64:], c.Inode)
	ne.PutUint16(b[68:], c.Local.Port())
	ne.PutUint16(b[70:], c.Remote.Port())
	l, r := c.Local.Addr().As16(), c.Remote.Addr().As16()
	if c.Family == afInet {
		l4, r4 := c.Local.Addr().As4(), c.Remote.Addr().As4()
		copy(b[72:], l4[:])
		copy(b[88:], r4[:])
	} else {
		copy(b[72:], l[:])
		copy(b[88:], r[:])
	}
	b[104], b[105], b[106] = c.Family, c.OldState, byte(c.Flags)
	copy(b[108:124], comm)
	return b
}

func TestParseRecord(t *testing.T) {
	v4 := Conn{
		Cookie: 0x1122334455667788, StartNs: 1000, EndNs: 5000, BytesAcked: 1002, BytesReceived: 1,
		SegsOut: 5, SegsIn: 4, TotalRetrans: 1, SRTTMicros: 37, TGID: 4242, Netns: 4026531840, Inode: 991,
		Family: afInet, OldState: 5, Flags: Started | Active | FINAcked | FINReceived,
		Local:  netip.MustParseAddrPort("127.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("127.0.0.2:80"),
		Comm:   "curl",
	}
	v6 := v4
	v6.Family, v6.Flags = afInet6, Listener
	v6.Local = netip.MustParseAddrPort("[fd00::1]:443")
	v6.Remote = netip.MustParseAddrPort("[::ffff:10.0.0.1]:51000")
	full := v4
	full.Comm = "exactly15bytes!"
	tests := []struct {
		name    string
		in      []byte
		want    Conn
		wantErr bool
	}{
		{"ipv4 active", record(v4, "curl"), v4, false},
		{"ipv6 passive without start", record(v6, "curl"), func() Conn { c := v6; c.StartNs = 0; return c }(), false},
		{"comm of 16 bytes without NUL", record(full, "exactly15bytes!!"), func() Conn { c := full; c.Comm = "exactly15bytes!!"; return c }(), false},
		{"short", record(v4, "")[:RecordSize-1], Conn{}, true},
		{"bad family", func() []byte { b := record(v4, ""); b[104] = 1; return b }(), Conn{}, true},
		{"start after end", func() []byte { b := record(v4, ""); binary.NativeEndian.PutUint64(b[8:], 9000); return b }(), Conn{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrRecord) {
					t.Fatalf("err = %v, want ErrRecord", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestPayload(t *testing.T) {
	tests := []struct {
		name    string
		c       Conn
		out, in uint64
	}{
		{"active, both FINs", Conn{Flags: Active | FINAcked | FINReceived, BytesAcked: 1002, BytesReceived: 11}, 1000, 10},
		{"passive, both FINs", Conn{Flags: Listener | FINAcked | FINReceived, BytesAcked: 11, BytesReceived: 1001}, 10, 1000},
		{"reset: nothing acked", Conn{Flags: Active, BytesAcked: 0}, 0, 0},
		{"active, FIN not acked", Conn{Flags: Active, BytesAcked: 501, BytesReceived: 7}, 500, 7},
	}
	for _, tt := range tests {
		if o, i := tt.c.PayloadOut(), tt.c.PayloadIn(); o != tt.out || i != tt.in {
			t.Errorf("%s: out %d in %d, want %d %d", tt.name, o, i, tt.out, tt.in)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add(record(Conn{Family: afInet, Local: netip.MustParseAddrPort("1.2.3.4:5"), Remote: netip.MustParseAddrPort("5.6.7.8:9")}, "x"))
	f.Add(record(Conn{Family: afInet6, Flags: Started, StartNs: 1, EndNs: 2, Local: netip.MustParseAddrPort("[::1]:5"), Remote: netip.MustParseAddrPort("[::1]:9")}, "y"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseRecord(b)
		if err != nil {
			return
		}
		if !c.Local.IsValid() || !c.Remote.IsValid() {
			t.Fatalf("valid record with invalid address: %+v", c)
		}
		if c.Flags&Started != 0 && c.StartNs > c.EndNs {
			t.Fatalf("start after end accepted: %+v", c)
		}
		if c.PayloadOut() > c.BytesAcked || c.PayloadIn() > c.BytesReceived {
			t.Fatalf("payload above the counters: %+v", c)
		}
		if len(c.Comm) > 16 {
			t.Fatalf("comm of %d bytes", len(c.Comm))
		}
		// Decoding is a function of the first RecordSize bytes.
		again, err := ParseRecord(b[:RecordSize])
		if err != nil || again != c {
			t.Fatalf("trailing bytes changed the result: %v", err)
		}
	})
}
