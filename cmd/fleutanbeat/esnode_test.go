package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
)

// esNode is a dedicated Elasticsearch that a test stops and starts with
// .ci/elasticsearch.sh, its state in its own folder so a restart keeps the
// documents (the same helper as output/elasticsearch's, which cmd cannot
// import from a _test file).
type esNode struct {
	t       *testing.T
	dir     string
	version string
	url     string
	port    string
}

// startESNode starts a node on a fresh folder under the repository's
// ignored .es/run (t.TempDir is 0700 root-owned, which the unprivileged
// node cannot enter); it is stopped and removed when the test ends. Like
// estest.URL it skips without `make test`, or fails with FLEUTANBEAT_REQUIRE_ES=1.
func startESNode(t *testing.T, name string) *esNode {
	t.Helper()
	v := estest.Version(t)
	root, err := filepath.Abs("../../.es/run")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, fmt.Sprintf("%s-%d", name, os.Getpid()))
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &esNode{t: t, dir: dir, version: v}
	t.Cleanup(func() {
		n.stop()
		_ = os.RemoveAll(dir)
	})
	n.start()
	return n
}

// start starts the node, on the port of its first start when there was
// one: the agent keeps its configured host across the outage.
func (n *esNode) start() {
	n.t.Helper()
	args := []string{"start", n.version, n.dir}
	if n.port != "" {
		args = append(args, "-Ehttp.port="+n.port)
	}
	u := strings.TrimRight(n.runScript(args...), "/")
	port := u[strings.LastIndexByte(u, ':')+1:]
	if n.port != "" && port != n.port {
		n.t.Fatalf("node restarted on %s, want port %s", u, n.port)
	}
	n.url, n.port = u, port
}

func (n *esNode) stop() { n.runScript("stop", n.dir) }

func (n *esNode) runScript(args ...string) string {
	n.t.Helper()
	script := os.Getenv("FLEUTANBEAT_ES_SCRIPT")
	if script == "" {
		p, err := filepath.Abs("../../.ci/elasticsearch.sh")
		if err != nil {
			n.t.Fatal(err)
		}
		script = p
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		n.t.Fatalf("elasticsearch.sh %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
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
