package main

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"
)

// diskAgent runs the built binary with the disk queue, real inputs at 1s
// periods and /stats on a free port.
type diskAgent struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *lockedBuffer
	addr   string
}

func startDiskAgent(t *testing.T, home string, extra ...string) *diskAgent {
	t.Helper()
	args := []string{"-e", "-c", shippedConfig(t), "--path.home", home,
		"-E", "http.enabled=true", "-E", "http.port=0", "-E", "http.host=127.0.0.1",
		"-E", "fleutanbeat.inputs.0.period=1s", "-E", "fleutanbeat.inputs.1.period=1s",
		"-E", "fleutanbeat.inputs.2.period=1s",
		"-E", "queue.disk.segment_size=64KiB", "-E", "queue.disk.flush.timeout=200ms",
		"-E", "shutdown_timeout=60s"}
	cmd := exec.Command(buildBinary(t), append(args, extra...)...)
	a := &diskAgent{t: t, cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = a.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	a.addr = waitLog(t, a.stderr, "monitoring endpoint listening", "address", 30*time.Second)
	return a
}

// stat reads a pipeline.queue.disk.* gauge from /stats.
func (a *diskAgent) stat(key string) float64 {
	st := getJSON(a.t, "http://"+a.addr+"/stats")
	pl, _ := st["pipeline"].(map[string]any)
	q, _ := pl["queue"].(map[string]any)
	d, _ := q["disk"].(map[string]any)
	v, _ := d[key].(float64)
	return v
}

func (a *diskAgent) kill9() {
	a.t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		a.t.Fatal(err)
	}
	_ = a.cmd.Wait()
}

// stop sends SIGTERM and returns the final "disk queue closed" line.
func (a *diskAgent) stop() map[string]any {
	a.t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		a.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			a.t.Fatalf("agent exited with %v; log:\n%s", err, a.stderr.String())
		}
	case <-time.After(90 * time.Second):
		a.t.Fatalf("agent did not stop; log:\n%s", a.stderr.String())
	}
	final := lastLog(a.t, a.stderr, "fleutanbeat stopped")
	if final["undelivered"] != float64(0) {
		a.t.Fatalf("undelivered = %v; log:\n%s", final["undelivered"], a.stderr.String())
	}
	return lastLog(a.t, a.stderr, "disk queue closed")
}

// deadHost is a URL where nothing listens: Elasticsearch "stopped".
func deadHost(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestAgentCrashesLoseAndDuplicateNothing: with Elasticsearch unreachable
// the agent fills its disk queue and is killed with SIGKILL at different
// moments (mid-period, right after start while replaying, mid-delivery once
// Elasticsearch is back); the last run drains. Every record the queue ever
// numbered (its sequence, which counts only intact records) is exactly one
// document in Elasticsearch. Stopping the dedicated node would cost a
// minute of CI per round; an address with nothing listening is the same
// outage to the agent.
func TestAgentCrashesLoseAndDuplicateNothing(t *testing.T) {
	base := esURL(t)
	requireRoot(t)
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	ns := "crash" + hex.EncodeToString(nb[:])
	home := t.TempDir()
	dead := deadHost(t)
	es := func(host string) []string {
		return []string{"-E", "output.file.enabled=false",
			"-E", "output.elasticsearch.hosts=[" + host + "]",
			"-E", "output.elasticsearch.namespace=" + ns,
			"-E", "output.elasticsearch.flush_interval=200ms",
			"-E", "output.elasticsearch.backoff.init=100ms", "-E", "output.elasticsearch.backoff.max=1s"}
	}
	datasets := []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"}
	docs := func() int {
		n := 0
		for _, ds := range datasets {
			n += esCount(t, base, "metrics-"+ds+"-"+ns)
		}
		return n
	}
	var last float64
	// Elasticsearch down: kill after two periods, within the first
	// period, and right at start-up while the previous records load.
	for i, wait := range []time.Duration{2500 * time.Millisecond, 1200 * time.Millisecond, 0} {
		a := startDiskAgent(t, home, es(dead)...)
		if wait > 0 {
			waitFor(t, 20*time.Second, "records in the disk queue", func() bool { return a.stat("sequence") > last })
			time.Sleep(wait)
		}
		seq := a.stat("sequence")
		a.kill9()
		t.Logf("round %d (Elasticsearch down): killed with sequence >= %v", i, seq)
		last = seq
	}
	if last == 0 {
		t.Fatal("nothing produced while Elasticsearch was down")
	}
	// Elasticsearch back: kill while the backlog is being delivered.
	a := startDiskAgent(t, home, es(base)...)
	waitFor(t, 60*time.Second, "first documents in Elasticsearch", func() bool { return docs() > 0 })
	a.kill9()
	t.Logf("round 3 (Elasticsearch up): killed mid-delivery with %d documents stored", docs())

	a = startDiskAgent(t, home, es(base)...)
	waitFor(t, 60*time.Second, "the backlog delivered", func() bool { return a.stat("records") < 100 })
	time.Sleep(1500 * time.Millisecond)
	closed := a.stop()
	produced := int(closed["sequence"].(float64))
	if closed["records"] != float64(0) {
		t.Fatalf("disk queue closed with %v records unacked", closed["records"])
	}
	if got := docs(); got != produced {
		t.Fatalf("Elasticsearch holds %d documents; the queue recorded %d events produced", got, produced)
	}
	t.Logf("%d events produced across 5 runs, %d documents", produced, produced)
}

// TestAgentSkipsDamagedQueueRecords damages the segments of a killed agent
// (one flipped byte in the first segment, a torn last record) and restarts
// it with the file output: it starts, writes every intact record and
// reports two damaged regions.
func TestAgentSkipsDamagedQueueRecords(t *testing.T) {
	requireRoot(t)
	home := t.TempDir()
	a := startDiskAgent(t, home, "-E", "output.file.enabled=false",
		"-E", "output.elasticsearch.hosts=["+deadHost(t)+"]")
	waitFor(t, 20*time.Second, "records in the disk queue", func() bool { return a.stat("sequence") > 20 })
	time.Sleep(1500 * time.Millisecond)
	a.kill9()

	segs, _ := filepath.Glob(filepath.Join(home, "data", "queue", "*.seg"))
	sort.Strings(segs)
	var nonEmpty []string
	for _, s := range segs {
		if st, err := os.Stat(s); err == nil && st.Size() > 0 {
			nonEmpty = append(nonEmpty, s)
		}
	}
	if len(nonEmpty) == 0 {
		t.Fatal("no segment files")
	}
	first, last := nonEmpty[0], nonEmpty[len(nonEmpty)-1]
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	// A third into the first file is inside a record that is not the last.
	b[len(b)/3] ^= 0x55
	if err := os.WriteFile(first, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(last)
	if err := os.Truncate(last, st.Size()-5); err != nil {
		t.Fatal(err)
	}

	a = startDiskAgent(t, home)
	warn := waitLog(t, a.stderr, "disk queue: damaged records skipped; intact records are delivered", "path", 20*time.Second)
	if warn == "" {
		t.Fatal("no path in the damage warning")
	}
	if r := lastLog(t, a.stderr, "disk queue: damaged records skipped; intact records are delivered")["regions"]; r != float64(2) {
		t.Fatalf("damaged regions = %v, want 2", r)
	}
	time.Sleep(1500 * time.Millisecond)
	closed := a.stop()
	seq := int(closed["sequence"].(float64))
	lines, err := countLines(filepath.Join(home, "data", "fleutanbeat.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	// The torn record is not counted in the sequence; the flipped one is.
	if lines != seq-1 {
		t.Fatalf("%d events written, sequence %d: want exactly one damaged record lost besides the torn one", lines, seq)
	}
	st2 := lastLog(t, a.stderr, "fleutanbeat stopped")["stats"].(map[string]any)
	c := st2["pipeline"].(map[string]any)["queue"].(map[string]any)["disk"].(map[string]any)["corrupted"].(map[string]any)
	if c["regions"] != float64(2) {
		t.Fatalf("stats corrupted = %v", c)
	}
}
