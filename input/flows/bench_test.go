//go:build linux

package flows

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

const (
	benchHelpers        = 4
	benchConnsPerHelper = 4500 // 2 fds each + a listener: 9,001 fds per helper
	// benchChurn connections per holder are replaced in each churn period:
	// 2*45*4 = 360 new sockets, 1% of 36,000.
	benchChurn   = 45
	churnPeriods = 10
)

func cpuSeconds(ru *syscall.Rusage) float64 {
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuSeconds(&ru)
}

type measure struct {
	name      string
	runs      int
	cpu, wall float64 // totals
}

func (m *measure) add(cpu float64, wall time.Duration) {
	m.runs++
	m.cpu += cpu
	m.wall += wall.Seconds()
}
func (m *measure) cpuPer() float64  { return m.cpu / float64(m.runs) }
func (m *measure) wallPer() float64 { return m.wall / float64(m.runs) }

// BenchmarkFlowsVsSS compares one full collection (sock_diag dump with
// tcp_info, direction, process attribution) with ss(8) over 36,000
// loopback sockets held by four processes: cold (a new collector), steady
// with nothing changed (b.N collections), steady with 1% of the sockets
// new in every period (churnPeriods collections; the goal), and one
// period in which a socket took the fd number of a closed file at an
// unchanged fd count (the procfs method's search). Every collection must
// attribute every socket to its holder.
//
// It runs once per method: procfs (the process index alone) and ebpf (the
// same index told by the connection tracker which processes opened
// connections; the agent's default where eBPF loads).
func BenchmarkFlowsVsSS(b *testing.B) {
	for _, method := range []string{methodProcfs, methodEBPF} {
		b.Run(method, func(b *testing.B) { benchFlowsVsSS(b, method) })
	}
}

func benchFlowsVsSS(b *testing.B, method string) {
	ns := nstest.New(b)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var holders []*benchHolder
	for i := range benchHelpers {
		cmd := ns.Command(exe)
		cmd.Env = append(os.Environ(), flowtest.Env+"=hold",
			"FLOWS_HOLD_CONNS="+strconv.Itoa(benchConnsPerHelper),
			fmt.Sprintf("FLOWS_HOLD_ADDR=127.0.0.%d:5000", i+1))
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
		h := &benchHolder{in: in, out: bufio.NewReader(out), pid: cmd.Process.Pid}
		if line := h.read(); !strings.HasPrefix(line, "ready") {
			b.Fatalf("holder %d: %q", i, line)
		}
		holders = append(holders, h)
	}
	want := 2 * benchHelpers * benchConnsPerHelper
	nsInfo := namespaceOf(b, ns)
	// Routes as the input has them by default: one lookup per distinct
	// peer, cached.
	opts := Options{Protocols: []uint8{protoTCP}, States: 1 << stateEstablished, Routes: true}
	if method == methodEBPF {
		t, err := OpenTracker(TrackerOptions{})
		if err != nil {
			b.Fatalf("method ebpf: %v", err)
		}
		b.Cleanup(func() { _ = t.Close() })
		opts.Tracker = t
	}
	// A socket's holder: the one whose listener is its local or remote
	// end; the reused-fd connection is the exception, added below.
	owners := map[string]int{}
	holderOf := func(f *Flow) int {
		if pid, ok := owners[f.Local.String()+" "+f.Remote.String()]; ok {
			return pid
		}
		ep := f.Remote
		if f.Local.Port() == 5000 {
			ep = f.Local
		}
		return holders[int(ep.Addr().As4()[3])-1].pid
	}

	var cold, steady, churn, reuse, ssP, ssN measure
	cold.name, steady.name, ssP.name, ssN.name = "ours cold (first collection)", "ours steady, nothing new", "ss -tinp", "ss -tin"
	churn.name = fmt.Sprintf("ours steady, %d new sockets", benchChurn*2*benchHelpers)
	reuse.name = "ours, 1 socket on a reused fd"
	// The agent's life: one cold collection, then steady ones on the same
	// collector; the process's RSS is read after those.
	c := collectorIn(b, opts, nsInfo)
	s := &benchSeries{c: c}
	t0, c0 := time.Now(), selfCPU()
	checkBench(b, s, want, holderOf, "first collection")
	cold.add(selfCPU()-c0, time.Since(t0))
	b.ResetTimer()
	for b.Loop() {
		t0, c0 := time.Now(), selfCPU()
		checkBench(b, s, want, holderOf, "steady collection")
		steady.add(selfCPU()-c0, time.Since(t0))
	}
	b.StopTimer()
	var refreshed, read, sweeps int
	for range churnPeriods {
		for _, h := range holders {
			if line := h.do(fmt.Sprintf("churn %d", benchChurn)); line != "ok" {
				b.Fatalf("churn: %q", line)
			}
		}
		t0, c0 := time.Now(), selfCPU()
		checkBench(b, s, want, holderOf, "collection after churn")
		churn.add(selfCPU()-c0, time.Since(t0))
		ps := c.procStats
		refreshed, read, sweeps = refreshed+ps.Refreshed, read+ps.FDsRead, sweeps+ps.Sweeps
	}
	line := holders[0].do("reuse 127.0.0.2:5000")
	local, ok := strings.CutPrefix(line, "ok ")
	if !ok {
		b.Fatalf("reuse: %q", line)
	}
	owners[local+" 127.0.0.2:5000"] = holders[0].pid
	// Until accept(2) the other end has no fd, and no process.
	if line := holders[1].do("take"); line != "ok" {
		b.Fatalf("take: %q", line)
	}
	t0, c0 = time.Now(), selfCPU()
	checkBench(b, s, want+2, holderOf, "collection after a reused fd")
	reuse.add(selfCPU()-c0, time.Since(t0))
	reusePS := c.procStats
	// Without the tracker only a sweep of every fd table finds it; with
	// it, the tgid of connect(2) names the process to refresh.
	if wantSweeps := map[string]int{methodProcfs: 1, methodEBPF: 0}[method]; reusePS.Sweeps != wantSweeps {
		b.Fatalf("a socket on a reused fd made %d sweeps with method %s, want %d: %+v", reusePS.Sweeps, method, wantSweeps, reusePS)
	}
	rss := vmRSSMiB(b)
	_ = c.Close()

	// More cold collections, each on a new collector with a new process
	// index.
	only := opts
	only.Tracker = nil // a cold start: the tracker has seen nothing yet
	only.Namespaces = func() ([]Namespace, error) { return []Namespace{nsInfo}, nil }
	for range 2 {
		c := mustNew(b, only)
		t0, c0 := time.Now(), selfCPU()
		checkBench(b, &benchSeries{c: c}, want+2, holderOf, "cold collection")
		cold.add(selfCPU()-c0, time.Since(t0))
		_ = c.Close()
	}

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	for _, m := range []*measure{&ssP, &ssN} {
		flag := "-tinp"
		if m == &ssN {
			flag = "-tin"
		}
		for range 5 {
			// nsenter only setns(2)es and execs ss: the rusage is ss's.
			cmd := exec.Command("nsenter", "--net="+ns.Path(), "ss", flag)
			cmd.Stdout = devnull
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("ss %s: %v", flag, err)
			}
			m.add(cpuSeconds(cmd.ProcessState.SysUsage().(*syscall.Rusage)), time.Since(t0))
		}
	}

	b.ReportMetric(cold.cpuPer(), "cpu-s/cold-collection")
	b.ReportMetric(steady.cpuPer(), "cpu-s/collection")
	b.ReportMetric(churn.cpuPer(), "cpu-s/churn-collection")
	b.ReportMetric(reuse.cpuPer(), "cpu-s/reused-fd-collection")
	b.ReportMetric(ssP.cpuPer(), "cpu-s/ss-tinp")
	b.ReportMetric(ssN.cpuPer(), "cpu-s/ss-tin")
	b.ReportMetric(steady.cpuPer()/ssP.cpuPer(), "ratio-vs-ss-tinp")
	b.ReportMetric(steady.cpuPer()/ssN.cpuPer(), "ratio-vs-ss-tin")
	b.ReportMetric(churn.cpuPer()/ssP.cpuPer(), "churn-ratio-vs-ss-tinp")
	b.ReportMetric(reuse.cpuPer()/ssP.cpuPer(), "reused-fd-ratio-vs-ss-tinp")
	b.ReportMetric(cold.cpuPer()/ssP.cpuPer(), "cold-ratio-vs-ss-tinp")
	b.ReportMetric(rss, "VmRSS-MiB")
	b.Logf("%d sockets in netns %s; %d processes under /proc", want, ns.Name, reusePS.Processes)
	b.Logf("%-34s %5s %14s %14s", "what", "runs", "cpu s/run", "wall s/run")
	for _, m := range []*measure{&cold, &steady, &churn, &reuse, &ssP, &ssN} {
		b.Logf("%-34s %5d %14.4f %14.4f", m.name, m.runs, m.cpuPer(), m.wallPer())
	}
	b.Logf("per churn period: %.1f fd tables refreshed, %.0f fd links read, %d sweeps in %d periods; reused fd: %+v",
		float64(refreshed)/churnPeriods, float64(read)/churnPeriods, sweeps, churnPeriods, reusePS)
	b.Logf("ratio ours/ss -tinp: steady %.3f (goal <= 0.25), 1%% new %.3f (goal <= 0.15), cold %.3f (goal <= 0.5), reused fd %.3f; ours/ss -tin %.3f (goal <= 1.5); VmRSS %.1f MiB (goal <= 80)",
		steady.cpuPer()/ssP.cpuPer(), churn.cpuPer()/ssP.cpuPer(), cold.cpuPer()/ssP.cpuPer(), reuse.cpuPer()/ssP.cpuPer(),
		steady.cpuPer()/ssN.cpuPer(), rss)
}

// benchHolder is a running runHolder.
type benchHolder struct {
	in  io.WriteCloser
	out *bufio.Reader
	pid int
}

func (h *benchHolder) read() string {
	line, _ := h.out.ReadString('\n')
	return strings.TrimSpace(line)
}

func (h *benchHolder) do(cmd string) string {
	_, _ = fmt.Fprintln(h.in, cmd)
	return h.read()
}

// benchSeries is a collector and its previous snapshot: a collection in
// the benchmark is Collect and Diff, as the adapter does them.
type benchSeries struct {
	c      *Collector
	prev   Snapshot
	deltas []FlowDelta
}

// checkBench collects, diffs and checks that every socket is there and
// attributed to its holder, so the figures are for complete work.
func checkBench(b *testing.B, s *benchSeries, want int, holderOf func(*Flow) int, what string) {
	c := s.c
	snap, err := c.Collect(context.Background())
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
	s.deltas = AppendDiff(s.deltas, s.prev, snap)
	s.prev = snap
	flows := snap.Flows
	live, right, routed := 0, 0, 0
	var wrong []string
	for i := range flows {
		f := &flows[i]
		if f.Final {
			continue
		}
		live++
		if f.Route != nil && f.Route.Device == "lo" {
			routed++
		}
		if f.Process != nil && f.Process.PID == holderOf(f) {
			right++
		} else if len(wrong) < 5 {
			wrong = append(wrong, fmt.Sprintf("%s inode %d: process %+v, want pid %d", f.Key(), f.Inode, f.Process, holderOf(f)))
		}
	}
	if live != want || right != want {
		b.Fatalf("%s: %d flows, %d attributed to their holder, want %d; %s; attribution %+v",
			what, live, right, want, strings.Join(wrong, "; "), c.procStats)
	}
	if c.opts.Routes && routed != want {
		b.Fatalf("%s: %d of %d flows have their route (dev lo)", what, routed, want)
	}
}
func vmRSSMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// The benchmark's sub-benchmark names, the adapter's method names.
const (
	methodProcfs = "procfs"
	methodEBPF   = "ebpf"
)
