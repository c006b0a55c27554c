package qdisc

import (
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
	"os"
	"reflect"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

func TestDeviceGoneAndQdiscRecreatedBetweenPeriods(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vg0", 1, "10.79.0.1", "10.79.0.2")
	nstest.VethPair(t, a, b, "vr0", 1, "10.79.1.1", "10.79.1.2")
	a.Run(t, "tc", "qdisc", "add", "dev", "vg0", "root", "handle", "1:", "pfifo")
	a.Run(t, "tc", "qdisc", "add", "dev", "vr0", "root", "handle", "1:", "pfifo")
	c := newTestCollector(t, Options{}, qdisctest.Namespaces(t, a))
	defer c.Close()

	collectOnce(t, c)
	qdisctest.SendUDP(t, a, "10.79.1.2:9000", 40, 1000)
	first := collectOnce(t, c)
	s := findSample(first, ScopeQdisc, "vr0", func(s *Sample) bool { return s.Handle == 0x10000 })
	if s == nil || s.Delta.Bytes != 40*udpFrame(1000) || s.Reset {
		t.Fatalf("vr0 before the replacement: %+v", s)
	}

	// The same kind and handle again: its counters restart from zero
	// below the previous ones.
	a.Run(t, "ip", "link", "del", "vg0")
	a.Run(t, "tc", "qdisc", "del", "dev", "vr0", "root")
	a.Run(t, "tc", "qdisc", "add", "dev", "vr0", "root", "handle", "1:", "pfifo")
	qdisctest.SendUDP(t, a, "10.79.1.2:9000", 3, 100)
	second := collectOnce(t, c)
	if g := findSample(second, ScopeQdisc, "vg0", func(*Sample) bool { return true }); g != nil {
		t.Errorf("deleted device still reported: %+v", g)
	}
	s = findSample(second, ScopeQdisc, "vr0", func(s *Sample) bool { return s.Handle == 0x10000 })
	want := Counters{Bytes: 3 * udpFrame(100), Packets: 3}
	if s == nil || !s.Reset || !s.HasDelta || s.Delta != want || s.Counters != want {
		t.Fatalf("vr0 after the replacement: %+v, want reset with delta %+v", s, want)
	}

	// A different kind under the same handle is a new series, born in
	// the period: its delta is its cumulative count.
	a.Run(t, "tc", "qdisc", "del", "dev", "vr0", "root")
	a.Run(t, "tc", "qdisc", "add", "dev", "vr0", "root", "handle", "1:", "bfifo")
	qdisctest.SendUDP(t, a, "10.79.1.2:9000", 2, 10)
	third := collectOnce(t, c)
	s = findSample(third, ScopeQdisc, "vr0", func(s *Sample) bool { return s.Handle == 0x10000 })
	want = Counters{Bytes: 2 * udpFrame(10), Packets: 2}
	if s == nil || s.Kind != "bfifo" || s.Reset || !s.HasDelta || s.Delta != want {
		t.Fatalf("vr0 after the kind change: %+v, want delta %+v", s, want)
	}
}

// TestXPSReadLeavesNoThreadInAnotherNamespace: reading XPS masks enters
// another network namespace and a private mount namespace on a thread;
// afterwards no thread of the process, the main one included, may still
// be in either.
func TestXPSReadLeavesNoThreadInAnotherNamespace(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vx0", 2, "10.83.0.1", "10.83.0.2")
	a.Run(t, "sh", "-c", "echo 2 > /sys/class/net/vx0/queues/tx-0/xps_cpus && echo 1 > /sys/class/net/vx0/queues/tx-1/xps_cpus")
	nsIno := func(p string) uint64 {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	wantNet, wantMnt := nsIno("/proc/self/ns/net"), nsIno("/proc/self/ns/mnt")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &Device{Name: "vx0", TxQueues: 2}
			if err := readXPSIn(a.Path(), "/sys", []*Device{d}); err != nil {
				t.Error(err)
			} else if !reflect.DeepEqual(d.XPS, []string{"2", "1"}) {
				t.Errorf("XPS %q, want [2 1]", d.XPS)
			}
		}()
	}
	wg.Wait()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		p := "/proc/self/task/" + task.Name() + "/ns/"
		var st unix.Stat_t
		if unix.Stat(p+"net", &st) != nil {
			continue // the thread just exited
		}
		if st.Ino != wantNet {
			t.Errorf("thread %s in netns %d, want %d", task.Name(), st.Ino, wantNet)
		}
		if unix.Stat(p+"mnt", &st) == nil && st.Ino != wantMnt {
			t.Errorf("thread %s in mount ns %d, want %d", task.Name(), st.Ino, wantMnt)
		}
	}
}
