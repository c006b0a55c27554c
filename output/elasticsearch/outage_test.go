package elasticsearch

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// outageSeconds is how long Elasticsearch is down in the outage test
// (FLEUTANBEAT_ES_OUTAGE overrides the 30 s of the issue).
func outageSeconds() time.Duration {
	if s := os.Getenv("FLEUTANBEAT_ES_OUTAGE"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 30 * time.Second
}

// TestRealOutageLosesAndDuplicatesNothing drives the output through the
// pipeline while its Elasticsearch is stopped for 30 s and started again
// on the same data: every event produced is stored exactly once.
func TestRealOutageLosesAndDuplicatesNothing(t *testing.T) {
	n := estest.StartNode(t, "outage", "")
	port := n.URL[strings.LastIndexByte(n.URL, ':')+1:]
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("bad url %q", n.URL)
	}
	c := testConfig(n.URL)
	c.Worker = 2
	c.BulkMaxSize = 200
	c.Timeout = config.Duration(5 * time.Second)
	c.Backoff = Backoff{Init: config.Duration(100 * time.Millisecond), Max: config.Duration(time.Second)}
	p, metrics := startPipeline(t, c, testSettings(), "outage", 200)
	pub := p.Client(pipeline.ClientConfig{Input: "test"})

	// The producer emits 20 flow events every 200 ms with a series each, so
	// their ids are deterministic, until told to stop.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var produced atomic.Int64
	done := make(chan error, 1)
	go func() {
		base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-tick.C:
			}
			for j := range 20 {
				i := int(produced.Load())
				e := flowEvent(i, base.Add(time.Duration(k)*time.Second))
				e.ID = "" // the pipeline sets the deterministic id
				e.Series = fmt.Sprintf("flow-%d", j)
				if err := pub.Publish(ctx, e); err != nil {
					done <- nil
					return
				}
				produced.Add(1)
			}
		}
	}()

	// Events must be flowing, templates installed, before the node stops:
	// on a loaded machine the first bulk request can take longer than a
	// fixed pause, and then the outage would test the setup instead.
	waitAcked(t, metrics, 3*time.Second, 2*time.Minute)
	n.Stop()
	stoppedAt := produced.Load()
	time.Sleep(outageSeconds())
	n.Start()
	time.Sleep(3 * time.Second)
	cancel()
	<-done
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer closeCancel()
	if undelivered := p.Close(closeCtx); undelivered != 0 {
		t.Fatalf("%d events undelivered after the outage", undelivered)
	}
	total := int(produced.Load())
	if total <= int(stoppedAt) {
		t.Fatalf("nothing produced during the outage (%d before, %d total)", stoppedAt, total)
	}
	db := estest.NewClient(t, n.URL)
	if got := count(db, "metrics-fleutan.flows-default"); got != total {
		t.Fatalf("Elasticsearch holds %d documents, produced %d", got, total)
	}
	ids := docIDs(db, "metrics-fleutan.flows-default")
	if len(ids) != total {
		t.Fatalf("Elasticsearch holds %d distinct ids, produced %d", len(ids), total)
	}
	for id, k := range ids {
		if k != 1 {
			t.Fatalf("id %s stored %d times", id, k)
		}
	}
	tree := metrics.Tree()
	acked, _ := tree.GetValue(MetricAcked)
	dups, _ := tree.GetValue(MetricDuplicates)
	retried, _ := tree.GetValue(MetricRetried)
	t.Logf("produced %d (%d before the stop), acked %v, duplicates %v, retried %v", total, stoppedAt, acked, dups, retried)
	// Every event ends in exactly one outcome: created by this output
	// (acked), or found already stored when a request whose reply was lost
	// (a timeout on a loaded machine) is sent again (a 409, a duplicate).
	// Elasticsearch holding each id once, checked above, is the proof that
	// nothing was stored twice.
	if a, d := acked.(int64), dups.(int64); a+d != int64(total) {
		t.Fatalf("acked %d + duplicates %d for %d events", a, d, total)
	}
	if r := retried.(int64); r == 0 {
		t.Fatal("no retry counted across a 30 s outage")
	}
}

// waitAcked waits at least min, and until the output has stored an event,
// for at most max.
func waitAcked(t *testing.T, m *pipeline.Metrics, min, max time.Duration) {
	t.Helper()
	time.Sleep(min)
	for deadline := time.Now().Add(max); ; time.Sleep(100 * time.Millisecond) {
		if v, _ := m.Tree().GetValue(MetricAcked); v != nil && v.(int64) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event stored within %s of the start", min+max)
		}
	}
}
