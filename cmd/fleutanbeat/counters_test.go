package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ljlog "github.com/elastic/go-lumber/log"
	ljserver "github.com/elastic/go-lumber/server/v2"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
)

// delivery is what an output's destination really received, as the test
// saw it there.
type delivery struct {
	docs []map[string]any // @timestamp and data_stream.dataset at least
	// Bytes the destination read from the agent and wrote to it; -1
	// where the output has no read side.
	written, read int64
	// bulks is the number of bulk requests (Elasticsearch), -1 elsewhere.
	bulks int
}

// outputCase runs one output: args select it, collect returns what its
// destination received once the agent has exited.
type outputCase struct {
	name    string
	args    func(t *testing.T, home string) []string
	stdout  *lockedBuffer
	collect func(t *testing.T, home string) delivery
}

// TestAgentCountersMatchDeliveries runs the built agent with the flows,
// cpu and qdisc inputs and each output in turn (file, console,
// Elasticsearch, Logstash), stops it, and checks every counter of the stop
// summary against what the destination received: events per input and
// collections (one @timestamp per collection), events acked, bytes written
// and read (counted on the other side of the socket), bulk requests, no
// failures; and that the same counters are on /stats, /metrics and the
// periodic "Non-zero metrics" line.
func TestAgentCountersMatchDeliveries(t *testing.T) {
	nstest.RequireRoot(t)
	bin := buildBinary(t)
	cases := []*outputCase{fileCase(), consoleCase(), elasticsearchCase(), logstashCase()}
	for _, oc := range cases {
		t.Run(oc.name, func(t *testing.T) {
			home := t.TempDir()
			args := []string{"-e", "-c", shippedConfig(t), "--path.home", home,
				"-E", "http.enabled=true", "-E", "http.port=0", "-E", "http.host=127.0.0.1",
				"-E", "fleutanbeat.inputs.0.period=1s", "-E", "fleutanbeat.inputs.1.period=1s",
				"-E", "fleutanbeat.inputs.2.period=1s", "-E", "logging.metrics.period=1s",
				"-E", "queue.mem.flush.timeout=100ms", "-E", "shutdown_timeout=30s"}
			args = append(args, oc.args(t, home)...)
			cmd := exec.Command(bin, args...)
			stderr := &lockedBuffer{}
			cmd.Stderr = stderr
			if oc.stdout != nil {
				cmd.Stdout = oc.stdout
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			addr := waitLog(t, stderr, "monitoring endpoint listening", "address", 20*time.Second)

			// Run until every input has completed two periods, a periodic
			// line has counted acked events and nothing is on its way
			// (Elasticsearch may take seconds to create the data streams).
			var stats map[string]any
			waitFor(t, 90*time.Second, "two periods of every input, all delivered", func() bool {
				stats = getJSON(t, "http://"+addr+"/stats")
				for _, in := range []string{"flows", "cpu", "qdisc"} {
					if n, _ := dig(stats, "input."+in+".collections").(float64); n < 2 {
						return false
					}
				}
				for _, key := range []string{"pipeline.queue.events", "pipeline.events.inflight", "libbeat.output.events.active"} {
					if n, _ := dig(stats, key).(float64); n != 0 {
						return false
					}
				}
				for _, l := range logLines(stderr.String()) {
					if _, ok := l["libbeat.output.events.acked"]; ok && l["msg"] == "Non-zero metrics in the last 1s" {
						return true
					}
				}
				return false
			})
			for _, key := range []string{"libbeat.output.events.total", "libbeat.output.events.batches",
				"libbeat.output.write.bytes", "input.flows.events", "input.cpu.events", "input.qdisc.events",
				"input.cpu.errors", "input.qdisc.errors", "input.flows.errors"} {
				if _, ok := dig(stats, key).(float64); !ok {
					t.Errorf("/stats lacks %s", key)
				}
			}
			for key, want := range map[string]string{"libbeat.output.type": oc.name} {
				if got := dig(stats, key); got != want {
					t.Errorf("/stats %s = %v, want %q", key, got, want)
				}
			}
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			prom, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range []string{"fleutanbeat_libbeat_output_events_acked_total ", "fleutanbeat_libbeat_output_write_bytes_total ",
				"fleutanbeat_input_cpu_collections_total ", "fleutanbeat_input_qdisc_events_total ", "fleutanbeat_input_flows_events_total ",
				`fleutanbeat_libbeat_output_type_info{value="` + oc.name + `"} 1`, `fleutanbeat_input_cpu_method_info{value="`,
				`fleutanbeat_input_qdisc_flow_attribution_info{value="`} {
				if !strings.Contains(string(prom), line) {
					t.Errorf("/metrics lacks %q", line)
				}
			}
			checkMetricsAgainstStats(t, "http://"+addr, true)

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := waitExit(cmd, 30*time.Second); err != nil {
				t.Fatalf("agent: %v; log:\n%s", err, stderr.String())
			}
			d := oc.collect(t, home)
			checkCounters(t, stderr, d)
			if t.Failed() {
				for _, l := range logLines(stderr.String()) {
					if l["level"] != "INFO" {
						t.Logf("agent log: %v", l)
					}
				}
			}
		})
	}
}

func waitExit(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("did not stop within %s of SIGTERM", d)
	}
}

// checkCounters compares the stop summary with the delivery and the log.
func checkCounters(t *testing.T, stderr *lockedBuffer, d delivery) {
	t.Helper()
	final := lastLog(t, stderr, "fleutanbeat stopped")
	if final["undelivered"] != float64(0) {
		t.Errorf("undelivered = %v, want 0", final["undelivered"])
	}
	st, _ := final["stats"].(map[string]any)
	num := func(key string) int64 {
		v, ok := dig(st, key).(float64)
		if !ok {
			t.Errorf("stop summary lacks %s", key)
		}
		return int64(v)
	}
	logs := logLines(stderr.String())

	// Inputs: events and collections per dataset, errors as logged.
	perDataset := map[string]int64{}
	stamps := map[string]map[string]bool{}
	for _, doc := range d.docs {
		ds, _ := dig(doc, "data_stream.dataset").(string)
		ts, _ := doc["@timestamp"].(string)
		perDataset[ds]++
		if stamps[ds] == nil {
			stamps[ds] = map[string]bool{}
		}
		stamps[ds][ts] = true
	}
	var inputEvents int64
	for _, in := range []string{"flows", "cpu", "qdisc"} {
		ds := "fleutan." + in
		events := num("input." + in + ".events")
		inputEvents += events
		if events != perDataset[ds] || events == 0 {
			t.Errorf("input.%s.events = %d, destination has %d %s events", in, events, perDataset[ds], ds)
		}
		// Each collection stamps its events with its start; a collection
		// the stop interrupted delivers events without being counted.
		coll := num("input." + in + ".collections")
		if n := int64(len(stamps[ds])); n != coll && n != coll+1 {
			t.Errorf("input.%s.collections = %d, destination has %d distinct @timestamp", in, coll, n)
		}
		var warned int64
		for _, l := range logs {
			msg, _ := l["msg"].(string)
			if l["level"] == "WARN" && strings.HasPrefix(msg, in+": ") && strings.Contains(msg, " failed") {
				warned++
			}
		}
		if got := num("input." + in + ".errors"); got != warned {
			t.Errorf("input.%s.errors = %d, %d failures logged", in, got, warned)
		}
	}
	wantMethod := "sampling"
	attribution := "off"
	for _, l := range logs {
		msg, _ := l["msg"].(string)
		if strings.HasPrefix(msg, "cpu: measuring processes exactly with eBPF") {
			wantMethod = "ebpf"
		}
		if msg == "qdisc: flow attribution by eBPF on net:net_dev_start_xmit" {
			attribution, _ = l["method"].(string)
		}
	}
	if got := dig(st, "input.cpu.method"); got != wantMethod {
		t.Errorf("input.cpu.method = %v, the log says %s", got, wantMethod)
	}
	if got := dig(st, "input.qdisc.flow_attribution"); got != attribution {
		t.Errorf("input.qdisc.flow_attribution = %v, the log says %s", got, attribution)
	}
	if got := num("pipeline.events.published") + num("pipeline.events.filtered"); got != inputEvents {
		t.Errorf("pipeline published+filtered = %d, inputs published %d", got, inputEvents)
	}

	// The output: every event acked once, nothing failed, bytes as seen
	// on the other side.
	acked := num("libbeat.output.events.acked")
	if acked != int64(len(d.docs)) || acked != num("pipeline.events.published") {
		t.Errorf("libbeat.output.events.acked = %d, destination has %d, pipeline published %d", acked, len(d.docs), num("pipeline.events.published"))
	}
	for key, want := range map[string]int64{
		"libbeat.output.events.total": acked, "libbeat.output.events.active": 0,
		"libbeat.output.events.failed": 0, "libbeat.output.events.dropped": 0,
		"libbeat.output.events.duplicates": 0, "libbeat.output.events.dead_letter": 0,
		"libbeat.output.write.errors": 0, "libbeat.output.write.bytes": d.written,
	} {
		if got := num(key); got != want {
			t.Errorf("%s = %d, want %d", key, got, want)
		}
	}
	if d.read >= 0 {
		if got := num("libbeat.output.read.bytes"); got != d.read {
			t.Errorf("libbeat.output.read.bytes = %d, the destination wrote %d", got, d.read)
		}
		if got := num("libbeat.output.read.errors"); got != 0 {
			t.Errorf("libbeat.output.read.errors = %d, want 0", got)
		}
	}
	batches := num("libbeat.output.events.batches")
	// The first batch for a time series data stream is refused for its
	// _ids and its events sent again without them (output/elasticsearch,
	// "Time series data streams"): one more request.
	resends, _ := dig(st, "output.elasticsearch.resends").(float64)
	if d.bulks >= 0 && batches+int64(resends) != int64(d.bulks) {
		t.Errorf("libbeat.output.events.batches = %d and output.elasticsearch.resends = %.0f, Elasticsearch got %d bulk requests", batches, resends, d.bulks)
	}
	if batches < 1 || batches > acked {
		t.Errorf("libbeat.output.events.batches = %d for %d events", batches, acked)
	}
	if sum, mx := num("libbeat.output.write.latency_us.sum"), num("libbeat.output.write.latency_us.max"); mx <= 0 || sum < mx {
		t.Errorf("latency sum %dµs, max %dµs", sum, mx)
	}

	// The periodic line carries the input and output counters that
	// changed, and each text once.
	keys := map[string]bool{}
	for _, l := range logs {
		if l["msg"] == "Non-zero metrics in the last 1s" {
			for k := range l {
				keys[k] = true
			}
		}
	}
	for _, k := range []string{"input.flows.events", "input.cpu.events", "input.qdisc.events", "input.cpu.collections",
		"input.cpu.method", "input.qdisc.flow_attribution", "libbeat.output.type", "libbeat.output.events.acked",
		"libbeat.output.events.batches", "libbeat.output.write.bytes"} {
		if !keys[k] {
			t.Errorf("no periodic metrics line has %s", k)
		}
	}
}

// dig reads a dotted path through nested JSON objects.
func dig(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// ndjsonDocs decodes one JSON document per line.
func ndjsonDocs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %v: %s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

func fileCase() *outputCase {
	return &outputCase{
		name: "file",
		args: func(*testing.T, string) []string { return nil },
		collect: func(t *testing.T, home string) delivery {
			b, err := os.ReadFile(filepath.Join(home, "data", "fleutanbeat.ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			return delivery{docs: ndjsonDocs(t, b), written: int64(len(b)), read: -1, bulks: -1}
		},
	}
}

func consoleCase() *outputCase {
	out := &lockedBuffer{}
	return &outputCase{
		name:   "console",
		stdout: out,
		args: func(*testing.T, string) []string {
			return []string{"-E", "output.file.enabled=false", "-E", "output.console.pretty=false"}
		},
		collect: func(t *testing.T, _ string) delivery {
			b := []byte(out.String())
			return delivery{docs: ndjsonDocs(t, b), written: int64(len(b)), read: -1, bulks: -1}
		},
	}
}

func elasticsearchCase() *outputCase {
	var proxy *countingProxy
	var es *estest.Client
	var ns string
	return &outputCase{
		name: "elasticsearch",
		args: func(t *testing.T, _ string) []string {
			base := estest.URL(t)
			es = estest.NewClient(t, base)
			var nb [4]byte
			_, _ = rand.Read(nb[:])
			ns = "counters" + hex.EncodeToString(nb[:])
			proxy = newCountingProxy(t, strings.TrimPrefix(base, "http://"))
			return []string{"-E", "output.file.enabled=false",
				"-E", "output.elasticsearch.hosts=[http://" + proxy.addr() + "]",
				"-E", "output.elasticsearch.namespace=" + ns,
				"-E", "output.elasticsearch.flush_interval=200ms"}
		},
		collect: func(t *testing.T, _ string) delivery {
			proxy.wait(t)
			return delivery{docs: esDocs(es, "metrics-fleutan.*-"+ns), written: proxy.up.Load(), read: proxy.down.Load(),
				bulks: proxy.count("POST /_bulk")}
		},
	}
}

func logstashCase() *outputCase {
	var srv *lumberServer
	return &outputCase{
		name: "logstash",
		args: func(t *testing.T, _ string) []string {
			srv = newLumberServer(t)
			return []string{"-E", "output.file.enabled=false", "-E", "output.logstash.hosts=[" + srv.addr + "]"}
		},
		collect: func(t *testing.T, _ string) delivery {
			srv.wait(t)
			return delivery{docs: srv.documents(), written: srv.read.Load(), read: srv.written.Load(), bulks: -1}
		},
	}
}

// esDocs returns @timestamp and data_stream.dataset of every document in
// the indices matched by pattern, paging with the scroll API.
func esDocs(es *estest.Client, pattern string) []map[string]any {
	es.T.Helper()
	es.JSON("POST", "/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", nil, nil)
	var out []map[string]any
	var m map[string]any
	es.JSON("POST", "/"+pattern+"/_search?scroll=1m&ignore_unavailable=true&allow_no_indices=true",
		map[string]any{"size": 5000, "_source": []string{"@timestamp", "data_stream.dataset"}}, &m)
	for {
		hits, _ := m["hits"].(map[string]any)
		list, _ := hits["hits"].([]any)
		if len(list) == 0 {
			break
		}
		for _, h := range list {
			src, _ := h.(map[string]any)["_source"].(map[string]any)
			out = append(out, src)
		}
		sid, _ := m["_scroll_id"].(string)
		m = nil
		es.JSON("POST", "/_search/scroll", map[string]any{"scroll": "1m", "scroll_id": sid}, &m)
	}
	return out
}

// countingProxy forwards TCP connections to target and counts the bytes
// of each direction, keeping the client's bytes to find requests in.
type countingProxy struct {
	ln       net.Listener
	target   string
	up, down atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	sent     bytes.Buffer
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				done := make(chan struct{})
				go func() {
					n, _ := io.Copy(c, s)
					p.down.Add(n)
					close(done)
				}()
				n, _ := io.Copy(writerFunc(func(b []byte) (int, error) {
					p.mu.Lock()
					p.sent.Write(b)
					p.mu.Unlock()
					return s.Write(b)
				}), c)
				p.up.Add(n)
				// The agent closed its side: nothing more can reach it.
				s.Close()
				<-done
				c.Close()
			}()
		}
	}()
	return p
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }

// wait returns once every proxied connection has ended.
func (p *countingProxy) wait(t *testing.T) {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("proxied connections still open 20s after the agent exited")
	}
}

func (p *countingProxy) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Count(p.sent.Bytes(), []byte(s))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// lumberServer is go-lumber's server, the Logstash beats input's
// protocol, on a listener that counts the bytes of its connections.
type lumberServer struct {
	addr          string
	read, written atomic.Int64
	conns         sync.WaitGroup
	mu            sync.Mutex
	events        []map[string]any
	undecodable   int
}

func newLumberServer(t *testing.T) *lumberServer {
	ljlog.Logger = quietLumberLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lumberServer{addr: ln.Addr().String()}
	srv, err := ljserver.NewWithListener(&countingListener{Listener: ln, s: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go func() {
		for b := range srv.ReceiveChan() {
			s.mu.Lock()
			for _, e := range b.Events {
				if m, ok := e.(map[string]any); ok {
					s.events = append(s.events, m)
				} else {
					s.undecodable++
				}
			}
			s.mu.Unlock()
			b.ACK()
		}
	}()
	return s
}

func (s *lumberServer) documents() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.events...)
}

// wait returns once every connection the agent opened has ended, so
// that every byte it wrote has been read.
func (s *lumberServer) wait(t *testing.T) {
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("lumberjack connections still open 20s after the agent exited")
	}
	if s.undecodable > 0 {
		t.Errorf("%d events were not JSON objects", s.undecodable)
	}
}

type countingListener struct {
	net.Listener
	s *lumberServer
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.conns.Add(1)
	return &serverConn{Conn: c, s: l.s}, nil
}

type serverConn struct {
	net.Conn
	s    *lumberServer
	once sync.Once
}

func (c *serverConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.s.read.Add(int64(n))
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)) {
		c.once.Do(c.s.conns.Done)
	}
	return n, err
}

func (c *serverConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.s.written.Add(int64(n))
	return n, err
}

func (c *serverConn) Close() error {
	c.once.Do(c.s.conns.Done)
	return c.Conn.Close()
}

type quietLumberLog struct{}

func (quietLumberLog) Printf(string, ...any) {}
func (quietLumberLog) Println(...any)        {}
func (quietLumberLog) Print(...any)          {}
