package rdma

import (
	"net/netip"
	"testing"
)

// TestRecordedDumpsParse: every message recorded on 5.10, 6.1 and 6.12
// parses without error.
func TestRecordedDumpsParse(t *testing.T) {
	n := 0
	for kind, msgs := range dumps(t, "*.dump") {
		for i, b := range msgs {
			var err error
			switch kind {
			case "dev":
				_, err = ParseDevice(b)
			case "port":
				_, _, err = ParsePort(b)
			case "qp":
				err = ParseQPs(b, func(QP) {})
			case "cmid":
				err = ParseCMIDs(b, func(CMID) {})
			default:
				t.Errorf("unknown kind %q", kind)
			}
			if err != nil {
				t.Errorf("%s message %d: %v", kind, i, err)
			}
			n++
		}
	}
	if n != 42 {
		t.Errorf("%d recorded messages, want 42 (14 per kernel)", n)
	}
}

// TestRecordedDumps parses the dumps recorded on soft-RoCE in the kernel
// matrix (testdata/bookworm-6.1.dump) and joins the connected ones: rping's
// server (pid 157) listening on 10.77.0.1:7471 and its client (pid 159)
// connected from port 52456, queue pairs 17 and 18 on rxa359d6a, each
// other's remote, each joined to its CM identifier, the server's inbound.
func TestRecordedDumps(t *testing.T) {
	d := dumps(t, "bookworm-6.1.dump")
	if len(d["dev"]) != 4 || len(d["port"]) != 4 || len(d["qp"]) != 4 || len(d["cmid"]) != 2 {
		t.Fatalf("recorded messages: %d dev, %d port, %d qp, %d cmid", len(d["dev"]), len(d["port"]), len(d["qp"]), len(d["cmid"]))
	}
	var s Snapshot
	for i, b := range d["dev"][:2] {
		dev, err := ParseDevice(b)
		if err != nil || dev.Index != uint32(i) || dev.Protocol != "roce" || dev.NodeType != 1 {
			t.Errorf("device %d: %+v, %v", i, dev, err)
		}
		s.Devices = append(s.Devices, dev)
	}
	if _, p, err := ParsePort(d["port"][0]); err != nil || p.Netdev != "va359d6a" || p.State != "ACTIVE" || p.PhysState != 5 {
		t.Errorf("port of rxa359d6a: %+v, %v; want ACTIVE on va359d6a", p, err)
	}
	if err := ParseQPs(d["qp"][2], func(q QP) { s.QPs = append(s.QPs, q) }); err != nil {
		t.Fatal(err)
	}
	if err := ParseCMIDs(d["cmid"][1], func(c CMID) { s.CMIDs = append(s.CMIDs, c) }); err != nil {
		t.Fatal(err)
	}
	join(&s)
	if len(s.QPs) != 3 || s.QPs[0].LQPN != 1 || s.QPs[0].KernelOwner != "ib_core" || s.QPs[0].CM != nil {
		t.Fatalf("queue pairs %+v, want the GSI QP 1 of ib_core first", s.QPs)
	}
	a := netip.MustParseAddr("10.77.0.1")
	for _, tc := range []struct {
		lqpn, rqpn uint32
		pid        int
		src, dst   uint16
		inbound    bool
	}{{17, 18, 159, 52456, 7471, false}, {18, 17, 157, 7471, 52456, true}} {
		var q *QP
		for i := range s.QPs {
			if s.QPs[i].LQPN == tc.lqpn {
				q = &s.QPs[i]
			}
		}
		if q == nil || q.RQPN != tc.rqpn || q.PID != tc.pid || q.Type != "RC" || q.State != "RTS" || q.CM == nil {
			t.Fatalf("QP %d: %+v", tc.lqpn, q)
		}
		if q.CM.Src != netip.AddrPortFrom(a, tc.src) || q.CM.Dst != netip.AddrPortFrom(a, tc.dst) || q.CM.Inbound != tc.inbound ||
			q.CM.PID != tc.pid || q.CM.State != "CONNECT" || q.CM.PortSpace != "tcp" {
			t.Errorf("QP %d's CM %+v: want %s:%d -> %s:%d, inbound %v", tc.lqpn, q.CM, a, tc.src, a, tc.dst, tc.inbound)
		}
	}
}
