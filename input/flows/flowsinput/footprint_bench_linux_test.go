package flowsinput

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// BenchmarkAgentFootprint is the host footprint of the agent binary under
// 36,000 established loopback sockets (18,000 connections held by two
// processes, each under a 20,000-fd limit), as a busy host has them: the
// flows input every 2 s, cpu and qdisc every 10 s, add_host_metadata, the
// file output. It runs the binary with report: all and with the defaults
// (report: active), each as shipped and with GOMEMLIMIT, for
// FLEUTANBEAT_FOOTPRINT_SECONDS each (64 by default, so that report:
// active reaches its first heartbeat, period 31)
// and reports per mode the agent process's peak RSS (VmHWM), its steady
// RSS (the mean VmRSS of the second half of the run, sampled every
// second), its CPU (utime+stime over the run, % of one core) and the flows
// events per second written to the file. Every event the input counted
// must be in the file, and with report: all every period must have all
// 36,000 flows.
func BenchmarkAgentFootprint(b *testing.B) {
	const holders, connsPer = 2, 9000
	secs := 64
	if v := os.Getenv("FLEUTANBEAT_FOOTPRINT_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 {
			b.Fatalf("FLEUTANBEAT_FOOTPRINT_SECONDS=%q: want a number of seconds >= 4", v)
		}
		secs = n
	}
	ns := nstest.New(b)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for i := range holders {
		cmd := ns.Command(exe)
		cmd.Env = append(os.Environ(), flowtest.Env+"=hold",
			"FLOWS_HOLD_CONNS="+strconv.Itoa(connsPer),
			fmt.Sprintf("FLOWS_HOLD_ADDR=127.0.0.%d:5000", i+1))
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
		if line, _ := bufio.NewReader(out).ReadString('\n'); !strings.HasPrefix(line, "ready") {
			b.Fatalf("holder %d: %q", i, line)
		}
	}
	// FLEUTANBEAT_FOOTPRINT_BIN measures another build of the agent (an
	// older commit's, for a before/after comparison) in the same run.
	bin := os.Getenv("FLEUTANBEAT_FOOTPRINT_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "fleutanbeat")
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "../../../cmd/fleutanbeat")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	// Each mode as shipped, then with the Go runtime's soft memory limit
	// (GOMEMLIMIT, README "Memory") at the value README gives for it.
	runs := []struct{ mode, limit string }{
		{ReportAll, ""}, {ReportActive, ""}, {ReportAll, "80MiB"}, {ReportActive, "48MiB"},
	}
	for b.Loop() {
		for _, run := range runs {
			mode, name := run.mode, run.mode
			if run.limit != "" {
				name += "+GOMEMLIMIT=" + run.limit
			}
			r := runFootprint(b, ns, bin, mode, run.limit, time.Duration(secs)*time.Second)
			// Both ends of every connection, and each holder's listener.
			const want = holders*connsPer*2 + holders
			if r.fileEvents != r.inputEvents {
				b.Fatalf("report: %s: %d flows events in the file, the input counted %d", mode, r.fileEvents, r.inputEvents)
			}
			if mode == ReportAll && r.fileEvents != int64(want)*r.collections {
				b.Fatalf("report: all: %d flows events in %d periods, want %d in each", r.fileEvents, r.collections, want)
			}
			if mode == ReportActive && r.fileEvents < want {
				b.Fatalf("report: active: %d flows events, want at least the first period's %d", r.fileEvents, want)
			}
			b.ReportMetric(r.hwm, name+"-VmHWM-MiB")
			b.ReportMetric(r.steady, name+"-VmRSS-steady-MiB")
			b.ReportMetric(r.cpu, name+"-cpu-%core")
			b.ReportMetric(r.eps, name+"-events/s")
			b.Logf("report: %-24s %d s, %d periods: VmHWM %.1f MiB, steady VmRSS %.1f MiB (max sample %.1f), CPU %.1f%% of a core, %.0f flows events/s (%d in the file)",
				name, secs, r.collections, r.hwm, r.steady, r.maxRSS, r.cpu, r.eps, r.fileEvents)
		}
	}
}

type footprint struct {
	hwm, steady, maxRSS, cpu, eps float64
	fileEvents, inputEvents       int64
	collections                   int64
}

// runFootprint runs the agent in ns for d with the given report mode and
// measures it.
func runFootprint(b *testing.B, ns *nstest.Netns, bin, mode, memLimit string, d time.Duration) footprint {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "fleutanbeat.yml")
	out := filepath.Join(dir, "out")
	// rotate_every_kb large enough that the files hold the whole run:
	// the events are counted in them afterwards.
	body := fmt.Sprintf(`fleutanbeat.inputs:
  - type: flows
    period: 2s
    report: %s
  - type: cpu
    period: 10s
  - type: qdisc
    period: 10s
processors:
  - add_host_metadata: ~
output.file:
  path: %s
  rotate_every_kb: 4194304
  number_of_files: 16
`, mode, out)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := ns.Command(bin, "run", "-e", "-c", cfg, "--path.home", dir)
	cmd.Stderr = &logs
	cmd.Env = os.Environ()
	if memLimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+memLimit)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// ip netns exec execs the agent: the pid is the agent's.
	pid := cmd.Process.Pid
	var samples []float64
	for time.Since(start) < d {
		time.Sleep(time.Second)
		rss, _ := procStatusMiB(pid)
		samples = append(samples, rss["VmRSS"])
	}
	st, err := procStatusMiB(pid)
	if err != nil {
		b.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("agent: %v\n%s", err, logs.Bytes())
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())

	var r footprint
	r.hwm = st["VmHWM"]
	half := samples[len(samples)/2:]
	for _, s := range half {
		r.steady += s / float64(len(half))
	}
	sort.Float64s(samples)
	r.maxRSS = samples[len(samples)-1]
	r.cpu = 100 * cpu.Seconds() / wall.Seconds()
	r.inputEvents, r.collections = stoppedFlowsCounts(b, logs.Bytes())
	r.fileEvents = countFlowsEvents(b, out)
	r.eps = float64(r.fileEvents) / wall.Seconds()
	return r
}

// procStatusMiB reads the Vm* sizes of /proc/PID/status in MiB.
func procStatusMiB(pid int) (map[string]float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "Vm") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err == nil {
			m[k] = kb / 1024
		}
	}
	return m, nil
}

// stoppedFlowsCounts reads input.flows.events and collections from the
// agent's "fleutanbeat stopped" line.
func stoppedFlowsCounts(b *testing.B, logs []byte) (events, collections int64) {
	for _, line := range bytes.Split(logs, []byte("\n")) {
		var l struct {
			Msg         string `json:"msg"`
			Undelivered int64  `json:"undelivered"`
			Stats       struct {
				Input struct {
					Flows struct {
						Events      int64 `json:"events"`
						Collections int64 `json:"collections"`
					} `json:"flows"`
				} `json:"input"`
			} `json:"stats"`
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "fleutanbeat stopped" {
			continue
		}
		if l.Undelivered != 0 {
			b.Fatalf("agent stopped with %d events undelivered", l.Undelivered)
		}
		return l.Stats.Input.Flows.Events, l.Stats.Input.Flows.Collections
	}
	b.Fatalf("no \"fleutanbeat stopped\" line in the agent's log:\n%s", logs)
	return 0, 0
}

// countFlowsEvents counts the fleutan.flows documents in the output files.
func countFlowsEvents(b *testing.B, dir string) int64 {
	files, err := filepath.Glob(filepath.Join(dir, "fleutanbeat.ndjson*"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no output files in %s: %v", dir, err)
	}
	var n int64
	marker := []byte(`"dataset":"fleutan.flows"`)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), marker) {
				n++
			}
		}
		if err := sc.Err(); err != nil {
			b.Fatalf("%s: %v", f, err)
		}
		fh.Close()
		// The run's files are gigabytes: free the disk before the next.
		_ = os.Remove(f)
	}
	return n
}
