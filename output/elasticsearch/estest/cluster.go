package estest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Cluster is a cluster of dedicated nodes, each a container of the run's
// image on the host network, on ports fixed at the start so that a node
// brought back after a kill rejoins where its peers and clients expect it.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// StartCluster starts size master-eligible data nodes that form one
// cluster, and returns once every one is healthy; they are removed when
// the test ends. Clusters need the Docker engine: without it the test
// skips (or fails under FLEUTANBEAT_REQUIRE_DOCKER=1).
func StartCluster(t testing.TB, name string, size int) *Cluster {
	t.Helper()
	version := Version(t)
	img := Image(t)
	if img == "" {
		t.Skip("no Docker engine: clusters run only as containers (set DOCKER_HOST and FLEUTANBEAT_ES_IMAGE, as .ci/docker.sh run does)")
	}
	lockCluster(t)
	httpPorts, transportPorts := freePorts(t, 19300, size), freePorts(t, 29300, size)
	var names, seeds []string
	c := &Cluster{t: t}
	for i := range size {
		n := &Node{t: t, Dir: NodeDir(t, fmt.Sprintf("%s%d", name, i)), Version: version, Image: img, clustered: true}
		names = append(names, filepath.Base(n.Dir))
		seeds = append(seeds, "127.0.0.1:"+strconv.Itoa(transportPorts[i]))
		c.Nodes = append(c.Nodes, n)
		t.Cleanup(n.Stop)
	}
	cluster := fmt.Sprintf("%s-%d", name, rand.Uint32())
	for i, n := range c.Nodes {
		n.args = []string{
			"-Ehttp.port=" + strconv.Itoa(httpPorts[i]),
			"-Etransport.port=" + strconv.Itoa(transportPorts[i]),
			"-Ecluster.name=" + cluster,
			"-Ediscovery.seed_hosts=" + strings.Join(seeds, ","),
			"-Ecluster.initial_master_nodes=" + strings.Join(names, ","),
		}
		n.startContainer(img)
	}
	t0 := time.Now()
	for _, n := range c.Nodes {
		n.awaitHealthy()
	}
	t.Logf("estest: cluster %s of %d containers of %s healthy in %s: %s", cluster, size, img, time.Since(t0).Round(time.Millisecond), strings.Join(c.Hosts(), " "))
	return c
}

// Hosts are the nodes' URLs.
func (c *Cluster) Hosts() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.URL)
	}
	return out
}

// Node is the node whose name (node.name, as the cluster APIs report it)
// is name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// Name is the node's node.name.
func (n *Node) Name() string { return filepath.Base(n.Dir) }

// Kill sends the node's container SIGKILL (docker kill): no shutdown, the
// container and its data stay for Resume.
func (n *Node) Kill() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prov, err := testcontainers.NewDockerProvider()
	if err != nil {
		n.t.Fatal(err)
	}
	defer prov.Close()
	if _, err := prov.Client().ContainerKill(ctx, n.container.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		n.t.Fatalf("docker kill %s: %v", n.Name(), err)
	}
}

// Resume starts the killed nodes' containers again, on the same ports and
// data, and waits until each is healthy. They start together: when every
// copy of a shard was on them, none is healthy (yellow) before all are back.
func (c *Cluster) Resume(nodes ...*Node) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), containerStartTimeout+time.Minute)
	defer cancel()
	for _, n := range nodes {
		if err := n.container.Start(ctx); err != nil {
			c.t.Fatalf("start %s again: %v", n.Name(), err)
		}
	}
	for _, n := range nodes {
		n.awaitHealthy()
	}
}

// lockCluster holds a lock of the checkout until the test ends, so that
// the cluster tests of different packages, which go test runs in
// parallel, start their clusters one after another: two clusters of
// three JVMs at once on a small machine starve each other's health
// checks.
func lockCluster(t testing.TB) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), ".es", "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "cluster.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", f.Name(), err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Logf("estest: waited %s for another test's cluster to go", d.Round(time.Second))
	}
	t.Cleanup(func() { f.Close() })
}

// freePorts are n ports of 127.0.0.1 that nothing listens on now, from a
// random point of [from, from+600): a node's ports must be known before
// it starts, as its peers list them.
func freePorts(t testing.TB, from, n int) []int {
	t.Helper()
	var out []int
	for p := from + rand.IntN(600); len(out) < n; p++ {
		if p >= from+700 {
			t.Fatalf("no %d free ports from %d", n, from)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	return out
}
