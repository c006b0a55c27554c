package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// liveSetup is a namespace "host" with a two-queue veth under mq towards a
// peer namespace, a sender and two sinks with names the test chose.
type liveSetup struct {
	host                 string
	bin                  string // directory of the named links to the test binary
	senderPID, sink6PID  int
	sendV4Local, send6Lo string // local endpoints of the sender's flows
}

// startRole runs the test binary as role, under the name name (comm comes
// from the executed file's name, so a symlink names the process), inside
// netns ns, and returns its pid and first reply.
func startRole(t *testing.T, s *liveSetup, ns, role, name string, args ...string) (int, []string) {
	t.Helper()
	link := filepath.Join(s.bin, name)
	if _, err := os.Lstat(link); err != nil {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(self, link); err != nil {
			t.Fatal(err)
		}
	}
	c := exec.Command("ip", append([]string{"netns", "exec", ns, link}, args...)...)
	c.Env = append(os.Environ(), roleEnv+"="+role)
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = c.Wait() })
	// ip netns exec execs the command in place: the pid is the helper's.
	return c.Process.Pid, readReply(t, bufio.NewReader(stdout))
}

func newLiveSetup(t *testing.T) *liveSetup {
	nstest.RequireRoot(t)
	s := &liveSetup{host: nstest.New(t).Name, bin: t.TempDir()}
	peer := nstest.New(t).Name
	nstest.Cmd(t, "ip", "-n", s.host, "link", "add", "fl0", "numtxqueues", "2", "type", "veth", "peer", "name", "fl0p", "netns", peer)
	nstest.Cmd(t, "ip", "-n", s.host, "addr", "add", "10.99.0.1/24", "dev", "fl0")
	nstest.Cmd(t, "ip", "-n", peer, "addr", "add", "10.99.0.2/24", "dev", "fl0p")
	nstest.Cmd(t, "ip", "-n", s.host, "link", "set", "fl0", "up")
	nstest.Cmd(t, "ip", "-n", peer, "link", "set", "fl0p", "up")
	nstest.Cmd(t, "ip", "netns", "exec", s.host, "tc", "qdisc", "add", "dev", "fl0", "root", "handle", "1:", "mq")

	startRole(t, s, peer, "sink", "fl-sink", "10.99.0.2:7001")
	s.sink6PID, _ = startRole(t, s, s.host, "sink", "fl-sink6", "[::1]:7002")
	var locals []string
	s.senderPID, locals = startRole(t, s, s.host, "send", "fl-sender", "10.99.0.2:7001", "[::1]:7002")
	if len(locals) != 2 {
		t.Fatalf("sender reported %v", locals)
	}
	s.sendV4Local, s.send6Lo = locals[0], locals[1]
	return s
}

// fleutan runs the tool inside the host namespace for one interval.
func (s *liveSetup) fleutan(t *testing.T, args ...string) string {
	t.Helper()
	c := exec.Command("ip", append([]string{"netns", "exec", s.host, os.Args[0]}, args...)...)
	c.Env = append(os.Environ(), roleEnv+"=fleutan", "COLUMNS=100")
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := waitBounded(c, toolLimit); err != nil {
		t.Fatalf("fleutan %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("$ fleutan %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}

// toolLimit bounds one run of the tool: a few seconds on any machine, and
// well inside the kernel matrix's per-package timeout, so that a hang is
// this test's failure with the tool's own goroutines, not a timeout of the
// whole binary that only shows the test waiting.
const toolLimit = 60 * time.Second

// waitBounded waits for c up to limit. Past it, c gets SIGQUIT, which
// makes a Go program print every goroutine's stack to its stderr (the
// caller's to show) and exit, and the error says so.
func waitBounded(c *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
	}
	_ = c.Process.Signal(syscall.SIGQUIT)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
	return fmt.Errorf("still running after %v; its goroutines (SIGQUIT) are in its stderr", limit)
}

// endpoint prints "ip:port" or "[ip]:port" as the views do: "ip#port".
func endpoint(ap string) string {
	i := strings.LastIndexByte(ap, ':')
	return strings.Trim(ap[:i], "[]") + "#" + ap[i+1:]
}

// barLine is "BAR  VALUE  LABEL" of a chart.
var barLine = regexp.MustCompile(`^[*|#\-█ ]*?\s*(\d+(?:\.\d+)?)([KMGTPE]?)(?:  (.*))?$`)

// bars returns the value and label of every bar line of the chart that
// follows the line title (up to the next line that is not a bar).
func bars(t *testing.T, out, title string) (vals []float64, labels []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if l != title {
			continue
		}
		for _, b := range lines[i+2:] {
			m := barLine.FindStringSubmatch(b)
			if m == nil {
				break
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			if m[2] != "" {
				v *= map[string]float64{"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}[m[2]]
			}
			vals = append(vals, v)
			labels = append(labels, strings.TrimSpace(m[3]))
		}
		return vals, labels
	}
	t.Fatalf("no chart %q in\n%s", title, out)
	return nil, nil
}

func sum(vs []float64) float64 {
	s := 0.0
	for _, v := range vs {
		s += v
	}
	return s
}

func TestLiveViewsShowTheTestsFlowsAndProcesses(t *testing.T) {
	s := newLiveSetup(t)
	ncpu := runtime.NumCPU()
	v4 := fmt.Sprintf("%s 10.99.0.2#7001", endpoint(s.sendV4Local))
	v6 := fmt.Sprintf("%s ::1#7002", endpoint(s.send6Lo))
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }

	t.Run("cpu fl_asoc", func(t *testing.T) {
		t.Parallel()
		out := s.fleutan(t, "flows", "--cpu", "-i", "1", "-n", "1")
		head := fmt.Sprintf("~>fl-sender(%d)\n", s.senderPID)
		i := strings.Index(out, head)
		if i < 0 || !strings.Contains(out, fmt.Sprintf("~>fl-sink6(%d)\n", s.sink6PID)) {
			t.Fatalf("processes missing:\n%s", out)
		}
		block := out[i:]
		block = block[:strings.Index(block, "...")]
		if !strings.Contains(squash(block), "tcp "+v4) || !strings.Contains(squash(block), "tcp "+v6) {
			t.Fatalf("sender's flows missing:\n%s", block)
		}
		vals, labels := bars(t, block, "")
		if len(vals) != ncpu || labels[0] != "0" || labels[ncpu-1] != strconv.Itoa(ncpu-1) {
			t.Fatalf("want one bar per core (%d): %v %v", ncpu, vals, labels)
		}
		// Writing 13 MB/s costs some CPU, never more than all cores.
		if tot := sum(vals); tot <= 0 || tot > 100*float64(ncpu) {
			t.Fatalf("sender CPU %v%% of one core, want (0, %d]", tot, 100*ncpu)
		}
	})
	t.Run("cpu gen", func(t *testing.T) {
		t.Parallel()
		out := s.fleutan(t, "flows", "--cpu", "gen", "-i", "1", "-n", "1")
		for _, w := range []string{"segs_in", "segs_out", "bdp", "rx_bytes", "tx_bytes"} {
			vals, _ := bars(t, out, "#>"+w)
			if len(vals) != ncpu {
				t.Fatalf("%s: %d bars, want %d", w, len(vals), ncpu)
			}
			// The sender sends about 13 MB/s, the sink6 receives half.
			if w == "tx_bytes" || w == "rx_bytes" || w == "segs_out" {
				if tot := sum(vals); tot <= 0 {
					t.Fatalf("%s: no load: %v", w, vals)
				}
			}
		}
	})
	t.Run("qdisc", func(t *testing.T) {
		t.Parallel()
		out := s.fleutan(t, "flows", "-q", "-i", "1", "-n", "1")
		vals, labels := bars(t, out, "qdisc queues #> load (bytes) per qu (fl0)")
		if len(vals) != 2 || labels[0] != "0" || labels[1] != "1" {
			t.Fatalf("want queues 0 and 1: %v %v", vals, labels)
		}
		// 6.5 MB/s on one flow over about a second.
		if tot := sum(vals); tot < 1e6 || tot > 1e8 {
			t.Fatalf("queue bytes %v, want 1 MB to 100 MB", tot)
		}
		if !strings.Contains(squash(out), " "+v4) {
			t.Fatalf("sender's flow not in a queue:\n%s", out)
		}
	})
	t.Run("lat", func(t *testing.T) {
		t.Parallel()
		out := s.fleutan(t, "flows", "--lat", "-g", "proc", "-i", "1", "-n", "1")
		if !strings.Contains(out, "**TCP FLOWS: (NUM 3)\n") {
			t.Fatalf("want the sender's two flows and the sink's one:\n%s", out)
		}
		vals, labels := bars(t, out, fmt.Sprintf("proc>>fl-sender (%d)", s.senderPID))
		if len(vals) != 2 {
			t.Fatalf("sender group: %v %v", vals, labels)
		}
		for _, v := range vals {
			// A veth and a loopback: well under a second.
			if v <= 0 || v > 1000 {
				t.Fatalf("rtt %v ms", v)
			}
		}
		counts, _ := bars(t, out, "*latency distribution [rtt-range]")
		if len(counts) != 10 || sum(counts) != 3 {
			t.Fatalf("histogram %v, want 10 ranges of 3 flows", counts)
		}
	})
	t.Run("vol", func(t *testing.T) {
		t.Parallel()
		out := s.fleutan(t, "flows", "--vol", "-i", "1", "-n", "1")
		tx := out[strings.Index(out, ">>TX"):]
		vals, labels := bars(t, tx, "##bytes")
		found := false
		for i, l := range labels {
			if squash(l) == v4 {
				found = true
				if vals[i] < 1e6 || vals[i] > 1e8 {
					t.Fatalf("sender sent %v bytes in the interval, want 1 MB to 100 MB", vals[i])
				}
			}
		}
		if !found {
			t.Fatalf("sender's flow missing from TX bytes:\n%s", tx)
		}
	})
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		out := s.fleutan(t, "flows", "--lat", "--json", "-i", "1", "-n", "1")
		// One interval: the flows snapshot and its deltas, in the
		// library's types, and nothing of the views without --cpu or -q.
		var iv struct {
			Flows      *flows.Snapshot   `json:"flows"`
			FlowDeltas []flows.FlowDelta `json:"flow_deltas"`
			CPU        json.RawMessage   `json:"cpu"`
		}
		if n := strings.Count(out, "\n"); n != 1 {
			t.Fatalf("%d lines, want one JSON document:\n%s", n, out)
		}
		if err := json.Unmarshal([]byte(out), &iv); err != nil {
			t.Fatal(err)
		}
		if iv.Flows == nil || len(iv.FlowDeltas) != len(iv.Flows.Flows) || iv.CPU != nil {
			t.Fatalf("want flows with one delta each and no cpu:\n%s", out)
		}
		found := false
		for i, f := range iv.Flows.Flows {
			if f.Local.String() != s.sendV4Local || f.Remote.String() != "10.99.0.2:7001" {
				continue
			}
			found = true
			if p := f.Process; p == nil || p.PID != s.senderPID || p.Name != "fl-sender" || p.PPID != os.Getpid() {
				t.Errorf("sender's flow has process %+v, want fl-sender (%d), child of %d", f.Process, s.senderPID, os.Getpid())
			}
			// 6.5 MB/s over about a second.
			if d := iv.FlowDeltas[i]; !d.OK || d.BytesOut < 1e6 || d.BytesOut > 1e8 {
				t.Errorf("sender's flow delta %+v, want 1 MB to 100 MB out", d)
			}
		}
		if !found {
			t.Fatalf("sender's flow %s missing:\n%s", s.sendV4Local, out)
		}
	})
}

// TestBuiltBinaryIsOneShotByDefault runs the built fleutan as a user
// would: without -n it samples one interval, prints one report and exits
// by itself, as the original did; -n 0 keeps reporting every interval
// until interrupted.
func TestBuiltBinaryIsOneShotByDefault(t *testing.T) {
	s := newLiveSetup(t)
	// The kernel matrix's guest has no go tool: it names the fleutan it
	// built with the test binaries.
	bin := os.Getenv("FLEUTANBEAT_FLEUTAN_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "fleutan")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	head := fmt.Sprintf("~>fl-sender(%d)\n", s.senderPID)

	t.Run("one report by default", func(t *testing.T) {
		c := exec.Command("ip", "netns", "exec", s.host, bin, "flows", "--cpu", "-i", "1")
		c.Env = append(os.Environ(), "COLUMNS=100")
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		start := time.Now()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if err := waitBounded(c, toolLimit); err != nil {
			t.Fatalf("fleutan flows --cpu -i 1: %v\noutput:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
		took := time.Since(start)
		if n := strings.Count(stdout.String(), head); n != 1 {
			t.Errorf("%d reports of the sender, want exactly one:\n%s", n, stdout.String())
		}
		if took < time.Second {
			t.Errorf("exited after %v, before sampling its 1 s interval", took)
		}
	})

	t.Run("-n 0 until interrupted", func(t *testing.T) {
		c := exec.Command("ip", "netns", "exec", s.host, bin, "flows", "--cpu", "-i", "0.5", "-n", "0")
		c.Env = append(os.Environ(), "COLUMNS=100")
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
		reports := make(chan int, 16)
		go func() {
			sc := bufio.NewScanner(out)
			n := 0
			for sc.Scan() {
				if sc.Text()+"\n" == head {
					n++
					reports <- n
				}
			}
			close(reports)
		}()
		deadline := time.After(60 * time.Second)
		for n := 0; n < 3; {
			select {
			case got, ok := <-reports:
				if !ok {
					t.Fatalf("fleutan -n 0 exited after %d reports", n)
				}
				n = got
			case <-deadline:
				t.Fatalf("only %d reports in 60s with -n 0", n)
			}
		}
		if err := c.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		// The reader ends at the tool's exit (EOF); then Wait collects
		// the status. Both bounded: a tool that ignores Ctrl-C is this
		// test's failure, with its goroutines.
		drained := make(chan struct{})
		go func() {
			for range reports {
			}
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(toolLimit):
			_ = c.Process.Signal(syscall.SIGQUIT)
			<-drained
			_ = c.Wait()
			t.Fatalf("fleutan -n 0 still running %v after Ctrl-C; its goroutines (SIGQUIT):\n%s", toolLimit, stderr.String())
		}
		if err := waitBounded(c, toolLimit); err != nil {
			t.Errorf("after Ctrl-C: %v, want exit status 0; stderr:\n%s", err, stderr.String())
		}
	})
}
