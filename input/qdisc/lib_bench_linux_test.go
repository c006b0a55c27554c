package qdisc

import (
	"encoding/binary"
	"runtime"
	"testing"

	vnl "github.com/vishvananda/netlink"
	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// handParseLink is the hand-written RTM_NEWLINK decoder the collector used
// before it took vishvananda/netlink's LinkDeserialize (decodeLink), kept
// as the benchmark's other side.
func handParseLink(b []byte) (linkMsg, error) {
	const (
		iflaIfname      = 3   // IFLA_IFNAME
		iflaNumTxQueues = 31  // IFLA_NUM_TX_QUEUES
		iffLoopback     = 0x8 // IFF_LOOPBACK
	)
	var l linkMsg
	if len(b) < ifinfomsgLn {
		return l, errShort
	}
	l.Index = int32(binary.NativeEndian.Uint32(b[4:]))
	l.Loopback = binary.NativeEndian.Uint32(b[8:])&iffLoopback != 0
	err := attrs(b[ifinfomsgLn:], func(typ uint16, v []byte) error {
		switch typ {
		case iflaIfname:
			l.Name = cstring(v)
		case iflaNumTxQueues:
			l.TxQueues = u32(v, 0)
		}
		return nil
	})
	return l, err
}

// libHandleIn is a vishvananda/netlink handle answering for the namespace
// at nsPath, the library's counterpart of openRtnlIn.
func libHandleIn(t testing.TB, nsPath string) *vnl.Handle {
	t.Helper()
	nsh, err := vns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := vnl.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// BenchmarkRtnlVsLibrary puts the dumps of one collection beside
// github.com/vishvananda/netlink's over the same tree (benchTree: 16 veths
// with 4 TX queues and an mq root) in the same run, part by part: links
// with the hand-written decoder the collector had (own) and with the
// library's LinkDeserialize it now uses (library), both over our dump, and
// the library's whole LinkList; qdiscs and classes with our parser and
// with QdiscList and ClassList. cpu-ns/dump is the process's CPU time,
// garbage collection included, as in BenchmarkCollectVsTC. Each iteration does libRounds of each part,
// so that make bench's -benchtime 1x still averages; the per-collection
// figures are the metrics. Both sides must see the same objects.
func BenchmarkRtnlVsLibrary(b *testing.B) {
	const libRounds = 200
	a, _ := benchTree(b)
	r, err := openRtnlIn(a.Path())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	h := libHandleIn(b, a.Path())

	var mqDevs []int32
	if err := r.links(func(l linkMsg) {
		if l.TxQueues == benchQueues {
			mqDevs = append(mqDevs, l.Index)
		}
	}); err != nil {
		b.Fatal(err)
	}
	if len(mqDevs) != benchDevices {
		b.Fatalf("%d devices with %d queues, want %d", len(mqDevs), benchQueues, benchDevices)
	}
	libLinks := make([]vnl.Link, len(mqDevs))
	for i, idx := range mqDevs {
		libLinks[i] = &vnl.Device{LinkAttrs: vnl.LinkAttrs{Index: int(idx)}}
	}

	parts := []struct {
		name string
		own  func() (int, error)
		lib  func() (int, error)
	}{
		{
			name: "links",
			own: func() (int, error) {
				var hdr [ifinfomsgLn]byte
				n := 0
				var perr error
				err := r.dump(unix.RTM_GETLINK, hdr[:], func(t uint16, p []byte) {
					if t != rtmNewLink {
						return
					}
					if _, err := handParseLink(p); err != nil {
						perr = err
					}
					n++
				})
				if err == nil {
					err = perr
				}
				return n, err
			},
			lib: func() (int, error) {
				n := 0
				err := r.links(func(linkMsg) { n++ })
				return n, err
			},
		},
		{
			name: "links-LinkList",
			own:  func() (int, error) { return 0, nil }, // the row above
			lib: func() (int, error) {
				l, err := h.LinkList()
				return len(l), err
			},
		},
		{
			name: "qdiscs",
			own: func() (int, error) {
				n := 0
				err := r.tc(unix.RTM_GETQDISC, 0, func(*tcMsg) { n++ })
				return n, err
			},
			lib: func() (int, error) {
				q, err := h.QdiscList(nil)
				return len(q), err
			},
		},
		{
			name: "classes",
			own: func() (int, error) {
				n := 0
				for _, idx := range mqDevs {
					if err := r.tc(unix.RTM_GETTCLASS, idx, func(*tcMsg) { n++ }); err != nil {
						return n, err
					}
				}
				return n, nil
			},
			lib: func() (int, error) {
				n := 0
				for _, l := range libLinks {
					c, err := h.ClassList(l, 0)
					if err != nil {
						return n, err
					}
					n += len(c)
				}
				return n, nil
			},
		},
	}
	for _, p := range parts {
		ownN, err := p.own()
		if err != nil {
			b.Fatal(err)
		}
		libN, err := p.lib()
		if err != nil {
			b.Fatal(err)
		}
		if p.name == "links-LinkList" {
			ownN = len(mqDevs) + 1 // and lo
		}
		if ownN == 0 || ownN != libN {
			b.Fatalf("%s: own dump saw %d objects, library %d", p.name, ownN, libN)
		}
		for _, side := range []struct {
			name string
			fn   func() (int, error)
		}{{"own", p.own}, {"library", p.lib}} {
			if p.name == "links-LinkList" && side.name == "own" {
				continue
			}
			fn := side.fn
			b.Run(p.name+"/"+side.name, func(b *testing.B) {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := selfCPU()
				for b.Loop() {
					for range libRounds {
						if n, err := fn(); err != nil || n != ownN {
							b.Fatalf("%d objects, %v; want %d", n, err, ownN)
						}
					}
				}
				used := selfCPU() - start
				runtime.ReadMemStats(&after)
				per := float64(b.N * libRounds)
				b.ReportMetric(float64(used.Nanoseconds())/per, "cpu-ns/dump")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/dump")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/dump")
				b.ReportMetric(float64(ownN), "objects")
			})
		}
	}
}
