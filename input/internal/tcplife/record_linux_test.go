package tcplife

import (
	"testing"
	"unsafe"
)

// TestRecordLayout holds ParseRecord's offsets to the struct bpf2go
// generated from bpf/tcplife.c.
func TestRecordLayout(t *testing.T) {
	var r tcplifeClosedConn
	if s := unsafe.Sizeof(r); s != RecordSize {
		t.Fatalf("struct closed_conn is %d bytes, ParseRecord reads %d", s, RecordSize)
	}
	for _, f := range []struct {
		name      string
		off, want uintptr
	}{
		{"cookie", unsafe.Offsetof(r.Cookie), 0},
		{"start_ns", unsafe.Offsetof(r.StartNs), 8},
		{"end_ns", unsafe.Offsetof(r.EndNs), 16},
		{"bytes_acked", unsafe.Offsetof(r.BytesAcked), 24},
		{"bytes_received", unsafe.Offsetof(r.BytesReceived), 32},
		{"segs_out", unsafe.Offsetof(r.SegsOut), 40},
		{"segs_in", unsafe.Offsetof(r.SegsIn), 44},
		{"total_retrans", unsafe.Offsetof(r.TotalRetrans), 48},
		{"srtt_us", unsafe.Offsetof(r.SrttUs), 52},
		{"tgid", unsafe.Offsetof(r.Tgid), 56},
		{"netns", unsafe.Offsetof(r.Netns), 60},
		{"inode", unsafe.Offsetof(r.Inode), 64},
		{"sport", unsafe.Offsetof(r.Sport), 68},
		{"dport", unsafe.Offsetof(r.Dport), 70},
		{"saddr", unsafe.Offsetof(r.Saddr), 72},
		{"daddr", unsafe.Offsetof(r.Daddr), 88},
		{"family", unsafe.Offsetof(r.Family), 104},
		{"oldstate", unsafe.Offsetof(r.Oldstate), 105},
		{"flags", unsafe.Offsetof(r.Flags), 106},
		{"comm", unsafe.Offsetof(r.Comm), 108},
	} {
		if f.off != f.want {
			t.Errorf("%s at offset %d, ParseRecord reads it at %d", f.name, f.off, f.want)
		}
	}
}
