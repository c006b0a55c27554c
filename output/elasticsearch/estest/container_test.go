package estest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// TestContainerNodeHostNetworkRestartKeepsData starts a dedicated node as
// a container of the run's image: it is on the host network of an engine
// without bridge networks, answers on 127.0.0.1, is removed by Stop, and
// a second Start on the same folder keeps its port and its document.
func TestContainerNodeHostNetworkRestartKeepsData(t *testing.T) {
	Version(t)
	img := Image(t)
	if img == "" {
		t.Skip("no Docker engine: dedicated nodes are processes (set DOCKER_HOST and FLEUTANBEAT_ES_IMAGE, as .ci/docker.sh run does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prov, err := testcontainers.NewDockerProvider()
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	docker := prov.Client()

	n := StartNode(t, "ctest", "")
	if n.container == nil {
		t.Fatal("StartNode with an image started no container")
	}
	id := n.container.GetContainerID()
	info, err := docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Container.HostConfig.NetworkMode; m != "host" {
		t.Errorf("network mode %q, want host", m)
	}
	if nets := info.Container.NetworkSettings.Networks; len(nets) != 1 || nets["host"] == nil {
		t.Errorf("container networks %v, want only host", keys(nets))
	}
	if info.Container.Config.User != "1000:1000" {
		t.Errorf("runs as %q, want the image's user 1000:1000", info.Container.Config.User)
	}
	nl, err := docker.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, nw := range nl.Items {
		if nw.Driver == "bridge" {
			t.Errorf("engine has bridge network %q: containers must use the host network only", nw.Name)
		}
	}
	if !strings.HasPrefix(n.URL, "http://127.0.0.1:") {
		t.Fatalf("node URL %s is not on 127.0.0.1", n.URL)
	}
	db := NewClient(t, n.URL)
	var nodes struct {
		Nodes map[string]struct {
			HTTP struct {
				BoundAddress []string `json:"bound_address"`
			} `json:"http"`
		} `json:"nodes"`
	}
	db.JSON("GET", "/_nodes/_local/http", nil, &nodes)
	port := n.URL[strings.LastIndexByte(n.URL, ':')+1:]
	for _, nd := range nodes.Nodes {
		if got := strings.Join(nd.HTTP.BoundAddress, ","); got != "127.0.0.1:"+port {
			t.Errorf("HTTP bound to %s, want 127.0.0.1:%s only", got, port)
		}
	}
	db.JSON("PUT", "/kept/_doc/1?refresh=true", map[string]any{"n": 1}, nil)

	url := n.URL
	n.Stop()
	if _, err := docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("container %.12s after Stop: %v, want it removed", id, err)
	}
	n.Start()
	if n.URL != url {
		t.Fatalf("restarted at %s, want %s", n.URL, url)
	}
	if n.container.GetContainerID() == id {
		t.Error("Start after Stop reused the removed container")
	}
	var c struct {
		Count int `json:"count"`
	}
	NewClient(t, n.URL).JSON("GET", "/kept/_count", nil, &c)
	if c.Count != 1 {
		t.Errorf("%d documents after the restart, want the 1 written before", c.Count)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
