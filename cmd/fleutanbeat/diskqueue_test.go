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

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
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
	a := &diskAgent{t: t, cmd: cmd, stderr: agentLog(t)}
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

// outputAcked reads output.elasticsearch.events.acked from /stats.
func (a *diskAgent) outputAcked() float64 {
	st := getJSON(a.t, "http://"+a.addr+"/stats")
	o, _ := st["output"].(map[string]any)
	e, _ := o["elasticsearch"].(map[string]any)
	ev, _ := e["events"].(map[string]any)
	v, _ := ev["acked"].(float64)
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

// TestAgentCrashesLoseAndDuplicateNothing is the crash test: a
// dedicated Elasticsearch node is started and stopped; the agent, with its
// real inputs, fills its disk queue and is killed with SIGKILL at different
// moments (two periods in, within the first period, right at start-up while
// the previous records load); the node is started again on the same port
// and data; the agent is killed once more mid-delivery, then runs until the
// queue is drained. Every record the queue ever numbered (its persisted
// sequence, which counts only intact records) is exactly one document:
// as many documents as distinct ids as events produced.
func TestAgentCrashesLoseAndDuplicateNothing(t *testing.T) {
	nstest.RequireRoot(t)
	node := estest.StartNode(t, "crash", "")
	base := node.URL
	es := estest.NewClient(t, base)
	node.Stop()
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	ns := "crash" + hex.EncodeToString(nb[:])
	home := t.TempDir()
	agentArgs := []string{"-E", "output.file.enabled=false",
		"-E", "output.elasticsearch.hosts=[" + base + "]",
		"-E", "output.elasticsearch.namespace=" + ns,
		"-E", "output.elasticsearch.flush_interval=200ms", "-E", "output.elasticsearch.bulk_max_size=10",
		"-E", "output.elasticsearch.backoff.init=100ms", "-E", "output.elasticsearch.backoff.max=1s"}
	pattern := "metrics-*-" + ns
	var last float64
	for i, wait := range []time.Duration{2500 * time.Millisecond, 1200 * time.Millisecond, 0} {
		a := startDiskAgent(t, home, agentArgs...)
		if wait > 0 {
			waitFor(t, 20*time.Second, "records in the disk queue", func() bool { return a.stat("sequence") > last })
			time.Sleep(wait)
		}
		seq := a.stat("sequence")
		a.kill9()
		t.Logf("round %d (Elasticsearch stopped): killed with sequence >= %v", i, seq)
		last = seq
	}
	if last == 0 {
		t.Fatal("nothing produced while Elasticsearch was stopped")
	}

	node.Start()
	// Small bulks spread the backlog over many requests; the kill follows
	// the first bulk the output reports acked, so it lands mid-delivery.
	a := startDiskAgent(t, home, agentArgs...)
	deadline := time.Now().Add(90 * time.Second)
	for a.outputAcked() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no bulk acked 90 s after Elasticsearch was started; log:\n%s", a.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.kill9()
	t.Logf("round 3 (Elasticsearch started): killed after the first acked bulk, %d documents stored of a %v backlog", esCount(es, pattern), last)

	a = startDiskAgent(t, home, agentArgs...)
	waitFor(t, 90*time.Second, "the backlog delivered", func() bool { return a.stat("records") < 100 })
	time.Sleep(1500 * time.Millisecond)
	closed := a.stop()
	produced := int(closed["sequence"].(float64))
	if closed["records"] != float64(0) {
		t.Fatalf("disk queue closed with %v records unacked", closed["records"])
	}
	if produced <= int(last) {
		t.Fatalf("sequence %d after the outage, %v before: nothing produced once Elasticsearch was back", produced, last)
	}
	ids, docs := esEachIDOnce(es, pattern, produced)
	if n := esCount(es, pattern); n != produced {
		t.Fatalf("_count says %d documents, the queue recorded %d", n, produced)
	}
	t.Logf("%d events produced across 5 runs (%v while Elasticsearch was stopped), %d documents, %d distinct ids", produced, last, docs, len(ids))
}

// TestAgentSkipsDamagedQueueRecords damages the segments of a killed agent
// (one flipped byte in the first segment, a torn last record) and restarts
// it with the file output: it starts, writes every intact record and
// reports two damaged regions.
func TestAgentSkipsDamagedQueueRecords(t *testing.T) {
	nstest.RequireRoot(t)
	home := t.TempDir()
	a := startDiskAgent(t, home, "-E", "output.file.enabled=false",
		"-E", "output.elasticsearch.hosts=["+deadHost(t)+"]")
	// Two segments at least: the sequence comes from the last segment's
	// name plus its intact records, so the flipped record (in the first)
	// stays counted while the torn one (in the last) does not. With one
	// segment neither would be counted.
	queueDir := filepath.Join(home, "data", "queue")
	nonEmptySegments := func() []string {
		segs, _ := filepath.Glob(filepath.Join(queueDir, "*.seg"))
		sort.Strings(segs)
		var out []string
		for _, s := range segs {
			if st, err := os.Stat(s); err == nil && st.Size() > 0 {
				out = append(out, s)
			}
		}
		return out
	}
	waitFor(t, 60*time.Second, "two segments in the disk queue", func() bool { return len(nonEmptySegments()) >= 2 })
	time.Sleep(1500 * time.Millisecond)
	a.kill9()

	nonEmpty := nonEmptySegments()
	if len(nonEmpty) < 2 {
		t.Fatalf("%d non-empty segment files, want 2 or more", len(nonEmpty))
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
