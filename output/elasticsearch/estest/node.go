package estest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"
)

// Node is a dedicated Elasticsearch that a test started, its state in its
// own folder so that a restart keeps the documents: a container of the
// run's image (testcontainers-go) when there is a Docker engine, else a
// process of .ci/elasticsearch.sh.
type Node struct {
	t         testing.TB
	Dir       string
	Version   string
	URL       string
	Image     string // "" for a process
	args      []string
	port      string
	scheme    string
	container testcontainers.Container
	clustered bool // healthy only with its cluster: started without a wait
}

// StartNode starts a node of the run's version on dir (a fresh NodeDir(t,
// name) when dir is ""), with args (-Ekey=value) added to the script's; it
// is stopped and its folder removed when the test ends. Like URL it skips
// without `make test`, or fails with FLEUTANBEAT_REQUIRE_ES=1.
func StartNode(t testing.TB, name, dir string, args ...string) *Node {
	t.Helper()
	n := &Node{t: t, Dir: dir, Version: Version(t), Image: Image(t), args: args}
	if n.Dir == "" {
		n.Dir = NodeDir(t, name)
	}
	t.Cleanup(func() {
		n.Stop()
		_ = os.RemoveAll(n.Dir)
	})
	n.Start()
	return n
}

// Start starts the node, on the port of its first start when there was
// one: clients keep their configured host across an outage.
func (n *Node) Start() {
	n.t.Helper()
	if n.Image != "" {
		n.startContainer(n.Image)
		return
	}
	args := append([]string{"start", n.Version, n.Dir}, n.args...)
	args = append(args, "-Ehttp.port="+n.httpPort())
	u := strings.TrimRight(Script(n.t, args...), "/")
	port := u[strings.LastIndexByte(u, ':')+1:]
	if n.port != "" && port != n.port {
		n.t.Fatalf("node restarted on %s, want port %s", u, n.port)
	}
	n.URL, n.port = u, port
}

// httpPort is the node's http.port setting: the port of its first start,
// or a range for the first. A range binds its lowest free port: a node of
// another test package, started while this one is down for an outage,
// would take its port. Starting the range at a random point keeps
// dedicated nodes apart.
func (n *Node) httpPort() string {
	if n.port != "" {
		return n.port
	}
	return fmt.Sprintf("%d-19999", 19300+rand.IntN(600))
}

// Stop stops the node; its data stays for the next Start.
func (n *Node) Stop() {
	n.t.Helper()
	if n.Image != "" {
		n.stopContainer()
		return
	}
	Script(n.t, "stop", n.Dir)
}

// NodeDir is a fresh state folder under the repository's ignored .es/run
// (t.TempDir is 0700 root-owned, which the unprivileged node cannot enter).
func NodeDir(t testing.TB, name string) string {
	t.Helper()
	root := filepath.Join(repoRoot(t), ".es", "run")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, fmt.Sprintf("%s-%d", name, os.Getpid()))
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Script runs .ci/elasticsearch.sh (FLEUTANBEAT_ES_SCRIPT, which the script
// exports, or the repository's) with args and returns what it printed.
func Script(t testing.TB, args ...string) string {
	t.Helper()
	script := os.Getenv("FLEUTANBEAT_ES_SCRIPT")
	if script == "" {
		script = filepath.Join(repoRoot(t), ".ci", "elasticsearch.sh")
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("elasticsearch.sh %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	t.Logf("elasticsearch.sh %s: %s", args[0], strings.TrimSpace(errb.String()))
	return strings.TrimSpace(out.String())
}

// repoRoot is the folder holding go.mod, above the test's package folder.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}
