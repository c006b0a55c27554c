package logstash

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	ljlog "github.com/elastic/go-lumber/log"
	server "github.com/elastic/go-lumber/server/v2"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

// serverAddrEnv makes the test binary a lumberjack server process (see
// TestMain): tests kill it with SIGKILL and start it again.
const serverAddrEnv = "FLEUTANBEAT_TEST_LUMBERSERVER_ADDR"

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}
func (quietLog) Print(...any)          {}

func TestMain(m *testing.M) {
	// go-lumber's server logs every connection to the standard logger.
	ljlog.Logger = quietLog{}
	if addr := os.Getenv(serverAddrEnv); addr != "" {
		if err := runServerProcess(addr, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "lumberserver:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runServerProcess is the separate-process server: it prints "ready", then
// for every batch the @metadata._id of each event, one per line, and
// acknowledges the batch only after the lines are written, so every
// acknowledged event is on the parent's pipe even after a SIGKILL.
func runServerProcess(addr string, out io.Writer) error {
	srv, err := server.ListenAndServe(addr, server.Keepalive(100*time.Millisecond))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	fmt.Fprintln(w, "ready")
	if err := w.Flush(); err != nil {
		return err
	}
	for b := range srv.ReceiveChan() {
		for _, e := range b.Events {
			fmt.Fprintln(w, eventID(e))
		}
		if err := w.Flush(); err != nil {
			return err
		}
		b.ACK()
	}
	return nil
}

// eventID returns @metadata._id of a decoded event, or "?" plus the
// document when the event lacks one.
func eventID(e any) string {
	doc, _ := e.(map[string]any)
	meta, _ := doc["@metadata"].(map[string]any)
	id, ok := meta["_id"].(string)
	if !ok {
		b, _ := json.Marshal(e)
		return "?" + string(b)
	}
	return id
}

// received records what servers got: every id with the number of times it
// arrived and, per server label, how many events.
type received struct {
	mu       sync.Mutex
	count    map[string]int
	docs     map[string]map[string]any
	byServer map[string]int
	windows  []int
	changed  chan struct{}
}

func newReceived() *received {
	return &received{count: map[string]int{}, docs: map[string]map[string]any{}, byServer: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *received) add(server string, events []any) {
	r.mu.Lock()
	r.windows = append(r.windows, len(events))
	for _, e := range events {
		id := eventID(e)
		r.count[id]++
		if doc, ok := e.(map[string]any); ok {
			r.docs[id] = doc
		}
		r.byServer[server]++
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *received) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// duplicates is the number of deliveries beyond the first of each id.
func (r *received) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.count {
		n += c - 1
	}
	return n
}

// waitDistinct waits until n distinct ids arrived.
func (r *received) waitDistinct(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for r.distinct() < n {
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("received %d distinct events, want %d", r.distinct(), n)
		}
	}
}

// lumberServer is go-lumber's v2 server in this process. While held it
// records batches but does not acknowledge them (it keeps sending
// keepalives, as a busy Logstash does).
type lumberServer struct {
	name string
	addr string
	srv  *server.Server
	rec  *received
	wg   sync.WaitGroup

	mu     sync.Mutex
	gate   chan struct{} // nil: acknowledge at once
	closed sync.Once
}

type serverOpts struct {
	addr string // "" picks a free port
	tls  *tls.Config
	hold bool
}

func startServer(t testing.TB, name string, rec *received, o serverOpts) *lumberServer {
	t.Helper()
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // the old listener of a restart may linger
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	if o.tls != nil {
		ln = tls.NewListener(ln, o.tls)
	}
	return startServerOn(t, ln, name, rec, o.hold)
}

func startServerOn(t testing.TB, ln net.Listener, name string, rec *received, hold bool) *lumberServer {
	t.Helper()
	srv, err := server.NewWithListener(ln, server.Keepalive(50*time.Millisecond), server.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s := &lumberServer{name: name, addr: ln.Addr().String(), srv: srv, rec: rec}
	if hold {
		s.gate = make(chan struct{})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for b := range srv.ReceiveChan() {
			rec.add(name, b.Events)
			s.mu.Lock()
			gate := s.gate
			s.mu.Unlock()
			if gate != nil {
				<-gate
			}
			b.ACK()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// release makes a held server acknowledge.
func (s *lumberServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// Close stops the server; go-lumber's Close panics when called twice.
func (s *lumberServer) Close() {
	s.closed.Do(func() {
		s.release()
		s.srv.Close()
		s.wg.Wait()
	})
}

// serverProcess is the test binary running runServerProcess.
type serverProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startServerProcess(t testing.TB, addr string, rec *received) *serverProcess {
	t.Helper()
	var lastErr error
	for try := 0; try < 50; try++ {
		p, err := tryServerProcess(addr, rec)
		if err == nil {
			t.Cleanup(p.kill)
			return p
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("starting server process: %v", lastErr)
	return nil
}

func tryServerProcess(addr string, rec *received) (*serverProcess, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverAddrEnv+"="+addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Wait()
		return nil, fmt.Errorf("server process did not start: %s", strings.TrimSpace(stderr.String()))
	}
	p := &serverProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for sc.Scan() {
			rec.add("process", []any{map[string]any{"@metadata": map[string]any{"_id": sc.Text()}}})
		}
	}()
	return p, nil
}

// kill sends SIGKILL and waits until every line the process wrote is read.
func (p *serverProcess) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.cmd.Wait()
}

// logRecorder keeps log records for assertions on what users see.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

// matching returns the records at level (e.g. "WARN") containing sub.
func (l *logRecorder) matching(level, sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if strings.HasPrefix(r, level+" ") && strings.Contains(r, sub) {
			out = append(out, r)
		}
	}
	return out
}

// newOutput builds the output from YAML as the agent would.
func newOutput(t testing.TB, yml string, logs *logRecorder) output.Group {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(yml), &doc); err != nil {
		t.Fatal(err)
	}
	var h slog.Handler = slog.DiscardHandler
	if logs != nil {
		h = logs
	}
	g, err := New(config.NewRaw(doc.Content[0], "test.yml", "output.logstash"), output.Settings{
		Logger: slog.New(h), Beat: "fleutanbeat", Version: "9.9.9",
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range g.Clients {
			c.Close()
		}
	})
	return g
}

// runPipeline publishes n events (ids "ev-0".."ev-<n-1>") through a real
// pipeline into the group and returns once all are published and the
// pipeline has drained, or fails after within.
func runPipeline(t testing.TB, g output.Group, n int, queue int, within time.Duration) *pipeline.Metrics {
	t.Helper()
	m := pipeline.NewMetrics()
	var q pipeline.MemQueueConfig
	q.Events = queue
	p := pipeline.New(pipeline.Settings{
		Metrics: m, Agent: pipeline.AgentInfo{ID: "agent-1", Name: "host", Type: "fleutanbeat", Version: "9.9.9"},
		Queue: q, Outputs: g.Clients, BatchSize: g.BatchSize,
		RetryInit: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	})
	p.Start()
	pub := p.Client(pipeline.ClientConfig{Input: "test"})
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for i := range n {
		if err := pub.Publish(ctx, testEvent(i)); err != nil {
			t.Fatalf("publishing event %d: %v", i, err)
		}
	}
	if left := p.Close(ctx); left != 0 {
		t.Fatalf("%d events undelivered when the pipeline closed", left)
	}
	return m
}

func testEvent(i int) pipeline.Event {
	return pipeline.Event{
		Timestamp: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		ID:        fmt.Sprintf("ev-%d", i),
		Fields: pipeline.M{
			"event":   pipeline.M{"dataset": "fleutan.flows", "module": "fleutan"},
			"message": fmt.Sprintf("event %d with \"quotes\", unicode é and \\ backslash", i),
			"seq":     i,
		},
	}
}

func wantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ev-%d", i)
	}
	return ids
}

// checkAll fails unless every id arrived at least once and nothing else did.
func checkAll(t testing.TB, rec *received, n int) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	missing := 0
	for _, id := range wantIDs(n) {
		if rec.count[id] == 0 {
			missing++
		}
	}
	if missing > 0 || len(rec.count) != n {
		t.Fatalf("missing %d of %d events; %d distinct ids arrived", missing, n, len(rec.count))
	}
}
