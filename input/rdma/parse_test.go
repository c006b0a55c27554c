package rdma

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func nla(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nest(typ uint16, children ...[]byte) []byte {
	var v []byte
	for _, c := range children {
		v = append(v, c...)
	}
	return nla(typ|0x8000, v)
}

func nu32(typ uint16, v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return nla(typ, b)
}

func nu64(typ uint16, v uint64) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, v)
	return nla(typ, b)
}

func nstr(typ uint16, s string) []byte { return nla(typ, append([]byte(s), 0)) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func sin(ap netip.AddrPort) []byte {
	b := make([]byte, 128)
	if ap.Addr().Is4() {
		binary.NativeEndian.PutUint16(b, 2)
		binary.BigEndian.PutUint16(b[2:], ap.Port())
		a := ap.Addr().As4()
		copy(b[4:], a[:])
	} else {
		binary.NativeEndian.PutUint16(b, 10)
		binary.BigEndian.PutUint16(b[2:], ap.Port())
		a := ap.Addr().As16()
		copy(b[8:], a[:])
	}
	return b
}

func TestParseDevice(t *testing.T) {
	d, err := ParseDevice(cat(nu32(attrDevIndex, 3), nstr(attrDevName, "rxe0"), nu32(attrPortIndex, 1),
		nstr(attrFWVersion, "1.0.0"), nu64(attrNodeGUID, 0x0102030405060708), nla(attrNodeType, []byte{1}),
		nstr(attrDevProtocol, "roce")))
	if err != nil {
		t.Fatal(err)
	}
	// The kernel sends be64_to_cpu(node_guid): the value, read high
	// bytes first, is the GUID as ibv_devinfo and rdma print it.
	want := Device{Index: 3, Name: "rxe0", Protocol: "roce", FirmwareVersion: "1.0.0", NodeType: 1, NodeGUID: "0102:0304:0506:0708"}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("ParseDevice = %+v, want %+v", d, want)
	}
}

func TestParsePort(t *testing.T) {
	dev, p, err := ParsePort(cat(nu32(attrDevIndex, 3), nstr(attrDevName, "rxe0"), nu32(attrPortIndex, 1),
		nla(attrPortState, []byte{4}), nla(attrPortPhysState, []byte{5}), nu32(attrNdevIndex, 7), nstr(attrNdevName, "veth0")))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Port{Index: 1, State: "ACTIVE", PhysState: 5, Netdev: "veth0", NetdevIndex: 7}); dev != 3 || !reflect.DeepEqual(p, want) {
		t.Errorf("ParsePort = %d, %+v; want 3, %+v", dev, p, want)
	}
}

func qpEntry(lqpn, rqpn, sq, rq uint32, typ, state uint8, owner []byte) []byte {
	return nest(attrResQPEntry, nu32(attrPortIndex, 1), nu32(attrResLQPN, lqpn), nu32(attrResRQPN, rqpn),
		nu32(attrResRQPSN, rq), nu32(attrResSQPSN, sq), nla(25, []byte{3}), nla(attrResType, []byte{typ}),
		nla(attrResState, []byte{state}), owner, nu32(attrResPDN, 2))
}

func TestParseQPs(t *testing.T) {
	msg := cat(nu32(attrDevIndex, 3), nstr(attrDevName, "rxe0"), nest(attrResQP,
		qpEntry(1, 0, 0, 0, 1, 3, nstr(attrResKernName, "ib_core")),
		qpEntry(17, 18, 0xfffffe, 123, 2, 3, nu32(attrResPID, 4242))))
	var got []QP
	if err := ParseQPs(msg, func(q QP) { got = append(got, q) }); err != nil {
		t.Fatal(err)
	}
	want := []QP{
		{DeviceIndex: 3, Device: "rxe0", Port: 1, LQPN: 1, Type: "GSI", State: "RTS", KernelOwner: "ib_core", PDN: 2},
		{DeviceIndex: 3, Device: "rxe0", Port: 1, LQPN: 17, RQPN: 18, SQPSN: 0xfffffe, RQPSN: 123, Type: "RC", State: "RTS", PID: 4242, PDN: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseQPs = %+v\nwant %+v", got, want)
	}
}

func TestParseCMIDs(t *testing.T) {
	src, dst := netip.MustParseAddrPort("10.77.0.1:7471"), netip.MustParseAddrPort("10.77.0.1:40000")
	src6 := netip.MustParseAddrPort("[fd00::1]:7471")
	msg := cat(nu32(attrDevIndex, 3), nstr(attrDevName, "rxe0"), nest(attrResCMID,
		nest(attrResCMIDEntry, nu32(attrPortIndex, 1), nu32(attrResLQPN, 17), nla(attrResType, []byte{2}),
			nu32(attrResPS, 0x106), nla(attrResState, []byte{5}), nla(attrResSrcAddr, sin(src)), nla(attrResDstAddr, sin(dst)),
			nu32(attrResCMIDN, 9), nu32(attrResPID, 4242)),
		nest(attrResCMIDEntry, nu32(attrResPS, 0x111), nla(attrResState, []byte{8}), nla(attrResSrcAddr, sin(src6)),
			nu32(attrResCMIDN, 10), nstr(attrResKernName, "nvmet_rdma"))))
	var got []CMID
	if err := ParseCMIDs(msg, func(c CMID) { got = append(got, c) }); err != nil {
		t.Fatal(err)
	}
	want := []CMID{
		{DeviceIndex: 3, Device: "rxe0", Port: 1, ID: 9, LQPN: 17, PortSpace: "tcp", State: "CONNECT", Src: src, Dst: dst, PID: 4242},
		{DeviceIndex: 3, Device: "rxe0", ID: 10, PortSpace: "udp", State: "LISTEN", Src: src6, KernelOwner: "nvmet_rdma"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCMIDs = %+v\nwant %+v", got, want)
	}
}

// TestParsersRejectMalformed: lengths that do not fit and values of the
// wrong size are errors naming the attribute, never a panic.
func TestParsersRejectMalformed(t *testing.T) {
	good := cat(nu32(attrDevIndex, 3), nstr(attrDevName, "rxe0"), nest(attrResQP, qpEntry(17, 18, 1, 2, 2, 3, nu32(attrResPID, 1))))
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated header", good[:2], "2 bytes left"},
		{"length past the end", good[:len(good)-8], "has length"},
		{"short u32", cat(nla(attrDevIndex, []byte{1, 2}), nstr(attrDevName, "x")), "attribute 1: 2 bytes, want a u32"},
		{"entry without QPN", cat(nu32(attrDevIndex, 3), nest(attrResQP, nest(attrResQPEntry, nu32(attrResPID, 1)))), "without a local QPN"},
		{"zero length", []byte{0, 0, 1, 0}, "has length 0"},
		{"short sockaddr", cat(nu32(attrDevIndex, 3), nest(attrResCMID, nest(attrResCMIDEntry, nla(attrResSrcAddr, []byte{2, 0, 0, 1})))), "too short for sockaddr_in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if strings.Contains(tc.name, "sockaddr") {
				err = ParseCMIDs(tc.b, func(CMID) {})
			} else {
				err = ParseQPs(tc.b, func(QP) {})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// dumps reads the testdata files matching pattern: one message a line,
// "KIND BASE64", as TestSoftRoCEQueuePairsCMAndCounters logs them in the
// kernel matrix.
func dumps(t testing.TB, pattern string) map[string][][]byte {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	out := map[string][][]byte{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			kind, enc, ok := strings.Cut(sc.Text(), " ")
			if !ok || strings.HasPrefix(kind, "#") {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[kind] = append(out[kind], b)
		}
		fh.Close()
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, msgs := range dumps(f, "*.dump") {
		for _, b := range msgs {
			f.Add(b)
		}
	}
	f.Add(cat(nu32(attrDevIndex, 3), nstr(attrDevName, "rxe0"), nest(attrResQP, qpEntry(17, 18, 1, 2, 2, 3, nu32(attrResPID, 1)))))
	f.Add(cat(nu32(attrDevIndex, 3), nest(attrResCMID, nest(attrResCMIDEntry, nla(attrResSrcAddr, sin(netip.MustParseAddrPort("[::1]:1")))))))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseDevice(b)
		_, _, _ = ParsePort(b)
		_ = ParseQPs(b, func(QP) {})
		_ = ParseCMIDs(b, func(CMID) {})
	})
}
