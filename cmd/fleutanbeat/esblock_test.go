package main

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
)

// waitLogSuffix waits for a log line whose message ends with suffix.
func waitLogSuffix(t *testing.T, b *lockedBuffer, suffix string, d time.Duration) map[string]any {
	t.Helper()
	var line map[string]any
	waitFor(t, d, "a log line ending "+suffix, func() bool {
		for _, m := range logLines(b.String()) {
			if msg, _ := m["msg"].(string); strings.HasSuffix(msg, suffix) {
				line = m
				return true
			}
		}
		return false
	})
	return line
}

// TestAgentDiskQueueKeepsBlockedEventsAcrossRestart: the agent ships its
// real inputs through the disk queue to Elasticsearch; an operator sets
// index.blocks.write on every backing index of its data streams; the agent
// is stopped while blocked (its events stay on disk), started again, still
// blocked, and the block is lifted: every event the queue ever numbered is
// one document, none dropped.
func TestAgentDiskQueueKeepsBlockedEventsAcrossRestart(t *testing.T) {
	base := estest.URL(t)
	nstest.RequireRoot(t)
	es := estest.NewClient(t, base)
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	ns := "block" + hex.EncodeToString(nb[:])
	pattern := "metrics-*-" + ns
	home := t.TempDir()
	args := []string{"-E", "output.file.enabled=false",
		"-E", "output.elasticsearch.hosts=[" + base + "]",
		"-E", "output.elasticsearch.namespace=" + ns,
		"-E", "output.elasticsearch.flush_interval=200ms", "-E", "output.elasticsearch.bulk_max_size=50",
		"-E", "output.elasticsearch.backoff.init=100ms", "-E", "output.elasticsearch.backoff.max=1s",
		"-E", "shutdown_timeout=2s"}
	a := startDiskAgent(t, home, args...)
	waitFor(t, 60*time.Second, "documents of every dataset", func() bool {
		for _, ds := range []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"} {
			if esCount(es, "metrics-"+ds+"-"+ns) == 0 {
				return false
			}
		}
		return true
	})
	var settings map[string]any
	es.JSON("GET", "/"+pattern+"/_settings", nil, &settings)
	if len(settings) != 3 {
		t.Fatalf("backing indices of %s: %d, want 3", pattern, len(settings))
	}
	setBlock := func(v any) {
		for index := range settings {
			es.JSON("PUT", "/"+index+"/_settings", map[string]any{"index.blocks.write": v}, nil)
		}
	}
	setBlock(true)
	const blockedMsg = " has a write block; events are kept and retried"
	line := waitLogSuffix(t, a.stderr, blockedMsg, 30*time.Second)
	if line["output"] != "elasticsearch" || line["error.type"] != "cluster_block_exception" {
		t.Fatalf("write block log line: %v", line)
	}
	time.Sleep(2 * time.Second)

	// Stopped while blocked: the agent exits cleanly and leaves the
	// undelivered events in its disk queue.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("agent exited with %v; log:\n%s", err, a.stderr.String())
	}
	first := lastLog(t, a.stderr, "fleutanbeat stopped")
	if u, _ := first["undelivered"].(float64); u == 0 {
		t.Fatalf("nothing undelivered after stopping while blocked: %v", first)
	}
	left := lastLog(t, a.stderr, "disk queue closed")["records"]
	t.Logf("stopped while blocked: %v undelivered, %v records left on disk", first["undelivered"], left)

	a = startDiskAgent(t, home, args...)
	waitLogSuffix(t, a.stderr, blockedMsg, 30*time.Second)
	time.Sleep(2 * time.Second)
	setBlock(nil)
	waitFor(t, 90*time.Second, "the backlog delivered", func() bool { return a.stat("records") < 100 })
	time.Sleep(1500 * time.Millisecond)
	closed := a.stop()
	produced := int(closed["sequence"].(float64))
	if closed["records"] != float64(0) {
		t.Fatalf("disk queue closed with %v records unacked", closed["records"])
	}
	for i, final := range []map[string]any{first, lastLog(t, a.stderr, "fleutanbeat stopped")} {
		st, _ := final["stats"].(map[string]any)
		pl, _ := st["pipeline"].(map[string]any)
		ev, _ := pl["events"].(map[string]any)
		if d, ok := ev["dropped"]; ok {
			t.Errorf("run %d dropped events: %v", i+1, d)
		}
	}
	ids, docs := esEachIDOnce(es, pattern, produced)
	t.Logf("%d events produced across 2 runs, %d documents, %d distinct ids", produced, docs, len(ids))
}
