package packaging

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
)

// docker runs the Docker CLI on the run's engine (DOCKER_HOST).
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// engineCaps are the capabilities of caps the Docker engine accepts:
// Debian bookworm's docker.io (20.10) predates CAP_BPF and CAP_PERFMON and
// refuses them ("invalid CapAdd: unknown capability"), while Kubernetes
// runtimes give them.
func engineCaps(t *testing.T, image string, caps []string) (known, unknown []string) {
	t.Helper()
	for _, c := range caps {
		out, err := exec.Command("docker", "create", "--cap-add", c, image).CombinedOutput()
		id := strings.TrimSpace(string(out))
		switch {
		case err == nil:
			exec.Command("docker", "rm", id).Run()
			known = append(known, c)
		case strings.Contains(string(out), "unknown capability"):
			unknown = append(unknown, c)
		default:
			t.Fatalf("docker create --cap-add %s: %v\n%s", c, err, out)
		}
	}
	return known, unknown
}

// dockerRunArgs are the docker run flags that run the image as Run says.
func dockerRunArgs(r ContainerRun) []string {
	var a []string
	if r.HostNetwork {
		a = append(a, "--network", "host")
	}
	if r.HostPID {
		a = append(a, "--pid", "host")
	}
	a = append(a, "--user", fmt.Sprintf("%d:%d", r.UID, r.UID), "--cap-drop", "ALL")
	for _, c := range r.CapAdd {
		a = append(a, "--cap-add", c)
	}
	if r.ReadOnlyRoot {
		a = append(a, "--read-only")
	}
	if r.NoNewPrivileges {
		a = append(a, "--security-opt", "no-new-privileges")
	}
	for _, m := range r.HostMounts {
		v := m.HostPath + ":" + m.Path
		if m.ReadOnly {
			v += ":ro"
		}
		a = append(a, "-v", v)
	}
	return a
}

// TestImageRunsAsTheDaemonSetDoes builds the image FROM scratch and runs it
// as Run says (the DaemonSet's way: host network and pid namespace, uid 0
// with only the README's capabilities, the host's /proc and /sys
// read-only under /hostfs, --hostfs /hostfs), shipping to the run's
// containerised Elasticsearch. It must attribute this test's TCP flow to
// this test's host pid, report every core of the host and a veth with mq
// the test made in the host's namespace, and stop on docker stop with
// exit 0 and nothing undelivered.
func TestImageRunsAsTheDaemonSetDoes(t *testing.T) {
	nstest.RequireRoot(t)
	base := estest.URL(t)
	if estest.Image(t) == "" {
		t.Skip("no Docker engine (DOCKER_HOST): run under .ci/docker.sh run")
	}
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	suffix := hex.EncodeToString(nb[:])
	tag := "fleutanbeat:test-" + suffix
	t0 := time.Now()
	if out, err := exec.Command("sh", "build-image.sh", buildBinary(t), tag).CombinedOutput(); err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	t.Logf("image %s built in %s", tag, time.Since(t0).Round(time.Millisecond))

	// A TCP flow of this process on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
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

	// A veth with four TX queues and mq in the host's namespace, its peer
	// in a test namespace; down and without addresses, so it carries
	// nothing.
	peerNS := nstest.New(t)
	dev := "fbi" + suffix[:6]
	nstest.Cmd(t, "ip", "link", "add", dev, "numtxqueues", "4", "type", "veth", "peer", "name", dev+"p", "netns", peerNS.Name)
	t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
	nstest.Cmd(t, "tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "mq")

	ns := "image" + suffix
	cfg := fmt.Sprintf(`fleutanbeat.inputs:
  - type: flows
    period: 1s
  - type: cpu
    period: 1s
  - type: qdisc
    period: 1s
processors:
  - add_host_metadata: ~
shutdown_timeout: 30s
output.elasticsearch:
  hosts: ["%s"]
  namespace: %s
  flush_interval: 200ms
`, base, ns)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "fleutanbeat.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	name := "fleutanbeat-test-" + suffix
	run := Run
	var missing []string
	run.CapAdd, missing = engineCaps(t, tag, Run.CapAdd)
	if len(missing) > 0 {
		t.Logf("the Docker engine (%s) does not know %v: the agent runs without them and must say so", docker(t, "version", "-f", "{{.Server.Version}}"), missing)
	}
	args := append([]string{"run", "-d", "--name", name}, dockerRunArgs(run)...)
	args = append(args, "-v", cfgPath+":"+Run.ConfigPath+":ro", "-v", data+":"+Run.DataPath, tag)
	args = append(args, Run.Args...)
	docker(t, args...)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	logs := func() string {
		out, _ := exec.Command("docker", "logs", name).CombinedOutput()
		return string(out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("the agent's log:\n%s", logs())
		}
	}()

	es := estest.NewClient(t, base)
	search := func(ds string, query map[string]any, extra map[string]any) map[string]any {
		stream := "metrics-" + ds + "-" + ns
		if st, _ := es.Do("POST", "/"+stream+"/_refresh", nil); st != 200 {
			return nil
		}
		body := map[string]any{"size": 1, "query": query}
		for k, v := range extra {
			body[k] = v
		}
		st, b := es.Do("POST", "/"+stream+"/_search", body)
		if st != 200 {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	hitSource := func(m map[string]any) map[string]any {
		outer, _ := m["hits"].(map[string]any)
		hits, _ := outer["hits"].([]any)
		if len(hits) == 0 {
			return nil
		}
		return hits[0].(map[string]any)["_source"].(map[string]any)
	}
	term := func(kv ...any) map[string]any {
		var f []any
		for i := 0; i < len(kv); i += 2 {
			f = append(f, map[string]any{"term": map[string]any{kv[i].(string): kv[i+1]}})
		}
		return map[string]any{"bool": map[string]any{"filter": f}}
	}

	// The flow, attributed to this process by its host pid.
	var flow map[string]any
	waitUntil(t, 3*time.Minute, "this test's flow in Elasticsearch", func() bool {
		flow = hitSource(search("fleutan.flows", term("fleutan.flow.remote.port", port, "network.direction", "egress"), nil))
		return flow != nil
	})
	proc, _ := flow["process"].(map[string]any)
	if proc["pid"] != float64(os.Getpid()) {
		t.Errorf("flow to port %d has process %v, want this test's host pid %d", port, proc, os.Getpid())
	}

	// Every core of the host.
	cores := hostCores(t)
	var got int
	waitUntil(t, 2*time.Minute, fmt.Sprintf("core events of all %d host cores", cores), func() bool {
		m := search("fleutan.cpu", term("fleutan.cpu.scope", "core"), map[string]any{
			"size": 0, "aggs": map[string]any{"cores": map[string]any{"terms": map[string]any{"field": "fleutan.cpu.core", "size": 4096}}},
		})
		if m == nil {
			return false
		}
		aggs, _ := m["aggregations"].(map[string]any)
		agg, _ := aggs["cores"].(map[string]any)
		buckets, _ := agg["buckets"].([]any)
		got = len(buckets)
		return got >= cores
	})
	if got != cores {
		t.Errorf("core events of %d cores, the host has %d", got, cores)
	}

	// The host's veth with its mq root.
	var q map[string]any
	waitUntil(t, 2*time.Minute, "the mq root of "+dev, func() bool {
		q = hitSource(search("fleutan.qdisc", term("fleutan.qdisc.device", dev, "fleutan.qdisc.kind", "mq", "fleutan.qdisc.scope", "qdisc"), nil))
		return q != nil
	})
	if qd := q["fleutan"].(map[string]any)["qdisc"].(map[string]any); qd["device_tx_queues"] != float64(4) || qd["handle"] != "1:" {
		t.Errorf("qdisc of %s: %v, want mq 1: over 4 TX queues", dev, qd)
	}

	// docker stop: SIGTERM, the agent delivers what it holds and exits 0.
	docker(t, "stop", "-t", "60", name)
	if code := docker(t, "inspect", "-f", "{{.State.ExitCode}}", name); code != "0" {
		t.Errorf("exit code %s after docker stop", code)
	}
	var stopped map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(bytes.TrimSpace(sc.Bytes()), &m) == nil && m["msg"] == "fleutanbeat stopped" {
			stopped = m
		}
	}
	if stopped == nil {
		t.Fatal("no \"fleutanbeat stopped\" line after docker stop")
	}
	if stopped["undelivered"] != float64(0) {
		t.Errorf("undelivered = %v after docker stop", stopped["undelivered"])
	}
	// A capability the engine could not give costs only its feature, with
	// the inputs' log lines naming it; process attribution (SYS_PTRACE,
	// DAC_READ_SEARCH, asserted above) is unaffected.
	log := logs()
	for _, c := range missing {
		if !strings.Contains(log, "CAP_"+c+", which the agent lacks") && !strings.Contains(log, "CAP_"+c+",") {
			t.Errorf("the log does not name the missing CAP_%s", c)
		}
	}
	if len(missing) == 0 && strings.Contains(log, "which the agent lacks") {
		t.Errorf("with every capability of Run the agent still lacks one")
	}
}

// hostCores is the number of cores in the host's /proc/stat.
func hostCores(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f, _, _ := strings.Cut(line, " "); strings.HasPrefix(f, "cpu") && len(f) > 3 {
			if _, err := strconv.Atoi(f[3:]); err == nil {
				n++
			}
		}
	}
	return n
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
