package elasticsearch

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// clusterEvents is the synthetic flow-shaped load of the cluster test.
const clusterEvents = 200_000

// TestRealClusterNodeKillsLoseAndDuplicateNothing ships 200k flow events
// through the pipeline to a three-node cluster of containers, configured
// with all three hosts; while it ships, one node is killed (docker kill),
// then the node holding the data stream's primary shard, then both are
// brought back: every event produced is stored exactly once.
func TestRealClusterNodeKillsLoseAndDuplicateNothing(t *testing.T) {
	cl := estest.StartCluster(t, "cluster", 3)
	c := testConfig(cl.Nodes[0].URL)
	c.Hosts = cl.Hosts()
	c.Namespace = uniqueName(t)
	c.Worker = 2
	c.BulkMaxSize = 500
	c.Timeout = config.Duration(10 * time.Second)
	c.Backoff = Backoff{Init: config.Duration(100 * time.Millisecond), Max: config.Duration(time.Second)}
	stream := "metrics-fleutan.flows-" + c.Namespace
	p, metrics := startPipeline(t, c, testSettings(), "cluster", 500)
	pub := p.Client(pipeline.ClientConfig{Input: "test"})

	// 100 series per second of event time: ids are deterministic and
	// distinct.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var produced atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		for i := range clusterEvents {
			e := flowEvent(i, base.Add(time.Duration(i/100)*time.Second))
			e.ID = ""
			e.Series = fmt.Sprintf("flow-%d", i%100)
			if err := pub.Publish(ctx, e); err != nil {
				return
			}
			produced.Add(1)
		}
	}()
	acked := func() int64 {
		v, _ := metrics.Tree().GetValue(MetricAcked)
		if v == nil {
			return 0
		}
		return v.(int64)
	}
	waitFor := func(what string, n int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Minute); acked() < n; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d acked, waited for %d", what, acked(), n)
			}
		}
	}

	waitFor("before the first kill", 20_000)
	holder := primaryHolder(t, cl.Nodes[0], stream)
	first := cl.Nodes[2]
	if first.Name() == holder {
		first = cl.Nodes[1]
	}
	first.Kill()
	t.Logf("killed %s at %d acked (primary on %s)", first.Name(), acked(), holder)
	waitFor("with one node down", acked()+20_000)
	var alive *estest.Node
	for _, n := range cl.Nodes {
		if n != first && n.Name() != holder {
			alive = n
		}
	}
	// The primary may have moved to the node killed first's peers.
	holder = primaryHolder(t, alive, stream)
	second := cl.Node(holder)
	if second == nil || second == first {
		t.Fatalf("primary holder %q is not a live node", holder)
	}
	second.Kill()
	stalledAt := acked()
	t.Logf("killed primary holder %s at %d acked", holder, stalledAt)
	time.Sleep(10 * time.Second)
	cl.Resume(first, second)
	t.Logf("both back at %d acked", acked())

	<-done
	if got := produced.Load(); got != clusterEvents {
		t.Fatalf("produced %d of %d", got, clusterEvents)
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer closeCancel()
	if undelivered := p.Close(closeCtx); undelivered != 0 {
		t.Fatalf("%d events undelivered", undelivered)
	}
	db := estest.NewClient(t, alive.URL)
	if got := count(db, stream); got != clusterEvents {
		t.Fatalf("the cluster holds %d documents, produced %d", got, clusterEvents)
	}
	// A document's _id is unique in its index (the output's create of an
	// existing id is a 409), so the count being the produced number is
	// "count distinct _id = published": nothing lost, nothing stored twice.
	tree := metrics.Tree()
	a, _ := tree.GetValue(MetricAcked)
	d, _ := tree.GetValue(MetricDuplicates)
	rt, _ := tree.GetValue(MetricRetried)
	t.Logf("produced %d, acked %v, duplicates %v, retried %v", clusterEvents, a, d, rt)
	if a.(int64)+d.(int64) != clusterEvents {
		t.Fatalf("acked %v + duplicates %v for %d events", a, d, clusterEvents)
	}
	if rt.(int64) == 0 {
		t.Fatal("no retry counted across two node kills")
	}
}

// primaryHolder is the node.name holding the primary shard of stream's
// write index, asked of node n.
func primaryHolder(t *testing.T, n *estest.Node, stream string) string {
	t.Helper()
	var shards []struct {
		Index  string `json:"index"`
		PriRep string `json:"prirep"`
		State  string `json:"state"`
		Node   string `json:"node"`
	}
	estest.NewClient(t, n.URL).JSON("GET", "/_cat/shards?format=json&h=index,prirep,state,node", nil, &shards)
	for _, s := range shards {
		if strings.Contains(s.Index, stream) && s.PriRep == "p" && s.State == "STARTED" {
			return s.Node
		}
	}
	t.Fatalf("no started primary of %s in %+v", stream, shards)
	return ""
}
