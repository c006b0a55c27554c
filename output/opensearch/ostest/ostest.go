// Package ostest gives tests the real OpenSearch servers that `make test`
// starts for the run (.ci/opensearch.sh run, one per tested major
// version), and dedicated nodes that a test stops and starts itself.
// Assertions use estest.Client: the REST calls they make are the same on
// both products.
//
// Tests that need OpenSearch skip without it, unless
// FLEUTANBEAT_REQUIRE_OPENSEARCH=1 (set by .ci/run) turns the skip into a
// failure.
package ostest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Majors are the OpenSearch major versions `make test` runs, one server
// each.
var Majors = []string{"2", "3"}

// Server is one of the run's servers; PID is its process (0 if unknown).
type Server struct {
	Major, Version, URL string
	PID                 int
}

// Servers are the run's servers, one per major version of Majors. A
// missing one skips the test, unless FLEUTANBEAT_REQUIRE_OPENSEARCH=1
// makes that a failure.
func Servers(t testing.TB) []Server {
	t.Helper()
	var out []Server
	for _, m := range Majors {
		out = append(out, ServerOf(t, m))
	}
	return out
}

// ServerOf is the run's server of major version major.
func ServerOf(t testing.TB, major string) Server {
	t.Helper()
	u := os.Getenv("FLEUTANBEAT_OS" + major + "_URL")
	v := os.Getenv("FLEUTANBEAT_OS" + major + "_VERSION")
	if u == "" || v == "" {
		if os.Getenv("FLEUTANBEAT_REQUIRE_OPENSEARCH") == "1" {
			t.Fatalf("FLEUTANBEAT_OS%s_URL is not set and FLEUTANBEAT_REQUIRE_OPENSEARCH=1: run through `.ci/opensearch.sh run VERSION DIR -- go test ...` (make test does)", major)
		}
		t.Skipf("no OpenSearch %s.x: set FLEUTANBEAT_OS%s_URL and FLEUTANBEAT_OS%s_VERSION (make test starts one)", major, major, major)
	}
	pid, _ := strconv.Atoi(os.Getenv("FLEUTANBEAT_OS" + major + "_PID"))
	return Server{Major: major, Version: v, URL: strings.TrimRight(u, "/"), PID: pid}
}

// Node is a dedicated OpenSearch a test started, its state in its own
// folder so that a restart keeps the documents and the port.
type Node struct {
	t       testing.TB
	Dir     string
	Version string
	URL     string
	port    string
}

// StartNode starts a node of version on a fresh folder; it is stopped and
// the folder removed when the test ends.
func StartNode(t testing.TB, version, name string) *Node {
	t.Helper()
	dir, err := os.MkdirTemp("", "fleutan-os-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	// The node runs as an unprivileged user, which must reach its folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &Node{t: t, Dir: dir, Version: version}
	t.Cleanup(func() {
		n.Stop()
		_ = os.RemoveAll(dir)
	})
	n.Start()
	return n
}

// Start starts the node; a restart binds the port of the first start.
// The first start takes a range from a random point, so that a node of
// another test package started during this one's outage does not take its
// port.
func (n *Node) Start() {
	n.t.Helper()
	port := n.port
	if port == "" {
		port = fmt.Sprintf("%d-29999", 29300+rand.IntN(600))
	}
	u := strings.TrimRight(script(n.t, "start", n.Version, n.Dir, "-Ehttp.port="+port), "/")
	p := u[strings.LastIndexByte(u, ':')+1:]
	if n.port != "" && p != n.port {
		n.t.Fatalf("node restarted on %s, want port %s", u, n.port)
	}
	n.URL, n.port = u, p
}

// Stop stops the node (SIGTERM); its data stays.
func (n *Node) Stop() {
	n.t.Helper()
	script(n.t, "stop", n.Dir)
}

// script runs .ci/opensearch.sh (FLEUTANBEAT_OS_SCRIPT, exported by its
// run command) and returns its standard output's last line.
func script(t testing.TB, args ...string) string {
	t.Helper()
	s := os.Getenv("FLEUTANBEAT_OS_SCRIPT")
	if s == "" {
		t.Fatal("FLEUTANBEAT_OS_SCRIPT is not set: run through .ci/opensearch.sh run")
	}
	cmd := exec.Command(s, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(s), strings.Join(args, " "), err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
