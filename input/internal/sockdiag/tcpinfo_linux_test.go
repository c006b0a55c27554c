package sockdiag

import (
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"golang.org/x/sys/unix"
)

// TestDumpTCPInfoHasTheKernelsLength: the kernel sends its own struct
// tcp_info, whose length grew with the kernel (linux/tcp.h): 232 bytes up
// to tcpi_snd_wnd (5.4 to 6.1), 240 with tcpi_rcv_wnd and tcpi_rehash
// (6.2), 248 with the tcpi_total_rto fields (6.7). Len is that length, and
// the fields past it read as absent (zero, with Len telling so), never as
// bytes of another attribute. The kernel matrix runs this on 5.10, 6.1 and
// 6.12, where each of the three lengths occurs.
func TestDumpTCPInfoHasTheKernelsLength(t *testing.T) {
	ns := newNetns(t)
	p := newTCPPair(t, ns.Path(), "tcp4", "127.0.0.1:0", nil)
	d := dumperIn(t, ns)
	req := Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Ext: ExtTCPDefault}
	waitAllAcked(t, d, req)
	s, err := findLocal(collect(t, d, req), addrPort(p.client.LocalAddr()), addrPort(p.client.RemoteAddr()))
	if err != nil {
		t.Fatal(err)
	}
	ti := s.TCPInfo
	if !s.HasTCPInfo {
		t.Fatal("no tcp_info")
	}
	switch {
	case !nstest.KernelAtLeast(t, 6, 2):
		if ti.Len != 232 {
			t.Fatalf("tcp_info is %d bytes, want 232 before 6.2", ti.Len)
		}
		if ti.RcvWnd != 0 || ti.Rehash != 0 || ti.TotalRTO != 0 || ti.TotalRTOTime != 0 {
			t.Errorf("fields past 232 bytes read %d %d %d %d, want 0", ti.RcvWnd, ti.Rehash, ti.TotalRTO, ti.TotalRTOTime)
		}
	case !nstest.KernelAtLeast(t, 6, 7):
		if ti.Len != 240 {
			t.Fatalf("tcp_info is %d bytes, want 240 from 6.2 to 6.6", ti.Len)
		}
		if ti.TotalRTO != 0 || ti.TotalRTOTime != 0 {
			t.Errorf("fields past 240 bytes read %d %d, want 0", ti.TotalRTO, ti.TotalRTOTime)
		}
	default:
		if ti.Len < 248 {
			t.Fatalf("tcp_info is %d bytes, want at least 248 from 6.7", ti.Len)
		}
	}
	// The last field every tested kernel has, and the first 6.2 added:
	// both windows of an established loopback connection are open.
	if ti.SndWnd == 0 {
		t.Errorf("tcpi_snd_wnd 0 in %d bytes", ti.Len)
	}
	if nstest.KernelAtLeast(t, 6, 2) && ti.RcvWnd == 0 {
		t.Errorf("tcpi_rcv_wnd 0 in %d bytes", ti.Len)
	}
}
