package rdma

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/rdma/rxetest"
)

func collect(t *testing.T, c *Collector) Snapshot {
	t.Helper()
	s, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return s
}

func device(s Snapshot, name string) *Device {
	for i := range s.Devices {
		if s.Devices[i].Name == name {
			return &s.Devices[i]
		}
	}
	return nil
}

func qpOf(s Snapshot, dev string, pid int) []QP {
	var out []QP
	for _, q := range s.QPs {
		if q.Device == dev && q.PID == pid {
			out = append(out, q)
		}
	}
	return out
}

// recordDumps logs every message of the four dumps, base64, so that a run
// in the kernel matrix gives the parsers' fixtures (testdata/*.dump).
func recordDumps(t *testing.T, c *Collector, s Snapshot) {
	for _, dev := range s.Devices {
		for _, d := range []struct {
			kind string
			cmd  int
		}{{"port", cmdPortGet}, {"qp", cmdResQPGet}, {"cmid", cmdResCMIDGet}} {
			_ = c.dump(d.cmd, u32Attr(attrDevIndex, dev.Index), func(b []byte) error {
				t.Logf("RDMA-DUMP %s %s", d.kind, base64.StdEncoding.EncodeToString(b))
				return nil
			})
		}
	}
	_ = c.dump(cmdGet, nil, func(b []byte) error {
		t.Logf("RDMA-DUMP dev %s", base64.StdEncoding.EncodeToString(b))
		return nil
	})
}

func TestNewTellsWhetherTheKernelHasRDMA(t *testing.T) {
	fd, sockErr := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_RDMA)
	if sockErr == nil {
		unix.Close(fd)
	}
	c, err := New(Options{})
	switch {
	case sockErr == nil && err != nil:
		t.Fatalf("New: %v, though NETLINK_RDMA opens", err)
	case sockErr == nil:
		c.Close()
	case !errors.Is(err, ErrNotSupported):
		t.Fatalf("New: %v, want ErrNotSupported (socket: %v)", err, sockErr)
	}
}

// TestSoftRoCEQueuePairsCMAndCounters: rping's server and client in one
// namespace, connected over the rxe device on that namespace's end of a
// veth pair, give two RC queue pairs in RTS owned by their pids, each
// joined to its CM identifier (the client's from an ephemeral port to the
// server's, the server's inbound). Stopped, both are quiescent: each
// side's send PSN is the other's expected receive PSN. Over a stretch of
// k pings the client's send PSN moves 2 per ping (two SENDs) and the
// server's 4 (READ, SEND, WRITE, SEND), and the device's sent and
// received packet counters at least by the sum. Killing both gives each
// queue pair exactly one final delta.
func TestSoftRoCEQueuePairsCMAndCounters(t *testing.T) {
	sc := rxetest.New(t)
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	s0 := collect(t, c)
	da, db := device(s0, sc.DevA), device(s0, sc.DevB)
	if da == nil || db == nil {
		t.Fatalf("devices %+v, want %s and %s", s0.Devices, sc.DevA, sc.DevB)
	}
	if len(da.Ports) != 1 || da.Ports[0].Netdev != sc.VethA || da.Ports[0].State != "ACTIVE" || da.Protocol != "roce" {
		t.Errorf("%s: %+v, want protocol roce and one ACTIVE port on %s", sc.DevA, da, sc.VethA)
	}
	if len(db.Ports) != 1 || db.Ports[0].Netdev != "" {
		t.Errorf("%s: ports %+v, want one port whose netdev (in the other namespace) is not named", sc.DevB, db.Ports)
	}
	// A collector in B's namespace names B's netdev.
	cb, err := New(Options{Netns: sc.B.Path(), NoCounters: true})
	if err != nil {
		t.Fatal(err)
	}
	sb := collect(t, cb)
	cb.Close()
	if d := device(sb, sc.DevB); d == nil || len(d.Ports) != 1 || d.Ports[0].Netdev != sc.VethB || d.Ports[0].Counters != nil {
		t.Errorf("from %s: %+v, want %s's port on %s, no counters", sc.B.Name, d, sc.DevB, sc.VethB)
	}
	if _, ok := da.Ports[0].Counters["sent_pkts"]; !ok {
		t.Errorf("%s port 1 counters %v, want sent_pkts", sc.DevA, da.Ports[0].Counters)
	}

	const port = 7471
	srv := rxetest.StartRping(t, "-s", "-a", rxetest.AddrA, "-p", "7471", "-C", "100000000")
	listening := false
	for i := 0; i < 300 && !listening; i++ {
		for _, id := range collect(t, c).CMIDs {
			if id.State == "LISTEN" && id.Src.Port() == port && id.PID == srv.Cmd.Process.Pid {
				listening = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !listening {
		t.Fatalf("no listening CM identifier of rping %d; output %q", srv.Cmd.Process.Pid, srv.Output())
	}
	recordDumps(t, c, s0)
	cli := rxetest.StartRping(t, "-c", "-a", rxetest.AddrA, "-p", "7471", "-C", "100000000")
	cli.WaitLines(t, 3, time.Minute)
	stop := func() {
		cli.Signal(t, syscall.SIGSTOP)
		srv.Signal(t, syscall.SIGSTOP)
		cli.Stopped(t)
		srv.Stopped(t)
		// What the processes posted the kernel still sends; let it settle.
		time.Sleep(300 * time.Millisecond)
	}
	stop()
	l1 := cli.Lines()
	s1 := collect(t, c)
	recordDumps(t, c, s1)
	cli.Signal(t, syscall.SIGCONT)
	srv.Signal(t, syscall.SIGCONT)
	cli.WaitLines(t, l1+20, time.Minute)
	stop()
	k := cli.Lines() - l1
	s2 := collect(t, c)

	cpid, spid := cli.Cmd.Process.Pid, srv.Cmd.Process.Pid
	cq, sq := qpOf(s2, sc.DevA, cpid), qpOf(s2, sc.DevA, spid)
	if len(cq) != 1 || len(sq) != 1 {
		t.Fatalf("queue pairs of client %d: %+v, of server %d: %+v; want one each", cpid, cq, spid, sq)
	}
	for _, q := range []QP{cq[0], sq[0]} {
		if q.Type != "RC" || q.State != "RTS" || q.Port != 1 || q.Process == nil || q.Process.Name != "rping" || q.Netns == 0 {
			t.Errorf("queue pair %+v (process %+v): want RC, RTS, port 1, owner rping with its netns", q, q.Process)
		}
		if q.CM == nil {
			t.Fatalf("queue pair %d has no CM identifier", q.LQPN)
		}
	}
	if cq[0].RQPN != sq[0].LQPN || sq[0].RQPN != cq[0].LQPN {
		t.Errorf("client QPN %d -> %d, server %d -> %d: want each the other's", cq[0].LQPN, cq[0].RQPN, sq[0].LQPN, sq[0].RQPN)
	}
	a := netip.MustParseAddr(rxetest.AddrA)
	ccm, scm := cq[0].CM, sq[0].CM
	if ccm.Src.Addr() != a || ccm.Dst != netip.AddrPortFrom(a, port) || ccm.Src.Port() == port || ccm.Src.Port() == 0 || ccm.Inbound ||
		ccm.PortSpace != "tcp" || ccm.State != "CONNECT" || ccm.PID != cpid {
		t.Errorf("client CM %+v: want %s:ephemeral -> %s:%d, port space tcp, CONNECT, outbound, pid %d", ccm, a, a, port, cpid)
	}
	if scm.Src != netip.AddrPortFrom(a, port) || scm.Dst != ccm.Src || !scm.Inbound || scm.PortSpace != "tcp" || scm.PID != spid {
		t.Errorf("server CM %+v: want %s:%d -> %s, inbound, port space tcp, pid %d", scm, a, port, ccm.Src, spid)
	}
	for _, q := range []QP{cq[0], sq[0]} {
		for _, o := range []QP{cq[0], sq[0]} {
			if q.LQPN != o.LQPN && q.SQPSN != o.RQPSN {
				t.Errorf("stopped: QP %d send PSN %d, its peer %d expects %d", q.LQPN, q.SQPSN, o.LQPN, o.RQPSN)
			}
		}
	}

	d := Diff(s1, s2)
	var dc, ds *QPDelta
	for i := range d.QPs {
		switch q := &d.QPs[i]; {
		case q.QP.Device != sc.DevA || q.Final:
		case q.QP.PID == cpid:
			dc = q
		case q.QP.PID == spid:
			ds = q
		}
	}
	if dc == nil || ds == nil || dc.New || ds.New {
		t.Fatalf("deltas %+v: want the client's and the server's, not new", d.QPs)
	}
	t.Logf("%d pings: client send PSN +%d, receive +%d; server send +%d, receive +%d", k, dc.SQPSN, dc.RQPSN, ds.SQPSN, ds.RQPSN)
	if dc.SQPSN < uint32(2*(k-1)) || dc.SQPSN > uint32(2*(k+1)) || ds.SQPSN < uint32(4*(k-1)) || ds.SQPSN > uint32(4*(k+1)) {
		t.Errorf("%d pings: client send PSN +%d (want 2 per ping), server +%d (want 4 per ping)", k, dc.SQPSN, ds.SQPSN)
	}
	if dc.RQPSN != ds.SQPSN || ds.RQPSN != dc.SQPSN {
		t.Errorf("receive PSN deltas %d (client) and %d (server), want the other side's send deltas %d and %d", dc.RQPSN, ds.RQPSN, ds.SQPSN, dc.SQPSN)
	}
	var pd *PortDelta
	for i := range d.Ports {
		if d.Ports[i].Device == sc.DevA {
			pd = &d.Ports[i]
		}
	}
	sent := uint64(dc.SQPSN + ds.SQPSN)
	if pd == nil || pd.Counters["sent_pkts"] < sent || pd.Counters["rcvd_pkts"] < sent || pd.Rates["sent_pkts"] <= 0 {
		t.Errorf("port delta %+v: want sent_pkts and rcvd_pkts up by at least %d, a positive rate", pd, sent)
	}

	cli.Signal(t, syscall.SIGKILL)
	srv.Signal(t, syscall.SIGKILL)
	if err := cli.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	var s3 Snapshot
	for i := 0; i < 100; i++ {
		s3 = collect(t, c)
		if len(qpOf(s3, sc.DevA, cpid))+len(qpOf(s3, sc.DevA, spid)) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	finals := map[uint32]int{}
	for _, q := range Diff(s2, s3).QPs {
		if q.Final {
			finals[q.QP.LQPN]++
		}
	}
	if len(finals) != 2 || finals[cq[0].LQPN] != 1 || finals[sq[0].LQPN] != 1 {
		t.Errorf("final deltas by QPN %v, want one for %d and one for %d", finals, cq[0].LQPN, sq[0].LQPN)
	}
	for _, q := range Diff(s3, collect(t, c)).QPs {
		if q.Final {
			t.Errorf("a second final delta: %+v", q)
		}
	}
}
