package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
)

// clusterBenchmarkEvents is the synthetic load of the cluster tests.
const clusterBenchmarkEvents = 200_000

// inputDatasets maps the input types the cluster tests run to their
// datasets: each one's documents are counted against the events that
// input published.
var inputDatasets = map[string]string{
	"flows":     "fleutan.flows",
	"cpu":       "fleutan.cpu",
	"qdisc":     "fleutan.qdisc",
	"benchmark": "fleutan.benchmark",
}

// TestAgentBinaryClusterFailover runs the agent binary against a
// three-node cluster of containers, configured with all three hosts,
// with its real inputs (flows and qdisc of every namespace, a test
// namespace among them, and cpu) and the benchmark input's 200k
// flow-shaped events. While it ships, nodes go away; afterwards every
// dataset holds exactly the events its input published, each _id once,
// nothing undelivered, and /stats shows the connection errors and
// failovers.
func TestAgentBinaryClusterFailover(t *testing.T) {
	nstest.RequireRoot(t)
	cl := estest.StartCluster(t, "agent", 3)
	bin := buildBinary(t)

	// A namespace with a veth pair of two TX queues and a TCP connection
	// on its loopback: flows and qdisc of namespaces: all see it.
	ns := nstest.New(t)
	nstest.VethPair(t, ns, ns, "dca", 2, "10.97.0.1", "10.97.0.2")
	port := namespaceConnection(t, ns)

	// Kills: one node, then the one holding the benchmark stream's
	// primary, then both back.
	t.Run("NodeKills", func(t *testing.T) {
		a := startClusterAgent(t, bin, cl, 2000)
		a.waitAcked(t, 20_000)
		holder := primaryHolderOf(t, cl, a.stream("fleutan.benchmark"), nil)
		first := cl.Nodes[2]
		if first.Name() == holder {
			first = cl.Nodes[1]
		}
		first.Kill()
		firstDown := a.hostWindow(t, first)
		t.Logf("killed %s at %d acked (primary on %s)", first.Name(), a.acked(t), holder)
		a.waitAcked(t, a.acked(t)+20_000)
		holder = primaryHolderOf(t, cl, a.stream("fleutan.benchmark"), first)
		second := cl.Node(holder)
		if second == nil || second == first {
			t.Fatalf("primary holder %q is not a live node", holder)
		}
		second.Kill()
		secondDown := a.hostWindow(t, second)
		t.Logf("killed primary holder %s at %d acked", holder, a.acked(t))
		time.Sleep(10 * time.Second)
		firstDown.end(t)
		secondDown.end(t)
		cl.Resume(first, second)
		t.Logf("both back at %d acked", a.acked(t))
		a.finish(t, port, firstDown, secondDown)
	})

	// A rolling restart: each node in turn killed and brought back,
	// waiting until it is healthy before the next.
	t.Run("RollingRestart", func(t *testing.T) {
		a := startClusterAgent(t, bin, cl, 1500)
		a.waitAcked(t, 20_000)
		var downs []*downtime
		for _, n := range cl.Nodes {
			n.Kill()
			down := a.hostWindow(t, n)
			t.Logf("killed %s at %d acked", n.Name(), a.acked(t))
			time.Sleep(5 * time.Second)
			down.end(t)
			cl.Resume(n)
			t.Logf("%s back at %d acked", n.Name(), a.acked(t))
			downs = append(downs, down)
		}
		a.finish(t, port, downs...)
	})
}

// namespaceConnection opens a TCP connection on ns's loopback, sends 64
// KiB over it and returns the listener's port; both ends stay open until
// the test ends.
func namespaceConnection(t *testing.T, ns *nstest.Netns) int {
	t.Helper()
	lfd := ns.Socket(t, unix.AF_INET, unix.SOCK_STREAM)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	cfd := ns.Socket(t, unix.AF_INET, unix.SOCK_STREAM)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	afd, _, err := unix.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range []int{lfd, cfd, afd} {
		t.Cleanup(func() { unix.Close(fd) })
	}
	buf := make([]byte, 64<<10)
	for sent := 0; sent < len(buf); {
		n, err := unix.Write(cfd, buf[sent:])
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	for got := 0; got < len(buf); {
		n, err := unix.Read(afd, buf)
		if err != nil || n == 0 {
			t.Fatalf("read in the namespace: %d, %v", n, err)
		}
		got += n
	}
	return port
}

// clusterAgent is one run of the agent binary against the cluster.
type clusterAgent struct {
	cmd    *exec.Cmd
	log    *lockedBuffer
	addr   string // the monitoring endpoint
	ns     string // output.elasticsearch.namespace
	cl     *estest.Cluster
	events int
}

func (a *clusterAgent) stream(ds string) string { return "metrics-" + ds + "-" + a.ns }

// startClusterAgent runs the agent with all three hosts, the real inputs
// and clusterBenchmarkEvents benchmark events at eps per second.
func startClusterAgent(t *testing.T, bin string, cl *estest.Cluster, eps int) *clusterAgent {
	t.Helper()
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	a := &clusterAgent{ns: "cluster" + hex.EncodeToString(nb[:]), cl: cl, events: clusterBenchmarkEvents}
	cfg := fmt.Sprintf(`fleutanbeat.inputs:
  - type: flows
    period: 2s
    namespaces: all
  - type: cpu
    period: 2s
  - type: qdisc
    period: 2s
    namespaces: all
  - type: benchmark
    count: %d
    eps: %d
processors:
  - add_host_metadata: ~
queue.mem:
  events: 8192
  flush.timeout: 100ms
http.enabled: true
http.host: 127.0.0.1
http.port: 0
shutdown_timeout: 5m
output.elasticsearch:
  hosts: ["%s"]
  namespace: %s
  worker: 2
  bulk_max_size: 500
  flush_interval: 200ms
  timeout: 10s
  backoff: {init: 100ms, max: 1s}
`, a.events, eps, strings.Join(cl.Hosts(), `", "`), a.ns)
	path := filepath.Join(t.TempDir(), "fleutanbeat.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(bin, "-e", "-c", path, "--path.home", t.TempDir())
	a.log = agentLog(t)
	a.cmd.Stderr = a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(a.log.String(), "\n")
			t.Logf("the agent's last log lines:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Kill()
			a.cmd.Wait()
		}
	})
	a.addr = waitLog(t, a.log, "monitoring endpoint listening", "address", 60*time.Second)
	return a
}

// acked is libbeat.output.events.acked from /stats: events newly stored.
func (a *clusterAgent) acked(t *testing.T) int64 {
	t.Helper()
	v, _ := statsTree(getJSON(t, "http://"+a.addr+"/stats")).get("libbeat.output.events.acked").(float64)
	return int64(v)
}

// waitAcked waits for n acked events; a cluster of three JVMs on a
// loaded machine is slow, so the wait is generous and not a measurement.
func (a *clusterAgent) waitAcked(t *testing.T, n int64) {
	t.Helper()
	waitFor(t, 10*time.Minute, fmt.Sprintf("%d events acked", n), func() bool { return a.acked(t) >= n })
}

// finish waits for the benchmark input to publish all its events, stops
// the agent with SIGTERM and checks the cluster against its final
// counters; killed are the downtimes of the hosts that went away, whose
// connection errors /stats must show.
func (a *clusterAgent) finish(t *testing.T, port int, killed ...*downtime) {
	t.Helper()
	waitLog(t, a.log, "benchmark input: done", "events", 15*time.Minute)
	// Every input past its first period: flows, cpu and qdisc events of
	// this run are in the queue or stored.
	time.Sleep(3 * time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("agent exited with %v", err)
	}
	final := lastLog(t, a.log, "fleutanbeat stopped")
	if final["undelivered"] != float64(0) {
		t.Fatalf("undelivered = %v", final["undelivered"])
	}
	st := statsTree(final["stats"].(map[string]any))
	if d := st.get("pipeline.events.dropped"); d != nil {
		t.Errorf("events dropped: %v", d)
	}
	es := estest.NewClient(t, a.cl.Nodes[0].URL)
	total := 0
	for typ, ds := range inputDatasets {
		published, _ := st.get("input." + typ + ".events").(float64)
		if published == 0 {
			t.Errorf("input %s published nothing", typ)
			continue
		}
		if typ == "benchmark" && published != float64(a.events) {
			t.Errorf("benchmark input published %v, configured %d", published, a.events)
		}
		// Fails on an id stored twice, and unless the distinct ids are
		// exactly the events published.
		_, docs := esEachIDOnce(es, a.stream(ds), int(published))
		total += docs
		t.Logf("%s: %d events published, %d documents, each id once", ds, int(published), docs)
	}
	acked, _ := st.get("libbeat.output.events.acked").(float64)
	dups, _ := st.get("libbeat.output.events.duplicates").(float64)
	if int(acked+dups) != total {
		t.Errorf("acked %v + duplicates %v, %d documents", acked, dups, total)
	}

	// The flow of the test namespace was shipped.
	var res map[string]any
	es.JSON("POST", "/"+a.stream("fleutan.flows")+"/_search", map[string]any{
		"size": 1, "query": map[string]any{"term": map[string]any{"fleutan.flow.local.port": port}},
	}, &res)
	if hits, _ := res["hits"].(map[string]any)["hits"].([]any); len(hits) == 0 {
		t.Errorf("no event of the test namespace's listener on port %d", port)
	}

	// /stats shows the failovers: connection errors of the hosts that
	// went away, and requests moved to another host. (Each host's
	// downtime is checked by hostWindow: a host the client had already
	// set aside after a timed-out request gets no request while it is
	// down, so it need not show an error.)
	failovers, _ := st.get("output.elasticsearch.failovers").(float64)
	errs, _ := st.get("output.elasticsearch.host.connection_errors").(map[string]any)
	reqs, _ := st.get("output.elasticsearch.host.requests").(map[string]any)
	t.Logf("failovers %v, connection errors %v, requests %v, retried %v", failovers, errs, reqs, st.get("output.elasticsearch.events.retried"))
	if failovers == 0 {
		t.Error("no failover counted")
	}
	var killedErrs float64
	for _, d := range killed {
		n, _ := errs[d.host].(float64)
		killedErrs += n
		// A request sent while the host was down may still have been
		// in flight when the downtime ended: its error is counted
		// when it returns, so the final count is compared.
		if d.sent > 0 && n == d.errs {
			t.Errorf("%v requests sent to %s while it was down, no connection error counted", d.sent, d.host)
		}
	}
	if killedErrs == 0 {
		t.Error("no connection error counted for any host that went away")
	}
}

// downtime is a node's time down as /stats saw it: its host's requests
// and connection errors when it was killed, and the requests sent to it
// until it came back.
type downtime struct {
	a              *clusterAgent
	host           string
	requests, errs float64
	sent           float64
}

// hostWindow starts n's downtime, right after it was killed.
func (a *clusterAgent) hostWindow(t *testing.T, n *estest.Node) *downtime {
	t.Helper()
	d := &downtime{a: a, host: strings.TrimPrefix(n.URL, "http://")}
	d.requests, d.errs = a.hostCounts(t, d.host)
	return d
}

// end closes the downtime before the node comes back. (A host the
// client had set aside after a timed-out request gets no request while
// it is down, and then has no error to count.)
func (d *downtime) end(t *testing.T) {
	t.Helper()
	reqs, _ := d.a.hostCounts(t, d.host)
	d.sent = reqs - d.requests
	t.Logf("%s while down: %v requests", d.host, d.sent)
}

// hostCounts reads host's requests and connection errors from /stats.
func (a *clusterAgent) hostCounts(t *testing.T, host string) (requests, errs float64) {
	t.Helper()
	st := statsTree(getJSON(t, "http://"+a.addr+"/stats"))
	r, _ := st.get("output.elasticsearch.host.requests").(map[string]any)
	e, _ := st.get("output.elasticsearch.host.connection_errors").(map[string]any)
	requests, _ = r[host].(float64)
	errs, _ = e[host].(float64)
	return requests, errs
}

// primaryHolderOf is the node holding the primary of stream's write
// index, asked of a node other than skip.
func primaryHolderOf(t *testing.T, cl *estest.Cluster, stream string, skip *estest.Node) string {
	t.Helper()
	for _, n := range cl.Nodes {
		if n == skip {
			continue
		}
		var shards []struct {
			Index, PriRep, State, Node string
		}
		var holder string
		waitFor(t, 5*time.Minute, "a started primary of "+stream, func() bool {
			shards = nil
			estest.NewClient(t, n.URL).JSON("GET", "/_cat/shards?format=json&h=index,prirep,state,node", nil, &shards)
			for _, s := range shards {
				if strings.Contains(s.Index, stream) && s.PriRep == "p" && s.State == "STARTED" {
					holder = s.Node
					return true
				}
			}
			return false
		})
		return holder
	}
	t.Fatal("no node to ask")
	return ""
}

// statsTree reads dotted names out of /stats or the stop line's stats.
type statsTree map[string]any

func (s statsTree) get(name string) any {
	var v any = map[string]any(s)
	for _, k := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
