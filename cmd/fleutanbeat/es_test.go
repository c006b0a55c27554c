package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/output/opensearch/ostest"
)

// esCount refreshes index and counts its documents. An index that does
// not exist yet counts 0, and so does one whose shard is not allocated yet
// (503 no_shard_available_action_exception right after the agent created
// the data stream): callers poll.
func esCount(es *estest.Client, index string) int {
	es.T.Helper()
	if st, b := es.Do("POST", "/"+index+"/_refresh?ignore_unavailable=true", nil); st == http.StatusServiceUnavailable {
		return 0
	} else if st/100 != 2 {
		es.T.Fatalf("refresh %s: status %d: %s", index, st, b)
	}
	st, b := es.Do("GET", "/"+index+"/_count?ignore_unavailable=true", nil)
	if st == http.StatusServiceUnavailable {
		return 0
	}
	if st/100 != 2 {
		es.T.Fatalf("count %s: status %d: %s", index, st, b)
	}
	var r struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		es.T.Fatalf("count %s: %v: %s", index, err, b)
	}
	return r.Count
}

// esEachIDOnce fails the test unless the indices matched by pattern hold
// exactly produced documents, each _id once: every event the disk queue
// recorded was stored, and none twice. It returns the ids and the number
// of documents.
func esEachIDOnce(es *estest.Client, pattern string, produced int) (map[string]int, int) {
	es.T.Helper()
	ids := esIDs(es, pattern)
	docs := 0
	for id, k := range ids {
		docs += k
		if k != 1 {
			es.T.Errorf("id %s stored %d times", id, k)
		}
	}
	if docs != produced || len(ids) != produced {
		es.T.Fatalf("Elasticsearch holds %d documents with %d distinct ids; the queue recorded %d events produced", docs, len(ids), produced)
	}
	return ids, docs
}

// esIDs returns how many times each _id occurs in the indices matched by
// pattern, paging with the scroll API so that no cap hides a document.
func esIDs(es *estest.Client, pattern string) map[string]int {
	es.T.Helper()
	es.JSON("POST", "/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", nil, nil)
	ids := map[string]int{}
	var m map[string]any
	es.JSON("POST", "/"+pattern+"/_search?scroll=1m&ignore_unavailable=true&allow_no_indices=true",
		map[string]any{"size": 5000, "_source": false, "query": map[string]any{"match_all": map[string]any{}}}, &m)
	for {
		hits, _ := m["hits"].(map[string]any)
		list, _ := hits["hits"].([]any)
		if len(list) == 0 {
			break
		}
		for _, h := range list {
			id, _ := h.(map[string]any)["_id"].(string)
			ids[id]++
		}
		sid, _ := m["_scroll_id"].(string)
		if sid == "" {
			es.T.Fatalf("search of %s: no _scroll_id in %v", pattern, m)
		}
		m = nil
		es.JSON("POST", "/_search/scroll", map[string]any{"scroll": "1m", "scroll_id": sid}, &m)
	}
	if sid, _ := m["_scroll_id"].(string); sid != "" {
		es.JSON("DELETE", "/_search/scroll", map[string]any{"scroll_id": sid}, nil)
	}
	return ids
}

// TestAgentBinaryShipsToElasticsearch runs the built agent with its real
// inputs against the real Elasticsearch: documents land in one data stream
// per dataset, with the intended mapping types, exactly once each, and a flow
// this test holds is found with this process.
func TestAgentBinaryShipsToElasticsearch(t *testing.T) {
	base := estest.URL(t)
	nstest.RequireRoot(t)
	agentShipsTo(t, "elasticsearch", base)
}

// TestAgentBinaryShipsToOpenSearch is the same with output.opensearch, to
// each OpenSearch the run started (2.19.x and 3.x).
func TestAgentBinaryShipsToOpenSearch(t *testing.T) {
	servers := ostest.Servers(t)
	nstest.RequireRoot(t)
	for _, srv := range servers {
		t.Run(srv.Version, func(t *testing.T) { agentShipsTo(t, "opensearch", srv.URL) })
	}
}

// agentShipsTo runs the agent with output.NAME (elasticsearch or
// opensearch) at base and checks what it stored there.
func agentShipsTo(t *testing.T, out, base string) {
	es := estest.NewClient(t, base)
	bin := buildBinary(t)
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	ns := "agent" + hex.EncodeToString(nb[:])

	// A flow only this test has: a listener and a client in this process.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	defer server.Close()
	if _, err := client.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(server, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	cmd := exec.Command(bin, "-e", "-c", shippedConfig(t), "--path.home", t.TempDir(),
		"-E", "output.file.enabled=false",
		"-E", "output."+out+".hosts=["+base+"]",
		"-E", "output."+out+".namespace="+ns,
		"-E", "output."+out+".flush_interval=200ms",
		"-E", "fleutanbeat.inputs.0.period=1s", "-E", "fleutanbeat.inputs.1.period=1s",
		"-E", "fleutanbeat.inputs.2.period=1s")
	stderr := agentLog(t)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	datasets := []string{"fleutan.flows", "fleutan.cpu", "fleutan.qdisc"}
	stream := func(ds string) string { return "metrics-" + ds + "-" + ns }
	waitFor(t, 60*time.Second, "documents of every dataset in "+out, func() bool {
		for _, ds := range datasets {
			if esCount(es, stream(ds)) == 0 {
				return false
			}
		}
		return true
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent exited with %v; log:\n%s", err, stderr.String())
	}
	final := lastLog(t, stderr, "fleutanbeat stopped")
	if final["undelivered"] != float64(0) {
		t.Fatalf("undelivered = %v; log:\n%s", final["undelivered"], stderr.String())
	}
	st, _ := final["stats"].(map[string]any)
	pl, _ := st["pipeline"].(map[string]any)
	ev, _ := pl["events"].(map[string]any)
	published, _ := ev["published"].(float64)

	// Every published event is one document: no loss, no duplicate.
	total := 0
	for _, ds := range datasets {
		total += esCount(es, stream(ds))
	}
	if float64(total) != published {
		t.Errorf("documents in %s = %d, events published = %v", out, total, published)
	}

	// The mapping has the intended types.
	want := map[string]string{
		"source.ip": "ip", "network.bytes": "long", "fleutan.flow.tcp.rtt_us": "long",
		"process.name": "keyword", "@timestamp": "date", "fleutan.flow.final": "boolean",
	}
	got := es.FieldTypes(stream("fleutan.flows"), "source.ip", "network.bytes", "fleutan.flow.tcp.rtt_us", "process.name", "@timestamp", "fleutan.flow.final")
	for f, typ := range want {
		if got[f] != typ {
			t.Errorf("mapping of %s = %q, want %q", f, got[f], typ)
		}
	}

	// The test's own flow, with this process.
	var res map[string]any
	es.JSON("POST", "/"+stream("fleutan.flows")+"/_search", map[string]any{
		"size": 1,
		"query": map[string]any{"bool": map[string]any{"filter": []any{
			map[string]any{"term": map[string]any{"fleutan.flow.remote.port": port}},
			map[string]any{"term": map[string]any{"network.direction": "egress"}},
		}}},
	}, &res)
	hits, _ := res["hits"].(map[string]any)["hits"].([]any)
	if len(hits) == 0 {
		t.Fatalf("no flow to port %d in %s: %v", port, out, res)
	}
	src := hits[0].(map[string]any)["_source"].(map[string]any)
	// ECS host-based: egress is a connection this host initiated.
	if fl, _ := src["fleutan"].(map[string]any)["flow"].(map[string]any); fl["direction"] != "outbound" {
		t.Errorf("network.direction egress on a flow whose fleutan.flow.direction is %v", fl["direction"])
	}
	proc, _ := src["process"].(map[string]any)
	if proc["pid"] != float64(os.Getpid()) {
		t.Errorf("flow to port %d has process %v, want pid %d", port, proc, os.Getpid())
	}
	if dst, _ := src["destination"].(map[string]any); dst["port"] != float64(port) || fmt.Sprint(dst["ip"]) != "127.0.0.1" {
		t.Errorf("destination = %v", dst)
	}
}

// TestIndexManagementCommands: setup, test output and export template
// against the real Elasticsearch, and test output against a dead host.
func TestIndexManagementCommands(t *testing.T) {
	base := estest.URL(t)
	cfg := shippedConfig(t)
	es := func(args ...string) (int, string, string) {
		full := append(args, "-c", cfg, "--path.home", t.TempDir(),
			"-E", "output.file.enabled=false")
		var stdout, stderr bytes.Buffer
		code := Main(full, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	hosts := "output.elasticsearch.hosts=[" + base + "]"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"setup", []string{"setup", "--index-management", "-E", hosts}, 0, "Index templates installed", ""},
		{"setup again is idempotent", []string{"setup", "--index-management", "-E", hosts}, 0, "Index templates installed", ""},
		{"test output", []string{"test", "output", "-E", hosts}, 0, "8.", ""},
		{"export template", []string{"export", "template", "-E", hosts}, 0, "metrics-fleutan.flows", ""},
		{"test output, nothing listening", []string{"test", "output", "-E", "output.elasticsearch.hosts=[http://127.0.0.1:1]", "-E", "output.elasticsearch.timeout=2s"}, 1, "", "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := es(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
		})
	}
	// The composable templates are in place.
	var m map[string]any
	estest.NewClient(t, base).JSON("GET", "/_index_template/metrics-fleutan.*", nil, &m)
	if its, _ := m["index_templates"].([]any); len(its) != len(elasticsearch.AllDatasets()) {
		t.Errorf("index templates after setup: %v", m)
	}
}
