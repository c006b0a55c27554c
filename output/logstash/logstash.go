// Package logstash is output.logstash: events sent to Logstash's beats
// input over the lumberjack v2 protocol (github.com/elastic/go-lumber), as
// Beats send them, acknowledged per window for at-least-once delivery.
//
// Lumberjack v2 (go-lumber protocol/v2, logstash-input-beats PROTOCOL.md):
// the client sends a window frame ('2' 'W' count), then count JSON frames
// ('2' 'J' seq len payload), optionally inside one zlib-compressed frame
// ('2' 'C' len payload). The server answers with ACK frames ('2' 'A' seq),
// seq being the number of events of the window it has taken so far; a seq
// of 0 is a keepalive while it is still busy. An event counts as delivered
// only when an ACK covers it.
package logstash

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	lumber "github.com/elastic/go-lumber/client/v2"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// docType is @metadata.type: Beats 7+ send "_doc", and Logstash pipelines
// written for Beats use it as the document type where one is needed.
const docType = "_doc"

var errClosed = errors.New("logstash output: closed")

// New builds output.logstash from its section: one client per host and
// worker. Connections are opened by the first Publish, so an unreachable
// Logstash does not stop the agent from starting.
func New(cfg config.Raw, s output.Settings) (output.Group, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return output.Group{}, err
	}
	return newGroup(c, s)
}

func newGroup(c Config, s output.Settings) (output.Group, error) {
	tc, err := c.SSL.BuildTLS()
	if err != nil {
		return output.Group{}, fmt.Errorf("output.logstash: %w", err)
	}
	hosts := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		if hosts[i], err = hostPort(h); err != nil {
			return output.Group{}, fmt.Errorf("output.logstash.hosts.%d: %w", i, err)
		}
	}
	d := &dialer{timeout: c.Timeout.D(), tls: tc}
	if c.ProxyURL != "" {
		u, err := parseProxyURL(c.ProxyURL)
		if err != nil {
			return output.Group{}, fmt.Errorf("output.logstash.proxy_url: %w", err)
		}
		if d.socks, err = newSocksDialer(u, c.ProxyUseLocalResolver, &d.net); err != nil {
			return output.Group{}, fmt.Errorf("output.logstash.proxy_url: %w", err)
		}
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	beat := c.Index
	if beat == "" {
		beat = s.Beat
	}
	if beat == "" {
		beat = "fleutanbeat"
	}
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	shared := &shared{
		cfg:        c,
		dial:       d,
		log:        log,
		opts:       codec.Options{Metadata: true, Beat: beat, Type: docType, Version: s.Version},
		connects:   m.Counter("output.logstash.connections.opened"),
		connErrors: m.Counter("output.logstash.connections.errors"),
		io:         newIOCounters(m),
	}
	// Host state is shared by the clients so that an outage is logged once
	// and every client backs off from a host that failed.
	states := make([]*hostState, len(hosts))
	for i, h := range hosts {
		states[i] = &hostState{addr: h}
	}
	var clients []pipeline.Output
	for i := range hosts {
		for range c.Worker {
			cl := &client{shared: shared, win: newWindow(c.BulkMaxSize, c.SlowStart)}
			if c.LoadBalance {
				cl.hosts = states[i : i+1]
			} else {
				// Every failover client prefers the first listed host and
				// moves down the list when it fails.
				cl.hosts = states
			}
			clients = append(clients, cl)
		}
	}
	return output.Group{Clients: clients, BatchSize: c.BulkMaxSize}, nil
}

// shared is what all clients of one output use read-only.
type shared struct {
	cfg  Config
	dial *dialer
	log  *slog.Logger
	opts codec.Options

	connects, connErrors *atomic.Int64
	io                   ioCounters
}

// ioCounters are libbeat.output.{write,read}.*: bytes on the wire, TLS
// included, and failed sends and ACK reads.
type ioCounters struct {
	written, read, writeErrs, readErrors *atomic.Int64
}

func newIOCounters(m *pipeline.Metrics) ioCounters {
	return ioCounters{
		written:    m.Counter(pipeline.MetricOutputWriteBytes),
		read:       m.Counter(pipeline.MetricOutputReadBytes),
		writeErrs:  m.Counter(pipeline.MetricOutputWriteErrors),
		readErrors: m.Counter(pipeline.MetricOutputReadErrors),
	}
}

// hostState is the output's view of one host: its backoff and whether the
// last attempt worked, so errors are logged once per change.
type hostState struct {
	addr string

	mu      sync.Mutex
	fails   int
	retryAt time.Time
	down    bool // the last attempt failed and was logged
}

// client is one worker: one connection at a time, to its current host.
type client struct {
	*shared
	hosts []*hostState
	cur   int
	win   window

	// pubMu serialises Publish; mu guards conn and closed against Close.
	pubMu  sync.Mutex
	mu     sync.Mutex
	conn   *conn
	closed bool
}

// Publish sends the batch and returns once every event is acknowledged or
// an attempt failed. Acknowledged events are marked Acked; on error the
// others stay Pending and are retried by the pipeline. A failed connection
// is retried at once on the next host (failover) if there is one this
// Publish has not tried.
func (c *client) Publish(ctx context.Context, b *pipeline.Batch) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	done := 0
	var lastErr error
	for tries := 0; done < b.Len() && tries < len(c.hosts); tries++ {
		cn, err := c.connection(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = err
			c.nextHost()
			continue
		}
		n, err := cn.publish(ctx, b.Events[done:], &c.win, c.cfg.Pipelining)
		for i := done; i < done+n; i++ {
			b.Ack(i)
		}
		done += n
		if err == nil {
			continue
		}
		c.dropConn(cn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lastErr = fmt.Errorf("logstash %s: %w", cn.host, err)
		c.hostFailed(c.hosts[c.cur], lastErr)
		c.nextHost()
	}
	if done < b.Len() {
		return lastErr
	}
	return nil
}

func (c *client) nextHost() { c.cur = (c.cur + 1) % len(c.hosts) }

// connection returns the open connection, or dials the current host once
// its backoff has passed. A connection older than ttl is replaced.
func (c *client) connection(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	cn, closed := c.conn, c.closed
	c.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if cn != nil {
		if ttl := c.cfg.TTL.D(); ttl > 0 && time.Since(cn.born) >= ttl {
			c.dropConn(cn)
		} else {
			return cn, nil
		}
	}
	h := c.hosts[c.cur]
	h.mu.Lock()
	retryAt := h.retryAt
	h.mu.Unlock()
	if wait := time.Until(retryAt); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	cn, err := c.dial.open(ctx, h.addr, c.cfg, c.opts, c.io)
	if err != nil {
		err = fmt.Errorf("logstash %s: connecting: %w", h.addr, err)
		if ctx.Err() == nil {
			c.hostFailed(h, err)
		}
		return nil, err
	}
	c.connects.Add(1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cn.close()
		return nil, errClosed
	}
	c.conn = cn
	c.mu.Unlock()
	h.mu.Lock()
	if h.down {
		c.log.Info("connected to Logstash again", "host", h.addr)
	}
	h.down, h.fails, h.retryAt = false, 0, time.Time{}
	h.mu.Unlock()
	return cn, nil
}

// hostFailed sets the host's backoff and logs the first failure of a run.
func (c *client) hostFailed(h *hostState, err error) {
	c.connErrors.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fails++
	d := c.cfg.Backoff.Init.D() << min(h.fails-1, 30)
	if d > c.cfg.Backoff.Max.D() || d <= 0 {
		d = c.cfg.Backoff.Max.D()
	}
	// Jitter over [d/2, d] keeps a fleet that lost the same Logstash from
	// reconnecting in lockstep.
	d = d/2 + rand.N(d/2+1)
	h.retryAt = time.Now().Add(d)
	if !h.down {
		h.down = true
		c.log.Warn("Logstash connection failed; retrying with backoff", "host", h.addr, "error", err)
		return
	}
	c.log.Debug("Logstash still failing", "host", h.addr, "error", err, "backoff", d.String())
}

func (c *client) dropConn(cn *conn) {
	c.mu.Lock()
	if c.conn == cn {
		c.conn = nil
	}
	c.mu.Unlock()
	cn.close()
}

// Close closes the connection; a Publish in progress fails and its events
// are retried. Safe to call more than once.
func (c *client) Close() error {
	c.mu.Lock()
	cn := c.conn
	c.conn, c.closed = nil, true
	c.mu.Unlock()
	if cn != nil {
		cn.close()
	}
	return nil
}

// dialer opens TCP (optionally through SOCKS5) and TLS connections.
type dialer struct {
	net     net.Dialer
	timeout time.Duration
	tls     *tls.Config
	socks   *socksDialer
}

func (d *dialer) open(ctx context.Context, addr string, cfg Config, opts codec.Options, n ioCounters) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var raw net.Conn
	var err error
	if d.socks != nil {
		raw, err = d.socks.DialContext(dctx, addr)
	} else {
		raw, err = d.net.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		tc := d.tls.Clone()
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			tc.ServerName = host
		}
		t := tls.Client(raw, tc)
		if err := t.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		raw = t
	}
	cn, err := newConn(raw, addr, cfg, opts, n)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return cn, nil
}

// newConn speaks lumberjack v2 over an established connection.
func newConn(raw net.Conn, addr string, cfg Config, opts codec.Options, n ioCounters) (*conn, error) {
	cn := &conn{host: addr, raw: raw, born: time.Now(), opts: opts, n: n}
	var err error
	cn.lj, err = lumber.NewWithConn(&countingConn{Conn: raw, n: n},
		lumber.Timeout(cfg.Timeout.D()),
		lumber.CompressionLevel(cfg.CompressionLevel),
		lumber.JSONEncoder(cn.encode))
	if err != nil {
		return nil, err
	}
	return cn, nil
}

// countingConn counts the bytes of the connection for the output's
// metrics.
type countingConn struct {
	net.Conn
	n ioCounters
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.written.Add(int64(n))
	return n, err
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.read.Add(int64(n))
	return n, err
}

// conn is one lumberjack connection.
type conn struct {
	host string
	raw  net.Conn
	lj   *lumber.Client
	born time.Time
	opts codec.Options
	n    ioCounters
	// Encoded documents of the window being sent, reused across windows:
	// bufs holds one buffer per encoding goroutine, docs slices into them
	// and items points at docs for go-lumber (a pointer in an interface
	// does not allocate, a slice would).
	bufs  [][]byte
	docs  [][]byte
	items []any
	once  sync.Once
}

// minEventsPerEncoder keeps small windows on one goroutine, where starting
// more would cost more than it saves.
const minEventsPerEncoder = 256

// encodeWindow encodes events into cn.docs. Events the pipeline encoded
// (Event.Body) only need their @timestamp and @metadata spliced around the
// body, which one goroutine does faster than several. Encoding maps costs
// more than compressing and sending (output/codec sorts keys at every
// level), so a large window of such events is encoded on up to GOMAXPROCS
// goroutines, which all end before it returns.
func (cn *conn) encodeWindow(events []pipeline.Event) {
	workers := max(1, min(runtime.GOMAXPROCS(0), len(events)/minEventsPerEncoder))
	if len(events) > 0 && events[0].Fields == nil && events[0].Body != nil {
		workers = 1
	}
	for len(cn.bufs) < workers {
		cn.bufs = append(cn.bufs, nil)
	}
	if cap(cn.docs) < len(events) {
		cn.docs = make([][]byte, len(events))
	}
	cn.docs = cn.docs[:len(events)]
	chunk := (len(events) + workers - 1) / workers
	encode := func(w int) {
		lo, hi := w*chunk, min((w+1)*chunk, len(events))
		buf := cn.bufs[w][:0]
		ends := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			buf = codec.AppendEvent(buf, &events[i], cn.opts)
			ends = append(ends, len(buf))
		}
		// Slice only after the last append: growing buf moves it.
		start := 0
		for k, end := range ends {
			cn.docs[lo+k] = buf[start:end:end]
			start = end
		}
		cn.bufs[w] = buf
	}
	if workers == 1 {
		encode(0)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			encode(w)
		}()
	}
	encode(0)
	wg.Wait()
}

// encode is go-lumber's encoder hook; items are documents encodeWindow
// made.
func (cn *conn) encode(v any) ([]byte, error) {
	doc, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("logstash: cannot encode %T", v)
	}
	return *doc, nil
}

func (cn *conn) close() { cn.once.Do(func() { cn.raw.Close() }) }

// errProtocol marks replies that break lumberjack v2.
var errProtocol = errors.New("lumberjack protocol error")

// publish sends events in windows, keeping up to pipelining windows (at
// least one) awaiting their ACK, and returns how many events, from the
// start, the server acknowledged. ctx ending closes the connection, which
// unblocks go-lumber's reads and writes.
func (cn *conn) publish(ctx context.Context, events []pipeline.Event, win *window, pipelining int) (int, error) {
	stop := context.AfterFunc(ctx, cn.close)
	defer stop()
	var inflight []int // sizes of windows sent and not yet acknowledged
	acked, sent := 0, 0
	for acked < len(events) {
		for sent < len(events) && len(inflight) < max(1, pipelining) {
			n := min(win.size, len(events)-sent)
			cn.encodeWindow(events[sent : sent+n])
			cn.items = cn.items[:0]
			for i := range cn.docs {
				cn.items = append(cn.items, &cn.docs[i])
			}
			err := cn.lj.Send(cn.items)
			if err != nil {
				cn.n.writeErrs.Add(1)
				win.shrink()
				return acked, cn.fail(ctx, fmt.Errorf("sending %d events: %w", n, err))
			}
			inflight = append(inflight, n)
			sent += n
		}
		n, err := cn.awaitACK(inflight[0])
		acked += n
		if err != nil {
			cn.n.readErrors.Add(1)
			win.shrink()
			return acked, cn.fail(ctx, err)
		}
		win.grow(inflight[0])
		inflight = inflight[1:]
	}
	return acked, nil
}

// fail prefers the context's error when closing for ctx caused err.
func (cn *conn) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// awaitACK reads ACKs until the window of n events is covered and returns
// how many events the server acknowledged.
func (cn *conn) awaitACK(n int) (int, error) {
	last := 0
	for last < n {
		seq, err := cn.lj.ReceiveACK()
		if err != nil {
			if errors.Is(err, lumber.ErrProtocolError) {
				err = fmt.Errorf("%w: the server's reply is not an ACK frame (is this a beats input?)", errProtocol)
			}
			return last, fmt.Errorf("awaiting ACK (%d of %d events acknowledged): %w", last, n, err)
		}
		switch {
		case seq == 0:
			// Keepalive: the server is still working on the window.
		case int64(seq) > int64(n):
			return last, fmt.Errorf("%w: ACK for event %d of a window of %d", errProtocol, seq, n)
		case int(seq) < last:
			return last, fmt.Errorf("%w: ACK went back from %d to %d", errProtocol, last, seq)
		default:
			last = int(seq)
		}
	}
	return last, nil
}
