//go:build linux

package flows

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

const (
	benchHelpers        = 4
	benchConnsPerHelper = 4500 // 2 fds each + a listener: 9,001 fds per helper
)

// runHolder opens FLOWS_HOLD_CONNS loopback connections to its own
// listener at FLOWS_HOLD_ADDR, holding both ends, says "ready" and waits
// for stdin to close.
func runHolder() int {
	n, _ := strconv.Atoi(os.Getenv("FLOWS_HOLD_CONNS"))
	ln, err := net.Listen("tcp", os.Getenv("FLOWS_HOLD_ADDR"))
	if err != nil {
		fmt.Println("err", err)
		return 1
	}
	accepted := make(chan []net.Conn, 1)
	go func() {
		var cs []net.Conn
		for len(cs) < n {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			cs = append(cs, c)
		}
		accepted <- cs
	}()
	var dialed []net.Conn
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Println("err", err)
			return 1
		}
		dialed = append(dialed, c)
	}
	held := <-accepted
	fmt.Println("ready", len(dialed), len(held))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // EOF when the test ends
	return 0
}

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
// loopback sockets. Run with -benchtime=5x: b.N is the number of steady
// collections.
func BenchmarkFlowsVsSS(b *testing.B) {
	ns := nstest.New(b)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchHelpers {
		cmd := ns.Command(exe)
		cmd.Env = append(os.Environ(), helperEnv+"=hold",
			"FLOWS_HOLD_CONNS="+strconv.Itoa(benchConnsPerHelper),
			fmt.Sprintf("FLOWS_HOLD_ADDR=127.0.0.%d:5000", i+1))
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
		line, _ := bufio.NewReader(out).ReadString('\n')
		if !strings.HasPrefix(line, "ready") {
			b.Fatalf("holder %d: %q", i, line)
		}
	}
	want := 2 * benchHelpers * benchConnsPerHelper
	nsInfo := namespaceOf(b, ns)
	opts := CollectorOptions{Protocols: []uint8{protoTCP}, States: 1 << stateEstablished}

	var cold, steady, ssP, ssN measure
	cold.name, steady.name, ssP.name, ssN.name = "ours cold (first collection)", "ours steady", "ss -tinp", "ss -tin"
	// The agent's life: one cold collection, then steady ones on the same
	// collector; the process's RSS is read after those.
	c := collectorIn(b, opts, nsInfo)
	t0, c0 := time.Now(), selfCPU()
	checkBench(b, c, want, "first collection")
	cold.add(selfCPU()-c0, time.Since(t0))
	b.ResetTimer()
	for b.Loop() {
		t0, c0 := time.Now(), selfCPU()
		checkBench(b, c, want, "steady collection")
		steady.add(selfCPU()-c0, time.Since(t0))
	}
	b.StopTimer()
	rss := vmRSSMiB(b)
	_ = c.Close()

	// More cold collections, each on a new collector with a new process
	// index.
	only := opts
	only.Namespaces = func() ([]netns.Namespace, error) { return []netns.Namespace{nsInfo}, nil }
	for range 2 {
		c := NewCollector(only)
		t0, c0 := time.Now(), selfCPU()
		checkBench(b, c, want, "cold collection")
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
	b.ReportMetric(ssP.cpuPer(), "cpu-s/ss-tinp")
	b.ReportMetric(ssN.cpuPer(), "cpu-s/ss-tin")
	b.ReportMetric(steady.cpuPer()/ssP.cpuPer(), "ratio-vs-ss-tinp")
	b.ReportMetric(steady.cpuPer()/ssN.cpuPer(), "ratio-vs-ss-tin")
	b.ReportMetric(cold.cpuPer()/ssP.cpuPer(), "cold-ratio-vs-ss-tinp")
	b.ReportMetric(rss, "VmRSS-MiB")
	b.Logf("%d sockets in netns %s", want, ns.Name)
	b.Logf("%-30s %5s %14s %14s", "what", "runs", "cpu s/run", "wall s/run")
	for _, m := range []*measure{&cold, &steady, &ssP, &ssN} {
		b.Logf("%-30s %5d %14.4f %14.4f", m.name, m.runs, m.cpuPer(), m.wallPer())
	}
	b.Logf("ratio ours/ss -tinp %.3f (goal <= 0.25), ours/ss -tin %.3f (goal <= 1.5), VmRSS %.1f MiB (goal <= 80)",
		steady.cpuPer()/ssP.cpuPer(), steady.cpuPer()/ssN.cpuPer(), rss)
}

// checkBench collects and checks that every socket is there and
// attributed, so the figures are for complete work.
func checkBench(b *testing.B, c *Collector, want int, what string) {
	flows, err := c.Collect(context.Background())
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
	attributed := 0
	for i := range flows {
		if flows[i].Process != nil {
			attributed++
		}
	}
	if len(flows) != want || attributed != want {
		b.Fatalf("%s: %d flows, %d attributed, want %d", what, len(flows), attributed, want)
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
