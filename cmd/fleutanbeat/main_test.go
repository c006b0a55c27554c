package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// buildBinary compiles the agent once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fleutanbeat-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "fleutanbeat")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func shippedConfig(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../fleutanbeat.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Copy with safe permissions: a checkout's umask must not decide whether
	// strict.perms accepts it.
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "fleutanbeat.yml")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestAgentBinaryShipsFlowsAndStopsCleanly runs the built binary with the
// shipped config (real flows input, file output), reads /stats, sends
// SIGTERM and checks that every published event is in the file.
func TestAgentBinaryShipsFlowsAndStopsCleanly(t *testing.T) {
	nstest.RequireRoot(t)
	bin := buildBinary(t)
	cfg := shippedConfig(t)
	home := t.TempDir()
	cmd := exec.Command(bin, "-e", "-c", cfg, "--path.home", home,
		"-E", "http.enabled=true", "-E", "http.port=0", "-E", "http.host=127.0.0.1",
		"-E", "fleutanbeat.inputs.0.period=1s", "-E", "fleutanbeat.inputs.1.period=1s",
		"-E", "fleutanbeat.inputs.2.period=1s", "-E", "logging.metrics.period=1s",
		"-E", "queue.mem.flush.timeout=100ms")
	stderr := agentLog(t)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	addr := waitLog(t, stderr, "monitoring endpoint listening", "address", 20*time.Second)
	dataFile := filepath.Join(home, "data", "fleutanbeat.ndjson")
	// Every shipped input must have delivered: flows at once, cpu and
	// qdisc after their first period.
	waitFor(t, 30*time.Second, "flows, cpu and qdisc events in "+dataFile, func() bool {
		b, _ := os.ReadFile(dataFile)
		for _, ds := range []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"} {
			if !bytes.Contains(b, []byte(`"dataset":"`+ds+`"`)) {
				return false
			}
		}
		return true
	})

	info := getJSON(t, "http://"+addr+"/")
	if info["beat"] != "fleutanbeat" || info["uuid"] == "" {
		t.Errorf("GET / = %v", info)
	}
	stats := getJSON(t, "http://"+addr+"/stats")
	if _, ok := stats["pipeline"]; !ok {
		t.Errorf("GET /stats has no pipeline counters: %v", stats)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(prom), "fleutanbeat_pipeline_events_published_total ") {
		t.Errorf("GET /metrics lacks the published counter:\n%s", prom)
	}
	checkMetricsAgainstStats(t, "http://"+addr, true)

	waitLog(t, stderr, "Non-zero metrics in the last 1s", "level", 10*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exited with %v; log:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not stop within 30s of SIGTERM; log:\n%s", stderr.String())
	}

	// The periodic metrics line carries the counters that changed.
	periodic := lastLog(t, stderr, "Non-zero metrics in the last 1s")
	if _, ok := periodic["pipeline.events.acked"]; !ok {
		t.Errorf("metrics log line lacks pipeline.events.acked: %v", periodic)
	}

	final := lastLog(t, stderr, "fleutanbeat stopped")
	if final["undelivered"] != float64(0) {
		t.Errorf("undelivered = %v, want 0", final["undelivered"])
	}
	st, _ := final["stats"].(map[string]any)
	pl, _ := st["pipeline"].(map[string]any)
	ev, _ := pl["events"].(map[string]any)
	published, acked := ev["published"], ev["acked"]
	lines, err := countLines(dataFile)
	if err != nil {
		t.Fatal(err)
	}
	if published == nil || published != acked || float64(lines) != acked {
		t.Fatalf("published=%v acked=%v lines in file=%d; all three must agree", published, acked, lines)
	}
	checkFlowEvents(t, dataFile)
}

// checkFlowEvents asserts the file holds documents with the fields every
// event must carry, flow documents with their network fields, and the
// flows input's per-process rollups (fleutan.flow.scope: process, on by
// default) with theirs.
func checkFlowEvents(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, rollups := 0, 0
	for sc.Scan() {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("line %d is not JSON: %v", n+1, err)
		}
		keys := []string{"@timestamp", "event", "agent", "host", "data_stream"}
		if ds, _ := doc["data_stream"].(map[string]any); ds["dataset"] == "fleutan.flows" {
			fl, _ := doc["fleutan"].(map[string]any)["flow"].(map[string]any)
			if fl["scope"] == "process" {
				rollups++
				keys = append(keys, "process")
				if _, ok := fl["rollup"]; !ok {
					t.Fatalf("line %d: a rollup without fleutan.flow.rollup: %s", n+1, sc.Bytes())
				}
			} else {
				keys = append(keys, "network")
			}
		}
		for _, key := range keys {
			if _, ok := doc[key]; !ok {
				t.Fatalf("line %d lacks %s: %s", n+1, key, sc.Bytes())
			}
		}
		n++
	}
	if n == 0 {
		t.Fatal("no events")
	}
	if rollups == 0 {
		t.Error("no per-process rollup among the flows events")
	}
}

func TestVersionAndHelp(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"version"}, 0, "fleutanbeat version "},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"help"}, 0, "Commands:"},
		{[]string{"run", "--help"}, 0, "fleutanbeat [run] [flags]"},
		{[]string{"test", "config", "--help"}, 0, "fleutanbeat test config"},
		{[]string{"export", "config", "-h"}, 0, "fleutanbeat export config"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"test"}, 2, `"test" needs a subcommand`},
		{[]string{"run", "--nope"}, 2, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(tt.args, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String()+errb.String(), tt.contains) {
				t.Fatalf("output lacks %q:\n%s%s", tt.contains, out.String(), errb.String())
			}
		})
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines parses the agent's JSON log lines.
func logLines(s string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func waitLog(t *testing.T, b *lockedBuffer, msg, key string, d time.Duration) string {
	t.Helper()
	var val string
	waitFor(t, d, "log line "+msg, func() bool {
		for _, m := range logLines(b.String()) {
			if m["msg"] == msg {
				val, _ = m[key].(string)
				return true
			}
		}
		return false
	})
	return val
}

func lastLog(t *testing.T, b *lockedBuffer, msg string) map[string]any {
	t.Helper()
	var last map[string]any
	for _, m := range logLines(b.String()) {
		if m["msg"] == msg {
			last = m
		}
	}
	if last == nil {
		t.Fatalf("no log line %q in:\n%s", msg, b.String())
	}
	return last
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return bytes.Count(b, []byte("\n")), nil
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return m
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)
