package cpu

import (
	"context"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu/internal/cputest"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// TestSamplerFirstPeriodStartsAtTrack: the sampler credits CPU time from
// the baseline track reads, so its first period must not also count the
// time between opening the meter and that track (the agent selects the
// processes in between, which takes long on a slow machine): the rate
// would come out too low by that much.
func TestSamplerFirstPeriodStartsAtTrack(t *testing.T) {
	nstest.RequireRoot(t)
	busy := cputest.StartChild(t, "busy 1")
	c, err := New(Options{Method: MethodSampling})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	time.Sleep(300 * time.Millisecond)
	tracked := time.Now()
	c.Track([]int{busy.PID()})
	prev, err := c.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cur, err := c.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := Diff(prev, cur)
	if since := time.Since(tracked); u.Period > since {
		t.Errorf("first period is %v long, but only %v passed since the track that started it", u.Period, since)
	}
}

// TestTrackSeries measures a busy child with each method: snapshots hold
// the tracked processes only, counts are cumulative within a series, and
// a process left out by Track and tracked again starts a new series that
// Diff counts from zero.
func TestTrackSeries(t *testing.T) {
	nstest.RequireRoot(t)
	busy := cputest.StartChild(t, "busy 0")
	other := cputest.StartChild(t, "busy 1")
	for _, method := range []string{MethodEBPF, MethodSampling} {
		t.Run(method, func(t *testing.T) {
			c, err := New(Options{Method: method, SampleInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Method() != method {
				t.Fatalf("Method() = %s, want %s", c.Method(), method)
			}
			ctx := context.Background()
			c.Track([]int{busy.PID()})
			// collect waits until each child ran 50 ms more: on a
			// loaded machine a pinned child may wait for its core while
			// the other runs, and a sum of both let a collection come
			// with the busy child not run since the previous one (its
			// core 0 time then is not cumulative, and with eBPF a child
			// that did not run is not in the snapshot).
			lastBusy, lastOther := cputest.CPUTicks(t, busy.PID()), cputest.CPUTicks(t, other.PID())
			collect := func() Snapshot {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if cputest.CPUTicks(t, busy.PID()) >= lastBusy+5 && cputest.CPUTicks(t, other.PID()) >= lastOther+5 {
						break
					}
				}
				time.Sleep(100 * time.Millisecond)
				lastBusy, lastOther = cputest.CPUTicks(t, busy.PID()), cputest.CPUTicks(t, other.PID())
				s, err := c.Collect(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			find := func(s Snapshot, pid int) *ProcessTimes {
				for i := range s.Processes {
					if s.Processes[i].Process.PID == pid {
						return &s.Processes[i]
					}
				}
				return nil
			}
			// The eBPF program counts a task from its first switch after
			// the attach: a pinned child spinning alone on its core may
			// take a while to show.
			s1 := collect()
			for i := 0; i < 20 && find(s1, busy.PID()) == nil; i++ {
				s1 = collect()
			}
			s2 := collect()
			if len(s2.Processes) != 1 || s2.Processes[0].Process.PID != busy.PID() {
				t.Fatalf("snapshot holds %d processes, want only the tracked %d: %+v", len(s2.Processes), busy.PID(), s2.Processes)
			}
			p1, p2 := find(s1, busy.PID()), find(s2, busy.PID())
			if p1 == nil || p2 == nil || p1.Series != p2.Series {
				t.Fatalf("busy child %+v then %+v: want it in both, in one series", p1, p2)
			}
			if p2.CoreNs[0] <= p1.CoreNs[0] {
				t.Errorf("core 0 time %d then %d: not cumulative", p1.CoreNs[0], p2.CoreNs[0])
			}
			if p2.Process.Executable == "" || p2.Process.StartTime == 0 {
				t.Errorf("child not named: %+v", p2.Process)
			}
			u := Diff(s1, s2)
			if len(u.Processes) != 1 || u.Processes[0].DominantCore != 0 || u.Processes[0].Pct <= 0 {
				t.Errorf("usage %+v: want the child busy on core 0", u.Processes)
			}
			if len(u.Cores) != len(s2.Cores) || len(u.Cores) == 0 {
				t.Errorf("%d core usages for %d cores", len(u.Cores), len(s2.Cores))
			}

			c.Track([]int{other.PID()})
			s3 := collect()
			if find(s3, busy.PID()) != nil || find(s3, other.PID()) == nil {
				t.Fatalf("after Track(other): %+v", s3.Processes)
			}
			c.Track([]int{busy.PID(), other.PID()})
			s4 := collect()
			p4 := find(s4, busy.PID())
			if p4 == nil || p4.Series == p2.Series {
				t.Fatalf("tracked again: %+v, want a new series after %d", p4, p2.Series)
			}
			// Against s2, which still had the old series, the new one counts
			// from zero: all its counts, not their difference to the old.
			u = Diff(s2, s4)
			var got uint64
			for _, pu := range u.Processes {
				if pu.Process.PID == busy.PID() {
					got = pu.TotalNs
				}
			}
			if got != p4.coreSum() {
				t.Errorf("new series counted %d ns, its counts hold %d", got, p4.coreSum())
			}
		})
	}
}

func (p *ProcessTimes) coreSum() uint64 {
	var n uint64
	for _, ns := range p.CoreNs {
		n += ns
	}
	return n
}

// TestAllPicksUpNewProcesses: without Track (every process), a process
// started after the collector is measured from the next collection on.
func TestAllPicksUpNewProcesses(t *testing.T) {
	nstest.RequireRoot(t)
	for _, method := range []string{MethodEBPF, MethodSampling} {
		t.Run(method, func(t *testing.T) {
			c, err := New(Options{Method: method, SampleInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if _, err := c.Collect(ctx); err != nil {
				t.Fatal(err)
			}
			c.Track(nil) // already every process: changes nothing
			child := cputest.StartChild(t, "busy 1")
			var prev Snapshot
			for i := 0; i < 20; i++ {
				time.Sleep(200 * time.Millisecond)
				cur, err := c.Collect(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range Diff(prev, cur).Processes {
					if p.Process.PID == child.PID() && p.DominantCore == 1 {
						return
					}
				}
				prev = cur
			}
			t.Errorf("child %d started after the collector was never measured", child.PID())
		})
	}
}
