// Package elasticsearch is output.elasticsearch: events go to Elasticsearch
// with the bulk API as `create` actions carrying the event's deterministic
// _id, so a retried or replayed event is a 409 (already stored), never a
// second document. It also installs the index templates (Setup) and checks
// connectivity (TestOutput) for the CLI.
package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Counter names in pipeline.Metrics.
const (
	MetricAcked        = "output.elasticsearch.events.acked"
	MetricDuplicates   = "output.elasticsearch.events.duplicates"
	MetricRetried      = "output.elasticsearch.events.retried"
	MetricDropped      = "output.elasticsearch.events.dropped"
	MetricDeadLettered = "output.elasticsearch.events.dead_lettered"
)

// Stats is a snapshot of the output's counters, summed over its workers.
// Acked counts newly stored events; Duplicates those Elasticsearch already
// had (409), which are acknowledged too.
type Stats struct {
	Acked, Duplicates, Retried, Dropped, DeadLettered int64
}

type counters struct {
	acked, duplicates, retried, dropped, deadLettered *atomic.Int64
	// libbeat.output.*: bytes on the wire (TLS and HTTP included), failed
	// requests and replies, events refused with 429.
	written, read, writeErrs, readErrs, tooMany *atomic.Int64
}

func newCounters(m *pipeline.Metrics) counters {
	if m == nil {
		m = pipeline.NewMetrics()
	}
	return counters{
		acked:        m.Counter(MetricAcked),
		duplicates:   m.Counter(MetricDuplicates),
		retried:      m.Counter(MetricRetried),
		dropped:      m.Counter(MetricDropped),
		deadLettered: m.Counter(MetricDeadLettered),
		written:      m.Counter(pipeline.MetricOutputWriteBytes),
		read:         m.Counter(pipeline.MetricOutputReadBytes),
		writeErrs:    m.Counter(pipeline.MetricOutputWriteErrors),
		readErrs:     m.Counter(pipeline.MetricOutputReadErrors),
		tooMany:      m.Counter(pipeline.MetricOutputTooMany),
	}
}

// New is the output.Factory for `output.elasticsearch`. Templates are
// installed before the first bulk request as setup.template (in
// s.Setup) says.
func New(raw config.Raw, s output.Settings) (output.Group, error) {
	c, err := DecodeWithSetup(raw, s.Setup)
	if err != nil {
		return output.Group{}, err
	}
	return NewGroup(c, s)
}

// DecodeWithSetup decodes `output.elasticsearch` and `setup.template`
// together, reporting the problems of both.
func DecodeWithSetup(raw, setup config.Raw) (Config, error) {
	c, err := DecodeConfig(raw)
	var terr error
	if tr, ok := setup.Child("template"); ok {
		c.Template, terr = DecodeTemplateConfig(tr)
	}
	return c, errors.Join(err, terr)
}

// DecodeConfig decodes and validates an `output.elasticsearch` section for
// the CLI commands (setup, test output, export template).
func DecodeConfig(raw config.Raw) (Config, error) {
	c := DefaultConfig()
	err := raw.DecodeValid(&c)
	return c, err
}

// NewGroup builds the output from a decoded Config (with Template set from
// setup.template by the agent): Worker clients sharing one connection pool.
func NewGroup(c Config, s output.Settings) (output.Group, error) {
	shared, err := newShared(c, s)
	if err != nil {
		return output.Group{}, err
	}
	g := output.Group{BatchSize: c.BulkMaxSize, FlushTimeout: c.FlushInterval.D(), Namespace: c.Namespace}
	for range c.Worker {
		g.Clients = append(g.Clients, &Client{shared: shared})
	}
	return g, nil
}

// NewClient builds a single client (one worker).
func NewClient(c Config, s output.Settings) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	shared, err := newShared(c, s)
	if err != nil {
		return nil, err
	}
	return &Client{shared: shared}, nil
}

// shared is what the workers of one output have in common.
type shared struct {
	cfg     Config
	es      *es.Client
	http    *http.Transport
	log     *slog.Logger
	pattern *pattern // index mode
	n       counters
	setup   setupOnce

	mu     sync.Mutex
	logged map[string]bool // drop reasons already logged
}

func newShared(c Config, s output.Settings) (*shared, error) {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sh := &shared{cfg: c, log: log.With("output", "elasticsearch"), n: newCounters(s.Metrics), logged: map[string]bool{}}
	if c.Mode == ModeIndex {
		p, err := parsePattern(c.Index)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: index: %w", err)
		}
		p.namespace = c.Namespace
		sh.pattern = p
	}
	ua := "fleutanbeat"
	if s.Beat != "" {
		ua = s.Beat
	}
	if s.Version != "" {
		ua += "/" + s.Version
	}
	client, tr, err := newESClientTransport(c, ua)
	if err != nil {
		return nil, err
	}
	countBytes(tr, sh.n.written, sh.n.read)
	sh.es, sh.http = client, tr
	return sh, nil
}

// setupOnce installs templates before the first bulk request, and again
// after a failure: Elasticsearch may be down when the agent starts.
type setupOnce struct {
	mu   sync.Mutex
	done bool
}

// Client is one worker of the output: it owns its body buffer and sends
// one bulk request at a time. Workers share the connection pool and the
// counters.
type Client struct {
	*shared
	body    []byte
	dlBody  []byte
	backoff time.Duration
	pos     []int // batch index of each bulk action
}

// Stats returns the counters of the whole output (all workers).
func (c *Client) Stats() Stats {
	return Stats{
		Acked:        c.n.acked.Load(),
		Duplicates:   c.n.duplicates.Load(),
		Retried:      c.n.retried.Load(),
		Dropped:      c.n.dropped.Load(),
		DeadLettered: c.n.deadLettered.Load(),
	}
}

// Close releases idle connections; it is safe to call more than once.
func (c *Client) Close() error {
	if c.shared != nil && c.http != nil {
		c.http.CloseIdleConnections()
	}
	return nil
}

// nonIndexable is an event Elasticsearch refused for good, or that the
// output could not address.
type nonIndexable struct {
	i            int
	status       int
	typ, message string
}

// Publish sends the batch as one bulk request and reports each event.
func (c *Client) Publish(ctx context.Context, b *pipeline.Batch) error {
	if err := c.ensureSetup(ctx); err != nil {
		c.wait(ctx)
		return err
	}
	var bad []nonIndexable
	c.body, c.pos = c.body[:0], c.pos[:0]
	var name []byte
	for i := range b.Events {
		e := &b.Events[i]
		var err error
		name, err = c.indexFor(name[:0], e)
		if err != nil {
			bad = append(bad, nonIndexable{i: i, typ: "index_name", message: err.Error()})
			continue
		}
		c.body = appendAction(c.body, name, e.ID)
		c.body = codec.AppendEvent(c.body, e, codec.Options{})
		c.body = append(c.body, '\n')
		c.pos = append(c.pos, i)
	}
	var items []itemResult
	if len(c.pos) > 0 {
		var err error
		items, err = c.bulk(ctx, c.body, len(c.pos))
		if err != nil {
			c.n.retried.Add(int64(len(c.pos)))
			// Events refused before sending stay refused: only the sent
			// ones are retried.
			c.refuse(ctx, b, bad)
			c.wait(ctx)
			return err
		}
	}
	stored := 0
	for k, i := range c.pos {
		if items == nil {
			b.Ack(i)
			stored++
			continue
		}
		it := items[k]
		switch classify(it.Status) {
		case outStored:
			b.Ack(i)
			stored++
		case outDuplicate:
			b.AckDuplicate(i)
			c.n.duplicates.Add(1)
		case outRetry:
			b.Retry(i)
			c.n.retried.Add(1)
		case outNonIndexable:
			bad = append(bad, nonIndexable{i: i, status: it.Status, typ: it.Type, message: it.Reason})
		}
	}
	c.n.acked.Add(int64(stored))
	c.refuse(ctx, b, bad)
	if stored == 0 && anyRetry(b) {
		c.wait(ctx)
	} else {
		c.backoff = 0
	}
	return nil
}

func anyRetry(b *pipeline.Batch) bool {
	for i := range b.Len() {
		if st, _ := b.Status(i); st == pipeline.Retry {
			return true
		}
	}
	return false
}

// indexFor appends the target of one event; in data stream mode it also
// sets data_stream.* so the document matches the stream it goes to.
func (c *Client) indexFor(dst []byte, e *pipeline.Event) ([]byte, error) {
	if e.Fields == nil && e.Body != nil {
		// Encoded by the pipeline, which set data_stream.* from
		// Group.Namespace before encoding: route, do not rewrite.
		if c.cfg.Mode == ModeIndex {
			return c.pattern.render(dst, e)
		}
		dst, _, err := dataStreamName(dst, e, c.cfg.Namespace)
		return dst, err
	}
	if e.Fields == nil {
		e.Fields = pipeline.M{}
	}
	if c.cfg.Mode == ModeIndex {
		e.Fields.Put("data_stream.namespace", c.cfg.Namespace)
		return c.pattern.render(dst, e)
	}
	dst, ds, err := dataStreamName(dst, e, c.cfg.Namespace)
	if err != nil {
		return dst, err
	}
	// The pipeline usually set these already; rewriting them would cost
	// a map per event.
	if cur, ok := e.Fields["data_stream"].(pipeline.M); !ok || cur["type"] != "metrics" || cur["dataset"] != ds || cur["namespace"] != c.cfg.Namespace {
		e.Fields.Put("data_stream", pipeline.M{"type": "metrics", "dataset": ds, "namespace": c.cfg.Namespace})
	}
	return dst, nil
}

// bulk sends one bulk body of n actions. Any failure of the request as a
// whole is an error: the caller retries all of it, and the transport will
// have moved to the next host for network errors.
func (c *Client) bulk(ctx context.Context, body []byte, n int) ([]itemResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.D())
	defer cancel()
	req := esapi.BulkRequest{Body: bytes.NewReader(body), FilterPath: bulkFilterPath}
	res, err := req.Do(ctx, c.es)
	if err != nil {
		c.n.writeErrs.Add(1)
		return nil, describeTransportError(err)
	}
	defer res.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		c.n.readErrs.Add(1)
		return nil, fmt.Errorf("elasticsearch: bulk: reading reply: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		if res.StatusCode == http.StatusTooManyRequests {
			c.n.tooMany.Add(int64(n))
		}
		return nil, statusError("bulk", res.StatusCode, reply)
	}
	items, err := parseBulkReply(reply, n)
	if err != nil {
		c.n.readErrs.Add(1)
		return nil, fmt.Errorf("elasticsearch: bulk: %w", err)
	}
	for _, it := range items {
		if it.Status == http.StatusTooManyRequests {
			c.n.tooMany.Add(1)
		}
	}
	return items, nil
}

// refuse applies non_indexable_policy to events Elasticsearch will never
// accept as they are.
func (c *Client) refuse(ctx context.Context, b *pipeline.Batch, bad []nonIndexable) {
	if len(bad) == 0 {
		return
	}
	if c.cfg.NonIndexablePolicy.Action == PolicyDeadLetterIndex {
		c.deadLetter(ctx, b, bad)
		return
	}
	for _, nb := range bad {
		reason := "non_indexable:" + nb.typ
		b.Drop(nb.i, reason)
		c.n.dropped.Add(1)
		c.logOnce(reason, "dropping event Elasticsearch cannot index (non_indexable_policy: drop); first document's error",
			"status", nb.status, "error.type", nb.typ, "error", nb.message)
	}
}

// deadLetter stores the refused events as strings with their error in the
// dead-letter index. The action reuses the event's _id, so retrying a
// dead-letter write never stores it twice.
func (c *Client) deadLetter(ctx context.Context, b *pipeline.Batch, bad []nonIndexable) {
	index := []byte(c.cfg.NonIndexablePolicy.Index)
	c.dlBody = c.dlBody[:0]
	now := pipeline.Event{Timestamp: time.Now()}
	var doc []byte
	for _, nb := range bad {
		e := &b.Events[nb.i]
		c.dlBody = appendAction(c.dlBody, index, e.ID)
		doc = codec.AppendEvent(doc[:0], e, codec.Options{})
		now.Fields = pipeline.M{
			"message": string(doc),
			"error":   pipeline.M{"type": nb.typ, "message": nb.message, "status": nb.status},
		}
		if e.ID != "" {
			now.Fields["event"] = pipeline.M{"id": e.ID}
		}
		c.dlBody = codec.AppendEvent(c.dlBody, &now, codec.Options{})
		c.dlBody = append(c.dlBody, '\n')
	}
	items, err := c.bulk(ctx, c.dlBody, len(bad))
	for k, nb := range bad {
		st := 0
		if err == nil {
			st = 201
			if items != nil {
				st = items[k].Status
			}
		}
		switch {
		case err == nil && (classify(st) == outStored || classify(st) == outDuplicate):
			b.AckDeadLetter(nb.i)
			c.n.deadLettered.Add(1)
			c.logOnce("dead_letter:"+nb.typ, "event Elasticsearch cannot index stored in the dead-letter index; first document's error",
				"index", c.cfg.NonIndexablePolicy.Index, "status", nb.status, "error.type", nb.typ, "error", nb.message)
		default:
			b.Retry(nb.i)
			c.n.retried.Add(1)
			msg := fmt.Sprintf("status %d", st)
			if err != nil {
				msg = err.Error()
			} else if items != nil {
				msg += ": " + items[k].Type + ": " + items[k].Reason
			}
			c.logOnce("dead_letter_failed", "writing to the dead-letter index failed; the events will be retried",
				"index", c.cfg.NonIndexablePolicy.Index, "error", msg)
		}
	}
}

func (c *Client) logOnce(key, msg string, args ...any) {
	c.mu.Lock()
	seen := c.logged[key]
	c.logged[key] = true
	c.mu.Unlock()
	if !seen {
		c.log.Warn(msg, args...)
	}
}

// wait is the output's own backoff after a request that stored nothing,
// on top of the pipeline's retry delay: it keeps a fleet of workers from
// hammering a cluster that answers 429 or is down.
func (c *Client) wait(ctx context.Context) {
	init, maxB := c.cfg.Backoff.Init.D(), c.cfg.Backoff.Max.D()
	if c.backoff == 0 {
		c.backoff = init
	} else {
		c.backoff = min(2*c.backoff, maxB)
	}
	t := time.NewTimer(c.backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (c *Client) ensureSetup(ctx context.Context) error {
	if !c.cfg.Template.Enabled {
		return nil
	}
	c.setup.mu.Lock()
	defer c.setup.mu.Unlock()
	if c.setup.done {
		return nil
	}
	if err := installTemplates(ctx, c.es, c.cfg); err != nil {
		return fmt.Errorf("elasticsearch: installing templates (setup.template.enabled): %w", err)
	}
	c.setup.done = true
	return nil
}

// statusError describes a non-2xx reply to a whole request.
func statusError(what string, status int, body []byte) error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	switch status {
	case http.StatusUnauthorized:
		return fmt.Errorf("elasticsearch: %s: 401 authentication failed: check username/password or api_key: %s", what, msg)
	case http.StatusForbidden:
		return fmt.Errorf("elasticsearch: %s: 403 the user lacks a privilege: %s", what, msg)
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("elasticsearch: %s: 413 request too large: lower bulk_max_size (http.max_content_length of the cluster)", what)
	}
	return fmt.Errorf("elasticsearch: %s: status %d: %s", what, status, msg)
}

// describeTransportError turns the client's errors into messages that say
// what to check.
func describeTransportError(err error) error {
	s := err.Error()
	switch {
	case strings.Contains(s, "not Elasticsearch") || strings.Contains(s, "unknown product"):
		return fmt.Errorf("elasticsearch: product check failed: the server did not identify as Elasticsearch (no X-Elastic-Product header): %w", err)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "timeout"):
		return fmt.Errorf("elasticsearch: request timed out (timeout setting): %w", err)
	case strings.Contains(s, "x509:") || strings.Contains(s, "tls:"):
		return fmt.Errorf("elasticsearch: TLS error: check ssl.certificate_authorities and ssl.verification_mode: %w", err)
	case strings.Contains(s, "connection refused"):
		return fmt.Errorf("elasticsearch: host unreachable (connection refused): %w", err)
	}
	return fmt.Errorf("elasticsearch: request failed: %w", err)
}
