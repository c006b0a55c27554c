package cpuinput

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/cpu/internal/cputest"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
	"golang.org/x/sys/unix"
)

// periodResult is one measured period with the children's own CPU time over
// the same interval.
type periodResult struct {
	start, end time.Time
	events     []pipeline.Event
	truthNs    map[int]uint64 // from utime+stime, read right after collect
	// shared is what the period handed the flows input's rollups
	// (input.Settings.Cores) for each child with a process event.
	shared map[int]input.CoreUse
}

// measure runs the input's period logic with the given method for n
// periods of length d, reading each child's utime+stime right before and
// right after every collection (the reference one included).
func measure(t *testing.T, method string, n int, d time.Duration, done func([]periodResult) bool, pids ...int) ([]periodResult, *truth) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Method = method
	cfg.Period = config.Duration(d)
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
	in := &cpuInput{cfg: cfg, s: input.Settings{Logger: log, ProcRoot: "/proc", Cores: input.NewProcessCores()}, log: log}
	c, got, err := in.openCollector()
	if err != nil {
		t.Fatal(err)
	}
	if got != method {
		t.Fatalf("method %s ran as %s; log: %s", method, got, logBuf.String())
	}
	logMu.Lock()
	if lines := strings.Count(logBuf.String(), "\n"); lines != 1 || !strings.Contains(logBuf.String(), "cpu: measuring processes") {
		t.Errorf("want one log line naming the method, got %q", logBuf.String())
	}
	logMu.Unlock()
	defer c.Close()
	tr := &truth{t: t, pids: pids}
	in.coll, in.method = c, got
	in.beforeCollect, in.afterCollect = tr.before, tr.after
	in.procs = procindex.New(procindex.Options{ProcRoot: "/proc"})
	sel, err := in.selectProcesses()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !sel.has(pid) {
			t.Fatalf("child %d holds a socket but is not selected: %v", pid, sel)
		}
	}
	ctx := context.Background()
	in.begin(ctx)
	// A first period, not judged, ends in a collection: from there on
	// the windows run from collection to collection for both methods, and
	// truth reads the ground truth around those very moments.
	_ = in.period(ctx)
	tr.mark()
	start := time.Now()
	var out []periodResult
	for range n {
		time.Sleep(time.Until(start.Add(d)))
		events := in.period(ctx)
		r := periodResult{start: start, events: events, truthNs: tr.truthNs, shared: map[int]input.CoreUse{}}
		for _, e := range events {
			// The series of a process event is process/PID/STARTTIME.
			var k input.ProcessKey
			if _, err := fmt.Sscanf(e.Series, "process/%d/%d", &k.PID, &k.StartTime); err != nil || !slices.Contains(pids, k.PID) {
				continue
			}
			if u, ok := in.s.Cores.Get(k, time.Now()); ok {
				r.shared[k.PID] = u
			}
		}
		r.end = time.Now()
		start = r.end
		out = append(out, r)
		if done(out) {
			break
		}
	}
	return out, tr
}

// truth reads the children's utime+stime right before and right after
// each collection. The collector reads its counters at some moment inside
// Collect, so the CPU time it measured between two collections lies
// between what utime+stime grew from the first read after the earlier
// collection to the last read before the later one (lower), and from the
// read before the earlier one to the read after the later one (upper).
// Reading after Collect alone and comparing with that is off by what the
// children ran inside the two Collect calls: in a kernel-matrix guest
// (5.10, emulated, two spinning children on two vCPUs) a Collect with
// sampling took up to half a second, and the sampling meter measured the
// pinned child at 1388 ms against 1820 ms read after the calls.
type truth struct {
	t          *testing.T
	pids       []int
	lo, hi     map[int]uint64 // ticks before and after the latest collection
	lo0, hi0   map[int]uint64 // before and after the collection that starts the judged periods
	prevHi     map[int]uint64
	truthNs    map[int]uint64 // after-to-after, for judging starvation
	collectDur time.Duration  // the longest Collect call
	began      time.Time
}

func (m *truth) ticks() map[int]uint64 {
	now := make(map[int]uint64, len(m.pids))
	for _, pid := range m.pids {
		now[pid] = cputest.CPUTicks(m.t, pid)
	}
	return now
}

func (m *truth) before() {
	m.began = time.Now()
	m.lo = m.ticks()
}

func (m *truth) after() {
	m.collectDur = max(m.collectDur, time.Since(m.began))
	m.hi = m.ticks()
	m.truthNs = map[int]uint64{}
	for pid, ticks := range m.hi {
		if m.prevHi != nil {
			m.truthNs[pid] = (ticks - m.prevHi[pid]) * cputest.NsPerTick
		}
	}
	m.prevHi = m.hi
}

// mark makes the latest collection the start of the judged periods.
func (m *truth) mark() { m.lo0, m.hi0 = m.lo, m.hi }

// truthRes is the resolution of a bound: each is the difference of two
// reads of utime+stime, each of which truncates utime and stime to whole
// USER_HZ ticks (10 ms): up to 2 ticks per read.
const truthRes = 40e6

// bounds are the least and the most CPU time pid can have had between
// the collection marked and the latest one.
func (m *truth) bounds(pid int) (lower, upper float64) {
	return float64((m.lo[pid] - m.hi0[pid]) * cputest.NsPerTick), float64((m.hi[pid] - m.lo0[pid]) * cputest.NsPerTick)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func field(t *testing.T, e pipeline.Event, key string) any {
	t.Helper()
	v, ok := e.Fields.GetValue(key)
	if !ok {
		t.Fatalf("event %s has no %s: %v", e.Series, key, e.Fields)
	}
	return v
}

func num(t *testing.T, e pipeline.Event, key string) float64 {
	t.Helper()
	switch v := field(t, e, key).(type) {
	case float64:
		return v
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	}
	t.Fatalf("%s of %s is %T", key, e.Series, field(t, e, key))
	return 0
}

// ofProcess returns the process event and the process_core events of pid.
func ofProcess(t *testing.T, events []pipeline.Event, pid int) (proc *pipeline.Event, cores map[int]pipeline.Event) {
	t.Helper()
	cores = map[int]pipeline.Event{}
	for i, e := range events {
		if p, ok := e.Fields.GetValue("process.pid"); !ok || p != pid {
			continue
		}
		switch field(t, e, "fleutan.cpu.scope") {
		case ScopeProcess:
			proc = &events[i]
		case ScopeProcessCore:
			cores[int(num(t, e, "fleutan.cpu.core"))] = e
		}
	}
	if proc == nil {
		t.Fatalf("no process event for pid %d among %d events", pid, len(events))
	}
	return proc, cores
}

// checkShared: what the cpu input hands the flows input's rollups for
// a process is what its own events of the period say: pct, dominant core,
// spread, and its pct of each core.
func checkShared(t *testing.T, period, pid int, u input.CoreUse, proc pipeline.Event, cores map[int]pipeline.Event) {
	t.Helper()
	if u.Pct != num(t, proc, "fleutan.cpu.pct") || float64(u.DominantCore) != num(t, proc, "fleutan.cpu.dominant_core") ||
		u.Spread != num(t, proc, "fleutan.cpu.spread") || len(u.Cores) != len(cores) {
		t.Errorf("period %d pid %d: shared %+v, process event %v, %d core events", period, pid, u, proc.Fields, len(cores))
		return
	}
	for _, c := range u.Cores {
		e, ok := cores[c.CPU]
		if !ok || c.Pct != num(t, e, "fleutan.cpu.pct") {
			t.Errorf("period %d pid %d: shared core %d pct %v, core event %v", period, pid, c.CPU, c.Pct, e.Fields)
		}
	}
}

// enough is the CPU time a child must have had in a period for its
// placement to be judged: on a loaded CI machine a child may be starved
// for a whole period, which proves nothing either way.
const enough = 100 * time.Millisecond

// TestProcessCoresMatchAffinity measures a child pinned to core 1 and one
// moved between cores 0 and 1 every 200 ms, with both methods at once, and
// checks placement, spread and migrations against what the children did
// and the CPU time against their own utime+stime.
func TestProcessCoresMatchAffinity(t *testing.T) {
	nstest.RequireRoot(t)
	pinned := cputest.StartChild(t, "busy 1")
	moving := cputest.StartChild(t, "move 200")

	// Tolerances. Both meters count nanoseconds of runtime (eBPF every
	// slice; sampling each thread's sum_exec_runtime from schedstat), so
	// the totals must lie within 5% of the bounds truth reads around the
	// collections, plus truthRes for the ticks of utime+stime. Against
	// utime+stime read after each collection alone they were off by up to
	// 19% (eBPF: 912 ms against 1130 ms, with a Collect of 460 ms in a
	// 5.10 guest), all of it inside those bounds.
	//
	// minSpread is what the moving child's spread must exceed in a period
	// with 3 or more moves. eBPF sees every switch: 1.5. Sampling credits
	// the runtime since the previous sample to the core the thread is on
	// at the sample, and the sampler is a thread itself: with the pinned
	// child spinning on core 1, it gets a CPU most readily while the
	// moving child shares core 1 and core 0 is free, so its samples can
	// land mostly in the moving child's core 1 dwells. In a stalled 5.10
	// guest period (2.8 s for 1 s) it credited the runtime of 12 moves
	// over 99% to one core: spread 1.04. What sampling promises is that
	// both cores get some of it: above 1.
	for _, tc := range []struct {
		method    string
		totalTol  float64
		minShare  float64 // pinned child's share on core 1
		maxSpread float64 // pinned child
		minSpread float64 // moving child
	}{
		{MethodEBPF, 0.05, 0.90, 1.10, 1.5},
		{MethodSampling, 0.05, 0.90, 1.10, 1.0},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			// Two periods of 1 s, more (up to 6) while either child was
			// starved or the moving child made fewer than 3 moves.
			judged := func(res []periodResult) (pinnedOK, movingOK int) {
				for _, r := range res {
					if r.truthNs[pinned.PID()] >= uint64(enough) {
						pinnedOK++
					}
					if r.truthNs[moving.PID()] >= uint64(enough) && moving.MovesIn(r.start, r.end) >= 3 {
						movingOK++
					}
				}
				return
			}
			res, tr := measure(t, tc.method, 6, time.Second, func(res []periodResult) bool {
				p, m := judged(res)
				return len(res) >= 2 && p >= 1 && m >= 1
			}, pinned.PID(), moving.PID())
			if p, m := judged(res); p == 0 || m == 0 {
				t.Fatalf("in %d periods the children never had %v of CPU (and 3 moves): machine too loaded to judge", len(res), enough)
			}
			var measured, truth = map[int]float64{}, map[int]float64{}
			spreadChecked := 0
			for i, r := range res {
				for _, pid := range []int{pinned.PID(), moving.PID()} {
					truth[pid] += float64(r.truthNs[pid])
					if r.truthNs[pid] < uint64(enough) {
						// Maybe no event at all (no CPU time): measured
						// counts what events there are.
						for _, e := range r.events {
							if p, _ := e.Fields.GetValue("process.pid"); p == pid && field(t, e, "fleutan.cpu.scope") == ScopeProcess {
								measured[pid] += num(t, e, "fleutan.cpu.pct") * num(t, e, "event.duration")
							}
						}
						continue
					}
					proc, cores := ofProcess(t, r.events, pid)
					if got := field(t, *proc, "fleutan.cpu.method"); got != tc.method {
						t.Errorf("method = %v, want %s", got, tc.method)
					}
					// pct is a fraction of one core: times the period the
					// meter measured (event.duration, not this loop's own
					// timing), the CPU time.
					measured[pid] += num(t, *proc, "fleutan.cpu.pct") * num(t, *proc, "event.duration")
					checkNorm(t, r, *proc)
					var shares float64
					for _, e := range cores {
						shares += num(t, e, "fleutan.cpu.share")
					}
					checkShared(t, i, pid, r.shared[pid], *proc, cores)
					if math.Abs(shares-1) > 0.001 {
						t.Errorf("period %d pid %d: shares add up to %v", i, pid, shares)
					}
				}

				checkCores(t, r, pinned.PID())
				t.Logf("%s period %d pinned: measured %.0f ms, utime+stime %.0f ms, window %v", tc.method, i,
					periodNs(t, r, pinned.PID())/1e6, float64(r.truthNs[pinned.PID()])/1e6, r.end.Sub(r.start).Round(time.Millisecond))
				if r.truthNs[pinned.PID()] < uint64(enough) {
					t.Logf("%s period %d: pinned child starved (%v of CPU), placement not judged", tc.method, i, time.Duration(r.truthNs[pinned.PID()]))
				} else {
					checkPinned(t, tc.method, i, r, pinned.PID(), tc.minShare, tc.maxSpread)
				}
				if r.truthNs[moving.PID()] < uint64(enough) {
					t.Logf("%s period %d: moving child starved, not judged", tc.method, i)
					continue
				}
				proc, _ := ofProcess(t, r.events, moving.PID())
				moves := moving.MovesIn(r.start, r.end)
				t.Logf("%s period %d moving: pct %.3f spread %v migrations %v moves %d", tc.method, i,
					num(t, *proc, "fleutan.cpu.pct"), field(t, *proc, "fleutan.cpu.spread"), field(t, *proc, "fleutan.cpu.migrations"), moves)
				if mig := num(t, *proc, "fleutan.cpu.migrations"); mig < float64(moves) {
					t.Errorf("period %d: moving child migrated %v times in a period with %d moves", i, mig, moves)
				}
				// A starved child (CI load) moves less often than every
				// 200 ms; the spread is only asserted for periods in which
				// it dwelt on both cores more than once.
				if moves >= 3 {
					spreadChecked++
					if s := num(t, *proc, "fleutan.cpu.spread"); s <= tc.minSpread {
						t.Errorf("period %d: moving child spread %v with %d moves, want above %v", i, s, moves, tc.minSpread)
					}
				}

			}
			if spreadChecked == 0 {
				t.Errorf("the moving child never made 3 moves in a period: the spread went unchecked")
			}
			for pid, after := range truth {
				got := measured[pid]
				lower, upper := tr.bounds(pid)
				t.Logf("%s pid %d: measured %.0f ms, utime+stime %.0f ms after the collections, between %.0f and %.0f ms around them (longest Collect %v)",
					tc.method, pid, got/1e6, after/1e6, lower/1e6, upper/1e6, tr.collectDur.Round(time.Millisecond))
				if got < lower*(1-tc.totalTol)-truthRes || got > upper*(1+tc.totalTol)+truthRes {
					t.Errorf("%s pid %d: measured %.0f ms of CPU, its utime+stime say between %.0f and %.0f ms (tolerance %.0f%% and %.0f ms)",
						tc.method, pid, got/1e6, lower/1e6, upper/1e6, tc.totalTol*100, truthRes/1e6)
				}
			}
		})
	}
}

// periodNs is the CPU time of pid's process event in one period (0
// without one).
func periodNs(t *testing.T, r periodResult, pid int) float64 {
	for _, e := range r.events {
		if p, _ := e.Fields.GetValue("process.pid"); p == pid && field(t, e, "fleutan.cpu.scope") == ScopeProcess {
			return num(t, e, "fleutan.cpu.pct") * num(t, e, "event.duration")
		}
	}
	return 0
}

// checkNorm checks a process event's norm.pct: its pct divided by the
// number of cores (as many as the period has core events).
func checkNorm(t *testing.T, r periodResult, proc pipeline.Event) {
	t.Helper()
	cores := 0
	for _, e := range r.events {
		if field(t, e, "fleutan.cpu.scope") == ScopeCore {
			cores++
		}
	}
	// event.duration is the period the event covers; the collection's own
	// time is apart, and far shorter.
	window, us := num(t, proc, "event.duration"), num(t, proc, "fleutan.collection.duration_us")
	if window < 0.5e9 || us <= 0 || us*1e3 >= window {
		t.Errorf("event.duration %v ns, fleutan.collection.duration_us %v: want the period and a shorter collection", window, us)
	}
	pct, norm := num(t, proc, "fleutan.cpu.pct"), num(t, proc, "fleutan.cpu.norm.pct")
	if want := pct / float64(cores); cores == 0 || math.Abs(norm-want) > 0.000006 {
		t.Errorf("norm.pct = %v with pct %v on %d cores, want %v", norm, pct, cores, want)
	}
}

// checkCores checks the core events against /proc/stat's accounting: the
// fractions add up to 1 and the pinned child cannot have used more of core
// 1 than /proc/stat says core 1 was busy (one tick, 1% of a second, of
// slack for the tick resolution of /proc/stat).
func checkCores(t *testing.T, r periodResult, pinnedPID int) {
	t.Helper()
	busy := map[int]float64{}
	for _, e := range r.events {
		if field(t, e, "fleutan.cpu.scope") != ScopeCore {
			continue
		}
		core := int(num(t, e, "fleutan.cpu.core"))
		var sum float64
		for _, k := range []string{"user", "system", "irq", "softirq", "iowait", "steal", "idle"} {
			sum += num(t, e, "fleutan.cpu."+k+".pct")
		}
		if math.Abs(sum-1) > 0.0001 {
			t.Errorf("core %d: fractions add up to %v", core, sum)
		}
		_ = num(t, e, "fleutan.cpu.softirq.net_rx")
		_ = num(t, e, "fleutan.cpu.softirq.net_tx")
		busy[core] = 1 - num(t, e, "fleutan.cpu.idle.pct") - num(t, e, "fleutan.cpu.iowait.pct")
	}
	if len(busy) != 2 {
		t.Fatalf("want core events for cores 0 and 1, got %v", busy)
	}
	for _, e := range r.events {
		if p, _ := e.Fields.GetValue("process.pid"); p != pinnedPID || field(t, e, "fleutan.cpu.scope") != ScopeProcessCore {
			continue
		}
		core := int(num(t, e, "fleutan.cpu.core"))
		if pct := num(t, e, "fleutan.cpu.pct"); pct > busy[core]+0.02 {
			t.Errorf("pinned child used %.1f%% of core %d, /proc/stat says it was busy %.1f%%", 100*pct, core, 100*busy[core])
		}
	}
}

// recorder keeps the events of the first publish and then ends the run.
type recorder struct {
	mu     sync.Mutex
	events []pipeline.Event
	cancel context.CancelFunc
}

func (r *recorder) Publish(ctx context.Context, events ...pipeline.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.events == nil {
		r.events = pipeline.CloneEvents(events)
	}
	r.cancel()
	return nil
}

// TestRunPublishesEveryScope runs the input as the agent does, from YAML.
func TestRunPublishesEveryScope(t *testing.T) {
	nstest.RequireRoot(t)
	c := cputest.StartChild(t, "busy 0")
	for _, method := range []string{MethodAuto, MethodSampling} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			var doc yaml.Node
			src := "period: 1s\nmethod: " + method + "\nsample_interval: 50ms\n"
			if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
				t.Fatal(err)
			}
			in, err := New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.0"), input.Settings{})
			if err != nil {
				t.Fatal(err)
			}
			// Generous: loading the program and the first /proc scan are
			// slow under -race on a loaded machine.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rec := &recorder{cancel: cancel}
			if err := in.Run(ctx, rec); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if rec.events == nil {
				t.Fatal("no period ended in 30 s")
			}
			want := MethodEBPF
			if method == MethodSampling {
				want = MethodSampling
			}
			proc, cores := ofProcess(t, rec.events, c.PID())
			if got := field(t, *proc, "fleutan.cpu.method"); got != want {
				t.Errorf("method %v, want %s", got, want)
			}
			if got := field(t, *proc, "fleutan.cpu.flows"); got != 2 {
				t.Errorf("flows %v, want 2 (the listener and the dialed end; the unaccepted end has no inode)", got)
			}
			if _, ok := cores[0]; !ok {
				t.Errorf("no process_core event for core 0")
			}
			if got := field(t, *proc, "event.dataset"); got != Dataset {
				t.Errorf("dataset %v", got)
			}
			if got := field(t, *proc, "process.executable"); got == "" {
				t.Errorf("no executable")
			}
		})
	}
}

// TestMethodFallback checks the choice and its one log line when the
// kernel refuses the eBPF program.
func TestMethodFallback(t *testing.T) {
	refuse := func(o cpu.Options) (*cpu.Collector, error) {
		if o.Method != cpu.MethodSampling {
			return nil, &cpu.EBPFError{Err: errors.New("attach raw tracepoint sched_switch: operation not permitted")}
		}
		return cpu.New(o)
	}
	noBPF := caps.Set(1 << caps.Perfmon)
	for _, tc := range []struct {
		method, want, log, err string
		have                   *caps.Set
	}{
		{MethodAuto, MethodSampling, `level=WARN msg="cpu: eBPF is not available here, measuring processes by sampling /proc instead" reason="attach raw tracepoint sched_switch: operation not permitted" sample_interval=100ms`, "", nil},
		{MethodSampling, MethodSampling, `level=INFO msg="cpu: measuring processes by sampling /proc (method: sampling)" sample_interval=100ms`, "", nil},
		{MethodEBPF, "", "", "cpu: method ebpf: attach raw tracepoint sched_switch: operation not permitted (use method: auto or sampling to fall back to sampling /proc)", nil},
		{MethodAuto, MethodSampling, `level=WARN msg="cpu: eBPF needs CAP_BPF, which the agent lacks: measuring processes by sampling /proc instead" missing=CAP_BPF reason="attach raw tracepoint sched_switch: operation not permitted" sample_interval=100ms`, "", &noBPF},
		{MethodEBPF, "", "", "cpu: method ebpf needs CAP_BPF: attach raw tracepoint sched_switch: operation not permitted (use method: auto or sampling to fall back to sampling /proc)", &noBPF},
	} {
		name := tc.method
		if tc.have != nil {
			name += " without CAP_BPF"
		}
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			cfg := DefaultConfig()
			cfg.Method = tc.method
			in := &cpuInput{cfg: cfg, s: input.Settings{Logger: log, ProcRoot: "/proc"}, log: log, newCollector: refuse, have: tc.have}
			m, got, err := in.openCollector()
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got != tc.want {
				t.Errorf("method %s, want %s", got, tc.want)
			}
			if s := strings.TrimSpace(buf.String()); s != tc.log {
				t.Errorf("log\n%s\nwant\n%s", s, tc.log)
			}
		})
	}
}

func checkPinned(t *testing.T, method string, i int, r periodResult, pid int, minShare, maxSpread float64) {
	t.Helper()
	proc, cores := ofProcess(t, r.events, pid)
	share1 := 0.0
	if e, ok := cores[1]; ok {
		share1 = num(t, e, "fleutan.cpu.share")
	}
	t.Logf("%s period %d pinned: pct %.3f spread %v migrations %v share(core1) %.3f", method, i,
		num(t, *proc, "fleutan.cpu.pct"), field(t, *proc, "fleutan.cpu.spread"), field(t, *proc, "fleutan.cpu.migrations"), share1)
	if share1 < minShare {
		t.Errorf("period %d: pinned child has share %.3f on core 1, want >= %.2f", i, share1, minShare)
	}
	if s := num(t, *proc, "fleutan.cpu.spread"); s < 1 || s > maxSpread {
		t.Errorf("period %d: pinned child spread %v, want 1 to %v", i, s, maxSpread)
	}
	if d := num(t, *proc, "fleutan.cpu.dominant_core"); d != 1 {
		t.Errorf("period %d: pinned child dominant core %v, want 1", i, d)
	}
	// Go runtime threads started before pinning may still move
	// once; the spinning thread never does.
	if mig := num(t, *proc, "fleutan.cpu.migrations"); mig > 3 {
		t.Errorf("period %d: pinned child migrated %v times, want at most 3", i, mig)
	}
}

// TestSelectionFindsSocketOnReusedFD: the cpu input selects network
// processes through the same process index as the flows input, so a
// process that closed a file and connected on its fd number, at an
// unchanged fd count, is selected at the very next period.
func TestSelectionFindsSocketOnReusedFD(t *testing.T) {
	nstest.RequireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})

	c := cputest.StartChild(t, "reuse")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fdDir := "/proc/" + strconv.Itoa(c.PID()) + "/fd/"
	fileFD := ""
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if target, _ := os.Readlink(fdDir + e.Name()); target == exe {
			fileFD = e.Name()
		}
	}
	if fileFD == "" {
		t.Fatalf("the child does not hold %s", exe)
	}
	count := func() int64 {
		var st unix.Stat_t
		if err := unix.Stat(fdDir, &st); err != nil {
			t.Fatal(err)
		}
		return st.Size
	}

	log := slog.New(slog.DiscardHandler)
	in := &cpuInput{cfg: DefaultConfig(), s: input.Settings{Logger: log, ProcRoot: "/proc"}, log: log}
	in.procs = procindex.New(procindex.Options{ProcRoot: "/proc"})
	sel, err := in.selectProcesses()
	if err != nil {
		t.Fatal(err)
	}
	if sel.has(c.PID()) {
		t.Fatalf("child %d selected before it has a socket", c.PID())
	}
	before := count()
	if _, err := fmt.Fprintln(c.Stdin, "connect "+ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		target, _ := os.Readlink(fdDir + fileFD)
		if strings.HasPrefix(target, "socket:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fd %s of the child is %q, not a socket", fileFD, target)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if after := count(); after != before {
		t.Fatalf("fd count %d then %d: not a reused fd at the same count", before, after)
	}
	sel, err = in.selectProcesses()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := sel.flows(c.PID()); !ok || n != 1 {
		t.Errorf("child %d: selected %v with %d flows, want selected with 1", c.PID(), ok, n)
	}
}

// TestRunPublishesLatest: with the query API on (Settings.Latest), every
// collection's snapshot is there under "cpu", and the events of a period
// are those of the latest snapshot.
func TestRunPublishesLatest(t *testing.T) {
	nstest.RequireRoot(t)
	c := cputest.StartChild(t, "busy 0")
	latest := input.NewLatest()
	cfg := DefaultConfig()
	cfg.Period = config.Duration(time.Second)
	cfg.Method = MethodSampling
	in, err := newInput(cfg, input.Settings{Logger: slog.New(slog.DiscardHandler), ProcRoot: "/proc", Latest: latest})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &recorder{cancel: cancel}
	if err := in.Run(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.events == nil {
		t.Fatal("no period ended in 30 s")
	}
	got, ok := latest.Get("cpu")
	if !ok {
		t.Fatal("no snapshot under cpu")
	}
	snap, ok := got.Snapshot.(cpu.Snapshot)
	if !ok {
		t.Fatalf("latest cpu is a %T, want cpu.Snapshot", got.Snapshot)
	}
	if !got.Time.Equal(snap.Time) || !snap.Time.Equal(rec.events[0].Timestamp) {
		t.Errorf("latest at %v, snapshot %v, events %v: want one time", got.Time, snap.Time, rec.events[0].Timestamp)
	}
	if snap.Method != MethodSampling || len(snap.Cores) == 0 {
		t.Errorf("snapshot method %q with %d cores", snap.Method, len(snap.Cores))
	}
	found := false
	for _, p := range snap.Processes {
		found = found || p.Process.PID == c.PID()
	}
	if !found {
		t.Errorf("the busy network child %d is not in the snapshot", c.PID())
	}
}

// TestNewlyNetworkActiveProcessReported: with eBPF, a process that opens
// its first socket during a period is reported for that period (the
// program measured it all along), as it was before the collector became a
// library: the new selection is tracked before the collection.
func TestNewlyNetworkActiveProcessReported(t *testing.T) {
	nstest.RequireRoot(t)
	c := cputest.StartChild(t, "spinlisten")
	cfg := DefaultConfig()
	cfg.Method = MethodEBPF
	log := slog.New(slog.DiscardHandler)
	in := &cpuInput{cfg: cfg, s: input.Settings{Logger: log, ProcRoot: "/proc"}, log: log}
	coll, method, err := in.openCollector()
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	in.coll, in.method = coll, method
	in.procs = procindex.New(procindex.Options{ProcRoot: "/proc"})
	ctx := context.Background()
	in.begin(ctx)
	if in.sel.has(c.PID()) {
		t.Fatalf("child %d selected before it has a socket", c.PID())
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := fmt.Fprintln(c.Stdin, "listen"); err != nil {
		t.Fatal(err)
	}
	fdDir := "/proc/" + strconv.Itoa(c.PID()) + "/fd/"
	for deadline := time.Now().Add(10 * time.Second); ; {
		ents, _ := os.ReadDir(fdDir)
		found := false
		for _, e := range ents {
			target, _ := os.Readlink(fdDir + e.Name())
			found = found || strings.HasPrefix(target, "socket:")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child opened no socket in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	events := in.period(ctx)
	proc, _ := ofProcess(t, events, c.PID())
	if got := field(t, *proc, "fleutan.cpu.flows"); got != 1 {
		t.Errorf("flows %v, want 1 (the listener)", got)
	}
	if pct := num(t, *proc, "fleutan.cpu.pct"); pct <= 0 {
		t.Errorf("pct %v, want the CPU time it spun", pct)
	}
}
