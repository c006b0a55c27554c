package cpu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/cpu/internal/cputest"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

const (
	benchProcs   = 300
	benchThreads = 10 // locked threads per child; the Go runtime adds a few
)

// selfCPU is this process's user+system time.
func selfCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func countThreads(pids []int) int {
	n := 0
	for _, pid := range pids {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		n += len(ents)
	}
	return n
}

func ctxtSwitches(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "ctxt "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// psCPU runs ps and returns the CPU time it used (user+system of the
// child, from wait4's rusage).
func psCPU(b *testing.B, args ...string) time.Duration {
	cmd := exec.Command("ps", args...)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("ps %v: %v", args, err)
	}
	if len(out) == 0 {
		b.Fatal("ps printed nothing")
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// BenchmarkOverhead reports, with 300 processes of 10 threads, the agent's
// CPU per period for each method and the sampler's CPU per sample against
// `ps -eLo pid,tid,psr` (and ps restricted to the same pids) in the same
// run. Run with -benchtime 1x: one iteration is one full measurement.
func BenchmarkOverhead(b *testing.B) {
	nstest.RequireRoot(b)
	var pids []int
	for range benchProcs {
		pids = append(pids, cputest.StartChild(b, "idle "+strconv.Itoa(benchThreads)).PID())
	}
	threads := countThreads(pids)
	pidList := make([]string, len(pids))
	for i, p := range pids {
		pidList[i] = strconv.Itoa(p)
	}
	ctx := context.Background()
	const period = 10 * time.Second
	const rounds = 20

	for range b.N {
		// ps, the reference: the whole host and the same pids.
		var psAll, psSame time.Duration
		for range 5 {
			psAll += psCPU(b, "-eLo", "pid,tid,psr")
			psSame += psCPU(b, "-L", "-o", "pid,tid,psr", "-p", strings.Join(pidList, ","))
		}
		psAll /= 5
		psSame /= 5

		// Sampling the same processes: per sample and per 10 s period at
		// 10 Hz (100 samples and the period's own work: the collection,
		// which takes one more sample, and Diff). The collector's own
		// sampling goroutine is kept out of the way by a long interval.
		c, err := New(Options{Method: MethodSampling, SampleInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		s := c.meter.(*sampler)
		c.Track(pids)
		prev, err := c.Collect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t0 := selfCPU()
		for range rounds {
			s.sample()
		}
		perSample := (selfCPU() - t0) / rounds
		t0 = selfCPU()
		cur, err := c.Collect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_ = Diff(prev, cur)
		samplingPeriodWork := selfCPU() - t0
		_ = c.Close()
		samplingPerPeriod := 100*perSample + samplingPeriodWork

		// Sampling every process on the host, as `ps -e` does.
		s = newSampler("/proc")
		s.track(nil)
		hostThreads := 0
		for _, p := range s.procs {
			hostThreads += len(p.threads)
		}
		t0 = selfCPU()
		for range rounds {
			s.sample()
		}
		perSampleHost := (selfCPU() - t0) / rounds
		_ = s.close()

		// eBPF: the in-kernel program's run time (BPF_ENABLE_STATS) over a
		// stretch of the machine's current load, scaled to a period, plus
		// the period's work in user space.
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Fatalf("enable BPF stats: %v", err)
		}
		c, err = New(Options{Method: MethodEBPF})
		if err != nil {
			b.Fatal(err)
		}
		m := c.meter.(*bpfMeter)
		const window = 3 * time.Second
		c0 := ctxtSwitches(b)
		time.Sleep(window)
		c1 := ctxtSwitches(b)
		var kernel time.Duration
		var runs uint64
		for _, p := range []*ebpf.Program{m.objs.OnSwitch, m.objs.OnMigrate} {
			st, err := p.Stats()
			if err != nil {
				b.Fatal(err)
			}
			kernel += st.Runtime
			runs += st.RunCount
		}
		// The first collection: every process that ran is new to it, so
		// this is the period's work at its largest.
		t0 = selfCPU()
		cur, err = c.Collect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_ = Diff(Snapshot{}, cur)
		bpfPeriodWork := selfCPU() - t0
		_ = c.Close()
		_ = stats.Close()
		kernelPerPeriod := time.Duration(float64(kernel) * float64(period) / float64(window))
		bpfPerPeriod := kernelPerPeriod + bpfPeriodWork

		pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(period) }
		b.ReportMetric(pct(bpfPerPeriod), "ebpf_%core@10s")
		b.ReportMetric(pct(samplingPerPeriod), "sampling_%core@10Hz")
		b.ReportMetric(float64(perSample.Microseconds()), "sample_us")
		b.ReportMetric(float64(psSame.Microseconds()), "ps_same_pids_us")
		b.ReportMetric(float64(psAll.Microseconds()), "ps_eLo_us")
		b.ReportMetric(float64(perSample)/float64(psSame), "sample/ps_same")
		b.ReportMetric(float64(perSampleHost)/float64(psAll), "host_sample/ps_eLo")
		b.Logf("%d processes, %d threads (host: %d threads sampled)", len(pids), threads, hostThreads)
		b.Logf("ps -eLo pid,tid,psr: %v CPU per run; ps -L -o pid,tid,psr -p <the %d pids>: %v", psAll, len(pids), psSame)
		b.Logf("sampling: %v CPU per sample of the %d processes (%.2fx ps on the same pids), %v per sample of the whole host (%.2fx ps -eLo); per 10 s period at 10 Hz: %v = %.3f%% of one core",
			perSample, len(pids), float64(perSample)/float64(psSame), perSampleHost, float64(perSampleHost)/float64(psAll), samplingPerPeriod, pct(samplingPerPeriod))
		b.Logf("ebpf: %d program runs in %v (%.0f context switches/s), %v in the kernel (%.0f ns/run); per 10 s period: kernel %v + user space %v = %.3f%% of one core",
			runs, window, float64(c1-c0)/window.Seconds(), kernel, float64(kernel)/float64(max(runs, 1)), kernelPerPeriod, bpfPeriodWork, pct(bpfPerPeriod))
	}
}
