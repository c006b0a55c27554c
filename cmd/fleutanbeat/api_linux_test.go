package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/pyvenv"
	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"
)

// The query API's end-to-end tests run the agent built from this tree in a
// network namespace of their own, with helper processes (this test binary
// under the names apisrv and apicli) holding known sockets there, and read
// the API over a unix socket (no flows of its own) or over 127.0.0.1
// inside the namespace (schemathesis).

// Ports and addresses of the scenario, all inside the test's namespace.
const (
	apiPort4   = 7001 // apisrv's IPv4 listener, 127.0.0.1
	apiPort6   = 7002 // apisrv's IPv6 listener, ::1
	apiUDPPort = 7003 // apiudp's datagrams to apiVethPeer
	apiCliAddr = "127.0.0.2"
	// apiVethPeer is the far end of a 2-queue veth whose peer drops every
	// frame: datagrams to it pass the mq qdisc and its TX queues.
	apiVethAddr = "10.77.0.1"
	apiVethPeer = "10.77.0.2"
)

// TestAPIHelperProcess is not a test: the scenario starts this binary as
// its helper processes (FLEUTANBEAT_API_HELPER=srv|cli|udp).
func TestAPIHelperProcess(t *testing.T) {
	role := os.Getenv("FLEUTANBEAT_API_HELPER")
	if role == "" {
		t.Skip("helper process of the query API tests")
	}
	if err := apiHelper(role, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// apiHelper holds the role's sockets, prints "ready", then follows the
// commands on stdin ("write CONN BYTES" and "spin MS" for cli, "send
// COUNT" for udp),
// answering "ok" to each, until stdin closes.
func apiHelper(role string, in io.Reader, out io.Writer) error {
	var conns []net.Conn
	switch role {
	case "srv":
		for _, a := range []struct{ net, addr string }{{"tcp4", fmt.Sprintf("127.0.0.1:%d", apiPort4)}, {"tcp6", fmt.Sprintf("[::1]:%d", apiPort6)}} {
			ln, err := net.Listen(a.net, a.addr)
			if err != nil {
				return err
			}
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go io.Copy(io.Discard, c)
				}
			}()
		}
	case "cli":
		from := &net.TCPAddr{IP: net.ParseIP(apiCliAddr)}
		for _, d := range []struct {
			dialer net.Dialer
			addr   string
		}{
			{net.Dialer{LocalAddr: from}, fmt.Sprintf("127.0.0.1:%d", apiPort4)},
			{net.Dialer{LocalAddr: from}, fmt.Sprintf("127.0.0.1:%d", apiPort4)},
			{net.Dialer{}, fmt.Sprintf("[::1]:%d", apiPort6)},
		} {
			c, err := d.dialer.Dial("tcp", d.addr)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
	case "udp":
		c, err := net.Dial("udp4", net.JoinHostPort(apiVethPeer, strconv.Itoa(apiUDPPort)))
		if err != nil {
			return err
		}
		conns = append(conns, c)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	fmt.Fprintln(out, "ready")
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "write":
			i, _ := strconv.Atoi(f[1])
			n, _ := strconv.Atoi(f[2])
			if i < 0 || i >= len(conns) {
				return fmt.Errorf("no connection %d", i)
			}
			if _, err := conns[i].Write(make([]byte, n)); err != nil {
				return err
			}
		case len(f) == 2 && f[0] == "spin":
			ms, _ := strconv.Atoi(f[1])
			for end := time.Now().Add(time.Duration(ms) * time.Millisecond); time.Now().Before(end); {
			}
		case len(f) == 2 && f[0] == "send":
			n, _ := strconv.Atoi(f[1])
			for range n {
				if _, err := conns[0].Write(make([]byte, 1000)); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		fmt.Fprintln(out, "ok")
	}
	return sc.Err()
}

// apiHelperProc is a running helper process.
type apiHelperProc struct {
	pid   int
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// do sends one command and waits for its "ok".
func (h *apiHelperProc) do(t *testing.T, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(h.stdin, cmd); err != nil {
		t.Fatal(err)
	}
	if !h.out.Scan() || h.out.Text() != "ok" {
		t.Fatalf("helper %d: %q answered %q (%v)", h.pid, cmd, h.out.Text(), h.out.Err())
	}
}

// startAPIHelper starts the test binary in ns under the name role's
// command name (apisrv, apicli, apiudp: what /proc/PID/comm shows) and
// waits for its sockets.
func startAPIHelper(t *testing.T, ns *nstest.Netns, role string) *apiHelperProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// comm is the name the binary was executed under: a symlink names it.
	link := filepath.Join(t.TempDir(), "api"+role)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	args := []string{link, "-test.run=^TestAPIHelperProcess$"}
	if role == "cli" {
		// On core 0 only, every thread: its core distribution is exact.
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	cmd := ns.Command(args...)
	cmd.Env = append(os.Environ(), "FLEUTANBEAT_API_HELPER="+role)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	h := &apiHelperProc{pid: cmd.Process.Pid, stdin: stdin, out: bufio.NewScanner(stdout)}
	if !h.out.Scan() || h.out.Text() != "ready" {
		t.Fatalf("helper %s did not get ready: %q %v", role, h.out.Text(), h.out.Err())
	}
	return h
}

// apiScenario is a namespace with the helpers' sockets: apisrv listens on
// 127.0.0.1:7001 and [::1]:7002; apicli holds two connections from
// 127.0.0.2 to 7001 and one from ::1 to 7002 (connections 0, 1, 2).
type apiScenario struct {
	ns       *nstest.Netns
	srv, cli *apiHelperProc
	udp      *apiHelperProc // with a veth: datagrams through its mq qdisc
}

func startAPIScenario(t *testing.T, veth bool) *apiScenario {
	t.Helper()
	nstest.RequireRoot(t)
	s := &apiScenario{ns: nstest.New(t)}
	s.ns.Run(t, "ip", "addr", "add", apiCliAddr+"/8", "dev", "lo")
	if veth {
		// A 2-queue veth pair in the namespace, IPv6 off on it so no
		// neighbour discovery crosses it, and a permanent neighbour for
		// the peer address with a MAC nobody owns: the datagrams leave
		// through the mq qdisc and are dropped by the peer.
		s.ns.Run(t, "ip", "link", "add", "apiq0", "numtxqueues", "2", "numrxqueues", "2", "type", "veth", "peer", "name", "apiq0p")
		for _, dev := range []string{"apiq0", "apiq0p"} {
			s.ns.Run(t, "sysctl", "-qw", "net.ipv6.conf."+dev+".disable_ipv6=1")
		}
		s.ns.Run(t, "ip", "addr", "add", apiVethAddr+"/24", "dev", "apiq0")
		s.ns.Run(t, "ip", "link", "set", "apiq0", "up")
		s.ns.Run(t, "ip", "link", "set", "apiq0p", "up")
		s.ns.Run(t, "tc", "qdisc", "replace", "dev", "apiq0", "root", "handle", "1:", "mq")
		s.ns.Run(t, "ip", "neigh", "replace", apiVethPeer, "lladdr", "02:00:00:00:00:02", "dev", "apiq0", "nud", "permanent")
	}
	s.srv = startAPIHelper(t, s.ns, "srv")
	s.cli = startAPIHelper(t, s.ns, "cli")
	if veth {
		s.udp = startAPIHelper(t, s.ns, "udp")
	}
	return s
}

// apiAgent is the agent running in the scenario's namespace.
type apiAgent struct {
	base   string // http://127.0.0.1:PORT (inside the namespace) or http://fleutanbeat (socket)
	client *http.Client
	log    *lockedBuffer
}

// startAPIAgent runs the agent binary in ns with the shipped config, its
// three inputs and an rdma input every second, and the API on host (127.0.0.1 or
// unix:///...), and waits until every input has collected once.
func startAPIAgent(t *testing.T, ns *nstest.Netns, host string) *apiAgent {
	t.Helper()
	bin := buildBinary(t)
	home := t.TempDir()
	cmd := ns.Command(bin, "-e", "-c", shippedConfig(t), "--path.home", home,
		"-E", "http.enabled=true", "-E", "http.api.enabled=true", "-E", "http.port=0", "-E", "http.host="+host,
		"-E", "fleutanbeat.inputs.0.period=1s", "-E", "fleutanbeat.inputs.1.period=1s",
		"-E", "fleutanbeat.inputs.2.period=1s", "-E", "fleutanbeat.inputs.3.type=rdma", "-E", "fleutanbeat.inputs.3.period=1s",
		"-E", "queue.mem.flush.timeout=100ms")
	a := &apiAgent{log: agentLog(t), client: &http.Client{Timeout: 10 * time.Second}}
	cmd.Stderr = a.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := waitLog(t, a.log, "monitoring endpoint listening", "address", 30*time.Second)
	if sock, ok := strings.CutPrefix(host, unixPrefix); ok {
		a.base = "http://fleutanbeat"
		a.client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
	} else {
		// The agent listens inside the namespace: dial there.
		a.base = "http://" + addr
		a.client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, address string) (net.Conn, error) {
			return dialInNetns(t, ns, address)
		}}
	}
	for _, p := range apiCollectionPaths {
		waitFor(t, 30*time.Second, "first collection behind "+p, func() bool {
			code, _ := a.get(t, p)
			return code == http.StatusOK
		})
	}
	return a
}

// apiCollectionPaths are the endpoints that answer 503 until their input's
// first collection.
var apiCollectionPaths = []string{"/api/v1/flows", "/api/v1/cpu", "/api/v1/qdisc", "/api/v1/rdma"}

// get returns the status and body of GET base+path.
func (a *apiAgent) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := a.client.Get(a.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// getJSON decodes a 200 answer into v.
func (a *apiAgent) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, b := a.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// TestQueryAPIConformsToSpec runs schemathesis's stateless checks (every
// check: status codes, content types, headers and bodies against
// openapi.yaml, bad parameters rejected with 4xx, never a 5xx) against
// the agent, with real flows, cpu, qdisc and rdma collections behind it.
func TestQueryAPIConformsToSpec(t *testing.T) {
	py := pyvenv.Interpreter(t, "schemathesis")
	st := filepath.Join(filepath.Dir(py), "schemathesis")
	s := startAPIScenario(t, true)
	a := startAPIAgent(t, s.ns, "127.0.0.1")
	s.cli.do(t, "write 0 100000")
	s.udp.do(t, "send 50")
	specPath, err := filepath.Abs("queryapi/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Half of the generated pids, ports, names and peers are the
	// scenario's, so that the answers checked include full ones (a
	// process with flows and CPU time, filters that match), not only
	// 404s and empty lists.
	dir := t.TempDir()
	conf := filepath.Join(dir, "schemathesis.toml")
	pids := fmt.Sprintf("%d, %d, %d", s.srv.pid, s.cli.pid, s.udp.pid)
	if err := os.WriteFile(conf, []byte(`[dictionaries.pids]
values = [`+pids+`]
[dictionaries.names]
values = ["apisrv", "apicli", "apiudp"]
[dictionaries.ports]
values = [7001, 7002, 7003]
[dictionaries.peers]
values = ["127.0.0.0/8", "127.0.0.2", "::1", "10.77.0.0/24"]
[parameters]
"path.pid" = { dictionary = "pids", probability = 0.5 }
"query.pid" = { dictionary = "pids", probability = 0.5 }
"query.process" = { dictionary = "names", probability = 0.5 }
"query.port" = { dictionary = "ports", probability = 0.5 }
"query.peer" = { dictionary = "peers", probability = 0.5 }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := s.ns.Command(st, "--config-file", conf, "run", specPath, "--url", a.base,
		"--checks", "all", "--phases", "examples,coverage,fuzzing",
		"--max-examples", "50", "--seed", "1", "--workers", "1",
		"--request-timeout", "10", "--suppress-health-check", "too_slow",
		"--report", "junit", "--report-dir", dir)
	// schemathesis keeps a cache of crashes in its working directory: the
	// test's own, not the source tree.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "SCHEMATHESIS_HOOKS=")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("schemathesis ran %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("schemathesis: %v\n%s", err, out)
	}
	// A run that tested nothing would pass too: it must have tested every
	// operation of the spec.
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	ops := 0
	for _, p := range doc.Paths {
		ops += len(p)
	}
	m := regexp.MustCompile(`(?m)^\s*Tested: (\d+)$`).FindSubmatch(out)
	if m == nil || string(m[1]) != strconv.Itoa(ops) {
		t.Fatalf("schemathesis did not test all %d operations of the spec:\n%s", ops, out)
	}
	t.Logf("%s", out)
}

// dialInNetns opens a TCP connection to an IPv4 address:port from inside
// ns: a socket created there, connected and wrapped as a net.Conn.
func dialInNetns(t *testing.T, ns *nstest.Netns, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("dial in namespace: %q is not an IPv4 address and port", address)
	}
	// nstest.Socket reports through a testing.TB; the transport dials on
	// its own goroutine, where a test must not fail, so it reports here.
	tb := &errTB{TB: t}
	fd := ns.Socket(tb, unix.AF_INET, unix.SOCK_STREAM)
	if tb.err != nil {
		return nil, tb.err
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dial in namespace %s: connect %s: %w", ns.Name, address, err)
	}
	f := os.NewFile(uintptr(fd), "api")
	defer f.Close()
	return net.FileConn(f)
}

// errTB keeps the error of a helper that would fail the test.
type errTB struct {
	testing.TB
	err error
}

func (e *errTB) Helper() {}
func (e *errTB) Fatalf(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

// apiFlowsDoc is the part of GET /api/v1/flows the tests read.
type apiFlowsDoc struct {
	Time         time.Time  `json:"time"`
	PreviousTime *time.Time `json:"previous_time"`
	Flows        []apiFlow  `json:"flows"`
}

type apiFlow struct {
	Flow struct {
		Local, Remote, Direction string
		Process                  *struct {
			PID  int    `json:"pid"`
			Name string `json:"name"`
		} `json:"process"`
	} `json:"flow"`
	Delta *struct {
		BytesIn  uint64 `json:"bytes_in"`
		BytesOut uint64 `json:"bytes_out"`
	} `json:"delta"`
}

// TestQueryAPIFlowsFilters reads the flows of a namespace whose sockets
// the test made, through the API on a unix socket, and checks each filter
// and their combinations by the exact number of flows, the delta of a
// connection that sent a known number of bytes in one period, and a
// process's flows and core distribution.
// TestQueryAPIRDMAWithoutRDMA: on a host without RDMA (the test host's
// kernel has no NETLINK_RDMA) the rdma input's collections are empty and
// /api/v1/rdma says so with empty lists, as the other endpoints do
// without data, and the agent logs the absence once.
func TestQueryAPIRDMAWithoutRDMA(t *testing.T) {
	if ents, _ := os.ReadDir("/sys/class/infiniband"); len(ents) > 0 {
		t.Skipf("this host has RDMA devices (%d in /sys/class/infiniband)", len(ents))
	}
	s := startAPIScenario(t, false)
	a := startAPIAgent(t, s.ns, "127.0.0.1")
	var d struct {
		PreviousTime *time.Time       `json:"previous_time"`
		Devices      []map[string]any `json:"devices"`
		QueuePairs   []map[string]any `json:"queue_pairs"`
		Ports        []map[string]any `json:"ports"`
		CMIDs        []map[string]any `json:"cm_ids"`
	}
	waitFor(t, 10*time.Second, "a second rdma collection", func() bool {
		a.getJSON(t, "/api/v1/rdma", &d)
		return d.PreviousTime != nil
	})
	if d.Devices == nil || d.QueuePairs == nil || d.Ports == nil || d.CMIDs == nil ||
		len(d.Devices)+len(d.QueuePairs)+len(d.Ports)+len(d.CMIDs) != 0 {
		t.Errorf("/api/v1/rdma without RDMA: %+v, want empty lists", d)
	}
	if n := strings.Count(a.log.String(), "rdma: no RDMA"); n != 1 {
		t.Errorf("%d log lines about RDMA missing, want 1:\n%s", n, a.log.String())
	}
}

func TestQueryAPIFlowsFilters(t *testing.T) {
	s := startAPIScenario(t, false)
	a := startAPIAgent(t, s.ns, "unix://"+filepath.Join(t.TempDir(), "api.sock"))
	srv, cli := strconv.Itoa(s.srv.pid), strconv.Itoa(s.cli.pid)
	// Every socket of the scenario is in a collection.
	waitFor(t, 15*time.Second, "the scenario's 8 flows", func() bool {
		var d apiFlowsDoc
		a.getJSON(t, "/api/v1/flows", &d)
		return len(d.Flows) == 8
	})
	tests := []struct {
		query string
		want  int
	}{
		{"", 8}, // 2 listeners, 3 accepted, 3 connected
		{"pid=" + srv, 5},
		{"pid=" + cli, 3},
		{"pid=1", 0},
		{"process=apisrv", 5},
		{"process=apicli", 3},
		{"process=apicl", 0}, // exact names only
		{"port=7001", 5},     // the listener, 2 accepted, 2 connected
		{"port=7002", 3},
		{"port=7003", 0},
		{"peer=127.0.0.2/32", 2}, // accepted from apicli's IPv4 connections
		{"peer=127.0.0.2", 2},
		{"peer=127.0.0.0/8", 4}, // and apicli's connections to 127.0.0.1:7001
		{"peer=0.0.0.0/0", 4},   // listeners have no peer
		{"peer=::1", 2},
		{"peer=::/0", 2},
		{"peer=10.0.0.0/8", 0},
		{"pid=" + cli + "&port=7001", 2},
		{"process=apisrv&peer=::1/128", 1},
		{"pid=" + cli + "&peer=::1", 1},
		{"process=apisrv&port=7002&peer=127.0.0.0/8", 0},
		{"pid=" + srv + "&process=apicli", 0},
	}
	for _, tt := range tests {
		var d apiFlowsDoc
		a.getJSON(t, "/api/v1/flows?"+tt.query, &d)
		if len(d.Flows) != tt.want {
			t.Errorf("flows?%s: %d flows, want %d: %+v", tt.query, len(d.Flows), tt.want, d.Flows)
		}
	}

	// One period's delta: 1000 bytes on apicli's first connection, with no
	// collection starting while they are sent.
	for attempt := 1; ; attempt++ {
		before := time.Now()
		s.cli.do(t, "write 0 1000")
		time.Sleep(200 * time.Millisecond) // loopback acknowledges at once
		after := time.Now()
		var d apiFlowsDoc
		waitFor(t, 10*time.Second, "a collection after the write", func() bool {
			a.getJSON(t, "/api/v1/flows?pid="+cli+"&port=7001", &d)
			return d.Time.After(after)
		})
		if d.PreviousTime == nil || d.PreviousTime.After(before) {
			if attempt == 3 {
				t.Fatalf("no collection period spanned the write in 3 attempts")
			}
			continue // a collection ran during the write: again
		}
		var sent []uint64
		for _, f := range d.Flows {
			if f.Delta != nil {
				sent = append(sent, f.Delta.BytesOut)
			}
		}
		slices.Sort(sent)
		if !slices.Equal(sent, []uint64{0, 1000}) {
			t.Errorf("apicli's connections to 7001 sent %v in the period, want [0 1000]: %+v", sent, d.Flows)
		}
		break
	}

	// The process: its flows and its core distribution (core 0 only, as
	// taskset pinned it) once it used CPU in a period.
	for i := 0; i < 3; i++ {
		s.cli.do(t, "spin 300")
	}
	var p struct {
		Process struct {
			PID  int    `json:"pid"`
			Name string `json:"name"`
		} `json:"process"`
		Flows []apiFlow `json:"flows"`
		CPU   *struct {
			CoresUsed    int `json:"cores_used"`
			DominantCore int `json:"dominant_core"`
			PerCore      []struct {
				Core  int     `json:"core"`
				Share float64 `json:"share"`
			} `json:"per_core"`
		} `json:"cpu"`
	}
	waitFor(t, 10*time.Second, "apicli's cpu usage", func() bool {
		a.getJSON(t, "/api/v1/processes/"+cli, &p)
		return p.CPU != nil
	})
	if p.Process.PID != s.cli.pid || p.Process.Name != "apicli" || len(p.Flows) != 3 {
		t.Errorf("processes/%s: process %+v with %d flows, want apicli with 3", cli, p.Process, len(p.Flows))
	}
	if c := p.CPU; c.CoresUsed != 1 || c.DominantCore != 0 || len(c.PerCore) != 1 || c.PerCore[0].Core != 0 || c.PerCore[0].Share != 1 {
		t.Errorf("processes/%s: cpu %+v, want core 0 only", cli, *c)
	}
	for path, want := range map[string]int{
		"/api/v1/processes/4194304": http.StatusNotFound,
		"/api/v1/processes/abc":     http.StatusBadRequest,
		"/api/v1/flows?port=70000":  http.StatusBadRequest,
		"/api/v1/flows?peer=1.2.3":  http.StatusBadRequest,
	} {
		if code, body := a.get(t, path); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
}

// TestQueryAPIQdiscQueues sends 50 datagrams of 1000 bytes through the
// scenario's 2-queue mq veth within one collection period and reads
// /api/v1/qdisc: the queues' qdiscs dequeued exactly those frames, and
// the queue flows (eBPF attribution) name the socket and its process.
func TestQueryAPIQdiscQueues(t *testing.T) {
	s := startAPIScenario(t, true)
	a := startAPIAgent(t, s.ns, "unix://"+filepath.Join(t.TempDir(), "api.sock"))
	// A UDP frame on the veth: payload, UDP (8), IPv4 (20) and Ethernet
	// (14) headers.
	const count, frame = 50, 1000 + 8 + 20 + 14
	type doc struct {
		Time         time.Time  `json:"time"`
		PreviousTime *time.Time `json:"previous_time"`
		Queues       []struct {
			Device struct {
				Name     string `json:"name"`
				TxQueues int    `json:"tx_queues"`
			} `json:"device"`
			TxQueue int `json:"tx_queue"`
			Qdisc   *struct {
				Kind string `json:"kind"`
			} `json:"qdisc"`
			Delta *struct {
				Bytes   uint64 `json:"bytes"`
				Packets uint64 `json:"packets"`
			} `json:"delta"`
			Flows []struct {
				Remote  string `json:"remote"`
				Bytes   uint64 `json:"bytes"`
				Packets uint64 `json:"packets"`
				Other   bool   `json:"other"`
				Flow    *struct {
					Process *struct {
						PID  int    `json:"pid"`
						Name string `json:"name"`
					} `json:"process"`
				} `json:"flow"`
			} `json:"flows"`
		} `json:"queues"`
	}
	for attempt := 1; ; attempt++ {
		before := time.Now()
		s.udp.do(t, fmt.Sprintf("send %d", count))
		time.Sleep(200 * time.Millisecond)
		after := time.Now()
		var d doc
		waitFor(t, 10*time.Second, "a qdisc collection after the datagrams", func() bool {
			a.getJSON(t, "/api/v1/qdisc", &d)
			return d.Time.After(after)
		})
		if d.PreviousTime == nil || d.PreviousTime.After(before) {
			if attempt == 3 {
				t.Fatal("no collection period spanned the datagrams in 3 attempts")
			}
			continue
		}
		var queues int
		var qBytes, qPackets, fBytes, fPackets uint64
		for _, q := range d.Queues {
			if q.Device.Name != "apiq0" {
				continue
			}
			queues++
			if q.Qdisc == nil || q.Delta == nil || q.Device.TxQueues != 2 {
				t.Errorf("queue %d of apiq0 without its qdisc or delta: %+v", q.TxQueue, q)
				continue
			}
			qBytes += q.Delta.Bytes
			qPackets += q.Delta.Packets
			for _, f := range q.Flows {
				if f.Other || f.Remote != fmt.Sprintf("%s:%d", apiVethPeer, apiUDPPort) {
					t.Errorf("queue %d carried another flow: %+v", q.TxQueue, f)
					continue
				}
				if f.Flow == nil || f.Flow.Process == nil || f.Flow.Process.PID != s.udp.pid || f.Flow.Process.Name != "apiudp" {
					t.Errorf("queue %d: the flow's socket is not joined with apiudp (%d): %+v", q.TxQueue, s.udp.pid, f.Flow)
				}
				fBytes += f.Bytes
				fPackets += f.Packets
			}
		}
		if queues != 2 || qPackets != count || qBytes != count*frame || fPackets != count || fBytes != count*frame {
			t.Errorf("apiq0: %d queues, qdiscs dequeued %d packets / %d bytes, flows %d / %d; want 2 queues and %d / %d each",
				queues, qPackets, qBytes, fPackets, fBytes, count, count*frame)
		}
		return
	}
}
