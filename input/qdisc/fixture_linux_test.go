package qdisc

import (
	"encoding/binary"
	"flag"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

var update = flag.Bool("update", false, "recapture testdata/live_*.hex from the running kernel")

// TestCaptureLiveFixtures records the qdisc and class dumps of an htb tree
// and an mq device as this kernel sends them, for the parser tests that
// run without root (go test -run TestCaptureLiveFixtures -update).
func TestCaptureLiveFixtures(t *testing.T) {
	if !*update {
		t.Skip("recaptures fixtures only with -update")
	}
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vh0", 1, "10.80.0.1", "10.80.0.2")
	nstest.VethPair(t, a, b, "vq0", 2, "10.80.1.1", "10.80.1.2")
	a.Run(t, "tc", "qdisc", "add", "dev", "vh0", "root", "handle", "1:", "htb", "default", "20")
	a.Run(t, "tc", "class", "add", "dev", "vh0", "parent", "1:", "classid", "1:20", "htb", "rate", "5gbit", "ceil", "8gbit", "prio", "3")
	a.Run(t, "tc", "qdisc", "add", "dev", "vq0", "root", "handle", "7:", "mq")
	qdisctest.SendUDP(t, a, "10.80.0.2:6000", 4, 58)
	qdisctest.SendUDP(t, a, "10.80.1.2:6000", 2, 100)

	r, err := openRtnlIn(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	idx := map[string]int32{}
	if err := r.links(func(l linkMsg) { idx[l.Name] = l.Index }); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"vh0", "vq0"} {
		var sb strings.Builder
		fmt.Fprintf(&sb, "# RTM_NEWQDISC and RTM_NEWTCLASS dumps of %s, captured from Linux (TestCaptureLiveFixtures -update).\n", dev)
		record := func(typ uint16, p []byte) {
			var h [netlink.HdrLen]byte
			binary.NativeEndian.PutUint32(h[0:], uint32(netlink.HdrLen+len(p)))
			binary.NativeEndian.PutUint16(h[4:], typ)
			binary.NativeEndian.PutUint32(h[8:], 1)
			msg := append(h[:], p...)
			for i := 0; i < len(msg); i += 16 {
				line := msg[i:min(i+16, len(msg))]
				for j, c := range line {
					if j > 0 {
						sb.WriteByte(' ')
					}
					fmt.Fprintf(&sb, "%02x", c)
				}
				sb.WriteByte('\n')
			}
		}
		var hdr [tcmsgLen]byte
		binary.NativeEndian.PutUint32(hdr[4:], uint32(idx[dev]))
		err := r.dump(unix.RTM_GETQDISC, hdr[:], func(typ uint16, p []byte) {
			if m, err := parseTC(p); err == nil && m.Ifindex == idx[dev] {
				record(typ, p)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.dump(unix.RTM_GETTCLASS, hdr[:], record); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "live_"+dev+".hex"), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
