package elasticsearch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func uniqueName(t testing.TB) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// count refreshes index (hidden backing indices too) and counts its
// documents.
func count(db *estest.Client, index string) int {
	db.T.Helper()
	db.JSON("POST", "/"+index+"/_refresh?expand_wildcards=all", nil, nil)
	var r struct {
		Count int `json:"count"`
	}
	db.JSON("GET", "/"+index+"/_count", nil, &r)
	return r.Count
}

// docIDs returns every _id stored in index (up to 10000).
func docIDs(db *estest.Client, index string) map[string]int {
	db.T.Helper()
	db.JSON("POST", "/"+index+"/_refresh", nil, nil)
	var r struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	db.JSON("POST", "/"+index+"/_search", map[string]any{"size": 10000, "_source": false, "query": map[string]any{"match_all": map[string]any{}}}, &r)
	out := map[string]int{}
	for _, h := range r.Hits.Hits {
		out[h.ID]++
	}
	return out
}

// flowEvent is shaped like input/flows' events, with a fixed id.
func flowEvent(i int, ts time.Time) pipeline.Event {
	return pipeline.Event{
		Timestamp: ts,
		ID:        fmt.Sprintf("flow-%07d", i),
		Fields: pipeline.M{
			"event": pipeline.M{"dataset": "fleutan.flows", "module": "fleutan", "kind": "metric", "duration": int64(125000)},
			"agent": pipeline.M{"type": "fleutanbeat", "version": "0.1.0", "id": "5d1f3c1e-agent", "name": "bench-host", "ephemeral_id": "e1"},
			"host":  pipeline.M{"name": "bench-host", "ip": []string{"10.1.2.3", "fe80::1"}},
			"network": pipeline.M{
				"transport": "tcp", "type": "ipv4", "iana_number": "6", "direction": "egress",
				"community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "bytes": uint64(123456 + i), "packets": uint64(321),
			},
			"source":      pipeline.M{"ip": "10.0.0.1", "port": 40000 + i%20000, "bytes": uint64(100000), "packets": uint64(200)},
			"destination": pipeline.M{"ip": "10.0.0.2", "port": 443, "bytes": uint64(23456), "packets": uint64(121)},
			"process":     pipeline.M{"pid": 4242, "name": "curl", "executable": "/usr/bin/curl", "args": []string{"curl", "https://example"}},
			"user":        pipeline.M{"id": "1000", "name": "alice"},
			"fleutan": pipeline.M{"flow": pipeline.M{
				"local":  pipeline.M{"ip": "10.0.0.1", "port": 40000 + i%20000},
				"remote": pipeline.M{"ip": "10.0.0.2", "port": 443},
				"state":  "ESTABLISHED", "inode": uint64(88123 + i), "netns": uint64(4026531840),
				"direction": "outgoing", "final": i%10 == 0,
				"tcp": pipeline.M{
					"rtt_us": uint64(250), "rttvar_us": uint64(30), "min_rtt_us": uint64(180), "cwnd": uint64(10),
					"ssthresh": uint64(2147483647), "mss": uint64(1448), "bytes_acked": uint64(100000),
					"bytes_received": uint64(23456), "bytes_sent": uint64(100000), "bytes_retrans": uint64(0),
					"segs_in": uint64(121), "segs_out": uint64(200), "total_retrans": uint64(0), "lost": uint64(0),
					"delivery_rate_bps": uint64(800000000), "pacing_rate_bps": uint64(1600000000),
					"notsent_bytes": uint64(0), "congestion": "cubic", "bdp_bytes": uint64(25000),
				},
				"delta": pipeline.M{"bytes_in": uint64(2000), "bytes_out": uint64(9000), "segs_in": uint64(12), "segs_out": uint64(20), "retrans": uint64(0)},
			}},
		},
	}
}

func flowEvents(from, n int, ts time.Time) []pipeline.Event {
	out := make([]pipeline.Event, n)
	for i := range out {
		out[i] = flowEvent(from+i, ts.Add(time.Duration(from+i)*time.Millisecond))
	}
	return out
}

func testConfig(url string) Config {
	c := DefaultConfig()
	c.Hosts = []string{url}
	c.Backoff = Backoff{Init: config.Duration(10 * time.Millisecond), Max: config.Duration(100 * time.Millisecond)}
	c.Timeout = config.Duration(30 * time.Second)
	return c
}

func newTestClient(t testing.TB, c Config) *Client {
	t.Helper()
	cl, err := NewClient(c, testSettings())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func publish(t testing.TB, c *Client, events []pipeline.Event) *pipeline.Batch {
	t.Helper()
	b := pipeline.NewBatch(events)
	if err := c.Publish(context.Background(), b); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return b
}

func statuses(b *pipeline.Batch) map[pipeline.Status]int {
	out := map[pipeline.Status]int{}
	for i := range b.Len() {
		st, _ := b.Status(i)
		out[st]++
	}
	return out
}
