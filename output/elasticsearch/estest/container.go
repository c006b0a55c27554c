package estest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// esUID is the user the image runs Elasticsearch as; a node's folder is
// handed to it, since the folder is mounted into the container.
const esUID = 1000

// containerStartTimeout bounds a container node's start up to healthy: the
// JVM's start on a loaded 2-core machine, as the script's 180 s.
const containerStartTimeout = 3 * time.Minute

// Image is the Elasticsearch image that .ci/elasticsearch.sh built for the
// run (FLEUTANBEAT_ES_IMAGE) when a Docker engine is there (DOCKER_HOST),
// or "" when nodes run as processes. With FLEUTANBEAT_REQUIRE_DOCKER=1 (set
// by .ci/run) a missing engine fails the test.
func Image(t testing.TB) string {
	t.Helper()
	img := os.Getenv("FLEUTANBEAT_ES_IMAGE")
	if img == "" || os.Getenv("DOCKER_HOST") == "" {
		if os.Getenv("FLEUTANBEAT_REQUIRE_DOCKER") == "1" {
			t.Fatal("FLEUTANBEAT_ES_IMAGE or DOCKER_HOST is not set and FLEUTANBEAT_REQUIRE_DOCKER=1: run through `.ci/docker.sh run -- .ci/elasticsearch.sh run ...`")
		}
		return ""
	}
	return img
}

// startContainer starts the node as a container of img with
// testcontainers-go: the host's network (no bridge; the node binds
// 127.0.0.1 on a free port of its range), the node's settings as
// environment variables, its folder's data/, logs/ and config/ mounted, and
// Docker's health check of the image as the wait.
func (n *Node) startContainer(img string) {
	n.t.Helper()
	// The reaper container (testcontainers/ryuk) comes from a registry
	// this machine cannot reach; the node's cleanup removes the container
	// instead, and .ci/docker.sh removes leftovers with the daemon.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	env := map[string]string{
		"node.name":    filepath.Base(n.Dir),
		"ES_JAVA_OPTS": "-Xms512m -Xmx512m",
		"http.port":    n.httpPort(),
	}
	scheme := "http"
	for _, a := range n.args {
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "-E"), "=")
		if !ok || !strings.HasPrefix(a, "-E") {
			n.t.Fatalf("node setting %q is not -Ekey=value", a)
		}
		env[k] = v
		if k == "xpack.security.http.ssl.enabled" && v == "true" {
			scheme = "https"
		}
	}
	binds := []string{
		filepath.Join(n.Dir, "data") + ":/usr/share/elasticsearch/data",
		filepath.Join(n.Dir, "logs") + ":/usr/share/elasticsearch/logs",
	}
	if _, err := os.Stat(filepath.Join(n.Dir, "config")); err == nil {
		binds = append(binds, filepath.Join(n.Dir, "config")+":/usr/share/elasticsearch/config")
	}
	for _, d := range []string{"data", "logs"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			n.t.Fatal(err)
		}
	}
	ports := filepath.Join(n.Dir, "logs", "http.ports")
	_ = os.Remove(ports)
	if err := chownTree(n.Dir, esUID); err != nil {
		n.t.Fatalf("hand %s to the image's user: %v", n.Dir, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), containerStartTimeout+time.Minute)
	defer cancel()
	// "host" as the default network: without it testcontainers-go creates
	// a bridge network when the engine has none (.ci/docker.sh runs with
	// --bridge=none) and attaches the container to it.
	prov, err := testcontainers.NewDockerProvider(
		testcontainers.WithLogger(tclog.TestLogger(n.t)),
		testcontainers.WithDefaultBridgeNetwork("host"))
	if err != nil {
		n.t.Fatalf("docker provider (DOCKER_HOST=%s): %v", os.Getenv("DOCKER_HOST"), err)
	}
	defer prov.Close()
	req := testcontainers.ContainerRequest{
		Image:  img,
		Name:   fmt.Sprintf("fleutan-es-%s-%d", filepath.Base(n.Dir), rand.Uint32()),
		Env:    env,
		Labels: map[string]string{"fleutanbeat.es.dir": n.Dir},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = "host"
			hc.Binds = binds
		},
	}
	if !n.clustered {
		req.WaitingFor = healthy()
	}
	t0 := time.Now()
	c, err := prov.CreateContainer(ctx, req)
	if err != nil {
		n.t.Fatalf("create container of %s: %v", img, err)
	}
	n.container = c
	if err := c.Start(ctx); err != nil {
		n.t.Fatalf("start container of %s: %v\n%s", img, err, containerLogTail(c))
	}
	n.scheme = scheme
	if n.clustered {
		return // healthy only once a quorum of its cluster runs
	}
	n.readPort()
	n.t.Logf("estest: Elasticsearch %s runs as container %.12s of %s at %s (up in %s)", n.Version, c.GetContainerID(), img, n.URL, time.Since(t0).Round(time.Millisecond))
}

// healthy is the wait for the image's health check.
func healthy() *wait.HealthStrategy {
	return wait.ForHealthCheck().WithStartupTimeout(containerStartTimeout).WithPollInterval(500 * time.Millisecond)
}

// readPort sets URL from the HTTP port the healthy node wrote.
func (n *Node) readPort() {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Dir, "logs", "http.ports"))
	if err != nil {
		n.t.Fatalf("healthy container wrote no port: %v", err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	port := first[strings.LastIndexByte(first, ':')+1:]
	if n.port != "" && port != n.port {
		n.t.Fatalf("node restarted on port %s, want %s", port, n.port)
	}
	n.URL, n.port = n.scheme+"://127.0.0.1:"+port, port
}

// awaitHealthy waits for the image's health check of a started container.
func (n *Node) awaitHealthy() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), containerStartTimeout+time.Minute)
	defer cancel()
	if err := healthy().WaitUntilReady(ctx, n.container); err != nil {
		n.t.Fatalf("node %s not healthy: %v\n%s", n.Name(), err, containerLogTail(n.container))
	}
	n.readPort()
}

// stopContainer stops and removes the container; the data stays in the
// node's folder for the next start.
func (n *Node) stopContainer() {
	n.t.Helper()
	if n.container == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.container.Terminate(ctx, testcontainers.StopTimeout(time.Minute)); err != nil {
		n.t.Errorf("remove container %.12s: %v", n.container.GetContainerID(), err)
	}
	n.container = nil
}

// containerLogTail is the end of the container's output, for a failed start.
func containerLogTail(c testcontainers.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Logs(ctx)
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// chownTree gives dir and everything under it to uid (as group too).
func chownTree(dir string, uid int) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}
