// Package elasticsearch is output.elasticsearch: events go to Elasticsearch
// with the bulk API as `create` actions carrying the event's deterministic
// _id, so a retried or replayed event is a 409 (already stored), never a
// second document. It also installs the index templates (Setup) and checks
// connectivity (TestOutput) for the CLI.
package elasticsearch

import (
	"bytes"
	"compress/gzip"
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
	"unicode/utf8"

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
	// MetricBlocked counts the retries (also in MetricRetried) of events
	// refused by a write block or for a missing privilege: retries that
	// wait on an operator rather than on the cluster.
	MetricBlocked = "output.elasticsearch.events.blocked"
	// MetricResentWithoutID counts the events a time series data stream
	// refused for their _id, sent again without one; MetricResends the
	// bulk requests that did it.
	MetricResentWithoutID = "output.elasticsearch.events.resent_without_id"
	MetricResends         = "output.elasticsearch.resends"
)

// Stats is a snapshot of the output's counters, summed over its workers.
// Acked counts newly stored events; Duplicates those Elasticsearch already
// had (409), which are acknowledged too. Blocked is the part of Retried
// that a write block or a missing privilege caused.
type Stats struct {
	Acked, Duplicates, Retried, Dropped, DeadLettered, Blocked int64
}

type counters struct {
	acked, duplicates, retried, dropped, deadLettered, blocked *atomic.Int64
	resent, resends                                            *atomic.Int64
	// libbeat.output.*: bytes on the wire (TLS and HTTP included), failed
	// requests and replies, events refused with 429.
	written, read, writeErrs, readErrs, tooMany *atomic.Int64
}

// MetricName is the name of one of the Metric* counters for the output
// of another engine: output.opensearch.events.acked for MetricAcked.
func MetricName(eng *Engine, name string) string {
	if eng == nil || eng.Name == Elasticsearch.Name {
		return name
	}
	return "output." + eng.Name + "." + strings.TrimPrefix(name, "output.elasticsearch.")
}

func newCounters(m *pipeline.Metrics, eng *Engine) counters {
	if m == nil {
		m = pipeline.NewMetrics()
	}
	return counters{
		acked:        m.Counter(MetricName(eng, MetricAcked)),
		duplicates:   m.Counter(MetricName(eng, MetricDuplicates)),
		retried:      m.Counter(MetricName(eng, MetricRetried)),
		dropped:      m.Counter(MetricName(eng, MetricDropped)),
		deadLettered: m.Counter(MetricName(eng, MetricDeadLettered)),
		blocked:      m.Counter(MetricName(eng, MetricBlocked)),
		resent:       m.Counter(MetricName(eng, MetricResentWithoutID)),
		resends:      m.Counter(MetricName(eng, MetricResends)),
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
	return DecodeWithSetupFor(Elasticsearch, raw, setup)
}

// DecodeWithSetupFor is DecodeWithSetup for the output of engine eng.
func DecodeWithSetupFor(eng *Engine, raw, setup config.Raw) (Config, error) {
	c, err := DecodeConfigFor(eng, raw)
	var terr error
	if tr, ok := setup.Child("template"); ok {
		c.Template, terr = DecodeTemplateConfig(tr)
	}
	return c, errors.Join(err, terr)
}

// DecodeConfig decodes and validates an `output.elasticsearch` section for
// the CLI commands (setup, test output, export template).
func DecodeConfig(raw config.Raw) (Config, error) {
	return DecodeConfigFor(Elasticsearch, raw)
}

// DecodeConfigFor decodes and validates the section of the output of
// engine eng: the same keys for every engine.
func DecodeConfigFor(eng *Engine, raw config.Raw) (Config, error) {
	c := DefaultConfig()
	c.Engine = eng
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
	es      Transport
	http    *http.Transport
	log     *slog.Logger
	pattern *pattern // index mode
	n       counters
	setup   setupOnce

	mu sync.Mutex
	// logged is when each reason was last logged: a reason that holds
	// for hours (a write block) is logged once per logEvery, not per
	// batch.
	logged   map[string]time.Time
	logEvery time.Duration

	// tsds holds the targets learned to be time series data streams,
	// with the time they were learned (see tsdsRelearn).
	tsdsMu sync.RWMutex
	tsds   map[string]time.Time

	// gzips holds *gzip.Writer for compression_level: the compressor's
	// state is reused, never its output (see gzipBody).
	gzips sync.Pool
}

func newShared(c Config, s output.Settings) (*shared, error) {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The agent's logger already carries output=elasticsearch; adding it
	// again would write the key twice in every line.
	sh := &shared{cfg: c, log: log, n: newCounters(s.Metrics, c.engine()), logged: map[string]time.Time{}, logEvery: time.Minute, tsds: map[string]time.Time{}}
	if c.Mode == ModeIndex {
		p, err := parsePattern(c.Index)
		if err != nil {
			return nil, fmt.Errorf("%s: index: %w", c.engine().Name, err)
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
	client, tr, err := newClientTransport(c, ua, newHostStats(s.Metrics, c.engine(), c.Hosts))
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
	// off is where each bulk action starts in body, plus the end: the
	// request can be split between any two actions.
	off   []int
	dlOff []int
	// reBody and reOff are the resend of events refused for their _id.
	reBody []byte
	reOff  []int
}

// Stats returns the counters of the whole output (all workers).
func (c *Client) Stats() Stats {
	return Stats{
		Acked:        c.n.acked.Load(),
		Duplicates:   c.n.duplicates.Load(),
		Retried:      c.n.retried.Load(),
		Dropped:      c.n.dropped.Load(),
		DeadLettered: c.n.deadLettered.Load(),
		Blocked:      c.n.blocked.Load(),
	}
}

// Close releases idle connections; it is safe to call more than once.
func (c *Client) Close() error {
	if c.shared != nil && c.http != nil {
		c.http.CloseIdleConnections()
	}
	return nil
}

// Probe asks GET / once per host through the output's client (its
// round-robin visits each host; the requests and bytes are counted like
// any other) and returns the product check's error when a host answered
// as another product (ErrWrongProduct); hosts that do not answer are left
// to the retries of Publish.
func (c *Client) Probe(ctx context.Context) error {
	eng := c.cfg.engine()
	for range c.cfg.Hosts {
		rctx, cancel := context.WithTimeout(withAttempts(ctx), min(c.cfg.Timeout.D(), 10*time.Second))
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, "/", nil)
		if err != nil {
			cancel()
			return err
		}
		res, err := c.es.Perform(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		cancel()
		if err == nil {
			continue
		}
		if pe, ok := productErrorOf(eng, req.URL.Host, err); ok {
			return fmt.Errorf("%s: %w", eng.Name, pe)
		}
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

// Publish sends the batch as one bulk request (split when the cluster
// finds it too large) and reports each event.
func (c *Client) Publish(ctx context.Context, b *pipeline.Batch) error {
	if err := c.ensureSetup(ctx); err != nil {
		c.wait(ctx)
		return err
	}
	var bad []nonIndexable
	c.body, c.pos, c.off = c.body[:0], c.pos[:0], c.off[:0]
	var name []byte
	for i := range b.Events {
		e := &b.Events[i]
		var err error
		name, err = c.indexFor(name[:0], e)
		if err != nil {
			bad = append(bad, nonIndexable{i: i, typ: "index_name", message: err.Error()})
			continue
		}
		c.off = append(c.off, len(c.body))
		id := e.ID
		if c.timeSeries(name) {
			id = ""
		}
		c.body = appendAction(c.body, name, id)
		c.body = codec.AppendEvent(c.body, e, codec.Options{})
		c.body = append(c.body, '\n')
		c.pos = append(c.pos, i)
	}
	c.off = append(c.off, len(c.body))
	var items []itemResult
	if len(c.pos) > 0 {
		var err error
		items, err = c.bulkSplit(ctx, c.body, c.off)
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
	// The reason of the previous retried item: a batch refused by a block
	// has one reason for every item, checked against the log limit once.
	var explained itemResult
	var resend []int
	handle := func(i int, it itemResult) {
		switch out := classify(it.Status, it.Type); out {
		case outStored:
			b.Ack(i)
			stored++
		case outDuplicate:
			b.AckDuplicate(i)
			c.n.duplicates.Add(1)
		case outRetry, outBlocked:
			b.Retry(i)
			c.n.retried.Add(1)
			if out == outBlocked {
				c.n.blocked.Add(1)
			}
			if it.Status != explained.Status || it.Type != explained.Type {
				explained = it
				c.explainRetry(&b.Events[i], it)
			}
		case outNonIndexable:
			bad = append(bad, nonIndexable{i: i, status: it.Status, typ: it.Type, message: it.Reason})
		}
	}
	for k, i := range c.pos {
		if items == nil {
			b.Ack(i)
			stored++
			continue
		}
		if refusesID(items[k]) {
			resend = append(resend, i)
			continue
		}
		handle(i, items[k])
	}
	if len(resend) > 0 {
		c.resendWithoutID(ctx, b, resend, handle)
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

// A time series data stream (index.mode: time_series) makes each
// document's _id from its dimensions and @timestamp, and refuses any
// other: 400 "_id must be unset or set to [...] because [index] is in
// time_series mode". Its ids are as deterministic as the pipeline's (a
// retried event has the same dimensions and time), so a retry is still a
// 409, never a second document. The output learns such targets from that
// refusal, sends their events without _id from then on, and unlearns
// them after tsdsRelearn: a data stream whose template changed becomes
// standard at its next rollover, and there an event without _id would
// get a random one, so that a retry could store it twice.
const tsdsRelearn = 10 * time.Minute

// refusesID reports the refusal of an explicit _id by a time series
// index.
func refusesID(it itemResult) bool {
	return it.Status == http.StatusBadRequest && strings.Contains(it.Reason, "_id must be unset") &&
		strings.Contains(it.Reason, "time_series mode")
}

// timeSeries reports whether the target is a time series data stream
// learned within tsdsRelearn.
func (s *shared) timeSeries(target []byte) bool {
	s.tsdsMu.RLock()
	at, ok := s.tsds[string(target)]
	s.tsdsMu.RUnlock()
	return ok && time.Since(at) < tsdsRelearn
}

// resendWithoutID sends again, without _id, the events a time series
// index refused for their _id, after learning their targets, and hands
// each result to handle. A failed request retries them.
func (c *Client) resendWithoutID(ctx context.Context, b *pipeline.Batch, resend []int, handle func(int, itemResult)) {
	c.reBody, c.reOff = c.reBody[:0], c.reOff[:0]
	sent := resend[:0]
	var name []byte
	for _, i := range resend {
		e := &b.Events[i]
		var err error
		if name, err = c.indexFor(name[:0], e); err != nil {
			// It had a name when it was first sent.
			handle(i, itemResult{Status: http.StatusBadRequest, Type: "index_name", Reason: err.Error()})
			continue
		}
		c.tsdsMu.Lock()
		if at, ok := c.tsds[string(name)]; !ok || time.Since(at) >= tsdsRelearn {
			c.tsds[string(name)] = time.Now()
			c.log.Info("the target is a time series data stream: its events are sent without _id, which Elasticsearch makes from their dimensions and @timestamp", "index", string(name))
		}
		c.tsdsMu.Unlock()
		c.reOff = append(c.reOff, len(c.reBody))
		c.reBody = appendAction(c.reBody, name, "")
		c.reBody = codec.AppendEvent(c.reBody, e, codec.Options{})
		c.reBody = append(c.reBody, '\n')
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return
	}
	c.reOff = append(c.reOff, len(c.reBody))
	c.n.resent.Add(int64(len(sent)))
	c.n.resends.Add(1)
	items, err := c.bulkSplit(ctx, c.reBody, c.reOff)
	for k, i := range sent {
		switch {
		case err != nil:
			b.Retry(i)
			c.n.retried.Add(1)
		case items == nil:
			handle(i, itemResult{Status: http.StatusCreated})
		default:
			handle(i, items[k])
		}
	}
}

// bulkSplit sends the actions of body that start at off[0], off[1], ...
// (off ends with the end of the last one). A request the cluster refuses
// as too large (413, above http.max_content_length) is sent again in two
// halves, down to single actions; an action too large on its own gets a
// typeTooLarge result, for non_indexable_policy. The results are in action
// order; nil means every action succeeded.
func (c *Client) bulkSplit(ctx context.Context, body []byte, off []int) ([]itemResult, error) {
	n := len(off) - 1
	items, err := c.bulk(ctx, body[off[0]:off[n]], n)
	if !errors.Is(err, errTooLarge) {
		return items, err
	}
	if n == 1 {
		return []itemResult{{Status: http.StatusRequestEntityTooLarge, Type: typeTooLarge,
			Reason: fmt.Sprintf("the event alone makes a bulk request of %d bytes, more than the cluster accepts (http.max_content_length)", off[1]-off[0])}}, nil
	}
	c.logLimited("split", "Elasticsearch refused a bulk request as too large (413); sending it in halves until it fits",
		"events", n, "bytes", off[n]-off[0], "fix", "lower bulk_max_size, or raise http.max_content_length on the cluster")
	mid := n / 2
	left, err := c.bulkSplit(ctx, body, off[:mid+1])
	if err != nil {
		return nil, err
	}
	// An error on the second half retries the first too; its actions
	// are creates with fixed ids, so they come back as 409s.
	right, err := c.bulkSplit(ctx, body, off[mid:])
	if err != nil {
		return nil, err
	}
	if left == nil && right == nil {
		return nil, nil
	}
	return append(allStored(left, mid), allStored(right, n-mid)...), nil
}

// allStored returns items, or n successes for a nil (error-free) reply.
func allStored(items []itemResult, n int) []itemResult {
	if items != nil {
		return items
	}
	out := make([]itemResult, n)
	for i := range out {
		out[i].Status = http.StatusCreated
	}
	return out
}

// explainRetry logs, once per reason per minute, why events are kept and
// what would end it, naming the index of the first event concerned.
func (c *Client) explainRetry(e *pipeline.Event, it itemResult) {
	key := fmt.Sprintf("retry:%d:%s", it.Status, it.Type)
	if !c.shouldLog(key) {
		return
	}
	index := c.target(e)
	level, msg, fix := slog.LevelWarn, "", ""
	switch {
	case it.Type == "cluster_block_exception":
		msg = "index " + index + " has a write block; events are kept and retried"
		fix = "lift the block named in the error: index.blocks.write or index.blocks.read_only of the index, or cluster.blocks.read_only"
	case it.Type == "security_exception":
		msg = "the output's user may not write to " + index + "; events are kept and retried"
		fix = "grant the user's role the create_doc and auto_configure index privileges on " + index
	case it.Status == http.StatusTooManyRequests:
		level = slog.LevelInfo
		msg = "Elasticsearch pushes back (429) on writes to " + index + "; events are kept and retried with backoff"
		fix = "none if it passes; otherwise give the cluster capacity or lower worker and bulk_max_size"
	case it.Status >= 500:
		msg = fmt.Sprintf("Elasticsearch failed to store events in %s (status %d); events are kept and retried", index, it.Status)
		fix = "see error and the cluster's logs"
	default:
		msg = fmt.Sprintf("Elasticsearch refused events for %s with an error this output does not know (status %d); events are kept and retried", index, it.Status)
		fix = "see error; the events stay queued until its cause is fixed"
	}
	c.log.Log(context.Background(), level, msg, "index", index, "status", it.Status, "error.type", it.Type, "error", it.Reason, "fix", fix)
}

// target names the index or data stream an event goes to, for logs.
func (c *Client) target(e *pipeline.Event) string {
	name, err := c.indexFor(nil, e)
	if err != nil {
		return "(no valid index name)"
	}
	return string(name)
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
	ctx, cancel := context.WithTimeout(withAttempts(ctx), c.cfg.Timeout.D())
	defer cancel()
	req := esapi.BulkRequest{Body: bytes.NewReader(body), FilterPath: bulkFilterPath}
	if c.cfg.CompressionLevel > 0 {
		gz, err := c.gzipBody(body)
		if err != nil {
			return nil, fmt.Errorf("%s: bulk: %w", c.cfg.engine().Name, err)
		}
		req.Body = bytes.NewReader(gz)
		req.Header = http.Header{"Content-Encoding": []string{"gzip"}}
	}
	res, err := req.Do(ctx, c.es)
	if err != nil {
		c.n.writeErrs.Add(1)
		return nil, describeTransportError(c.cfg.engine(), err)
	}
	defer res.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		c.n.readErrs.Add(1)
		return nil, fmt.Errorf("%s: bulk: reading reply: %w", c.cfg.engine().Name, err)
	}
	if res.StatusCode != http.StatusOK {
		if res.StatusCode == http.StatusTooManyRequests {
			c.n.tooMany.Add(int64(n))
		}
		return nil, statusError(c.cfg.engine(), "bulk", res.StatusCode, reply)
	}
	items, err := parseBulkReply(reply, n)
	if err != nil {
		c.n.readErrs.Add(1)
		return nil, fmt.Errorf("%s: bulk: %w", c.cfg.engine().Name, err)
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
		c.logLimited(reason, "dropping event Elasticsearch cannot index (non_indexable_policy: drop); first document's error",
			"index", c.target(&b.Events[nb.i]), "status", nb.status, "error.type", nb.typ, "error", nb.message)
	}
}

// deadLetterMax is how much of an event too large to send (413) its dead
// letter keeps: the whole event would be refused again.
const deadLetterMax = 4 << 10

// deadLetter stores the refused events as strings with their error in the
// dead-letter index. The action reuses the event's _id, so retrying a
// dead-letter write never stores it twice.
func (c *Client) deadLetter(ctx context.Context, b *pipeline.Batch, bad []nonIndexable) {
	index := []byte(c.cfg.NonIndexablePolicy.Index)
	c.dlBody, c.dlOff = c.dlBody[:0], c.dlOff[:0]
	now := pipeline.Event{Timestamp: time.Now()}
	var doc []byte
	for _, nb := range bad {
		e := &b.Events[nb.i]
		c.dlOff = append(c.dlOff, len(c.dlBody))
		c.dlBody = appendAction(c.dlBody, index, e.ID)
		doc = codec.AppendEvent(doc[:0], e, codec.Options{})
		msg := nb.message
		if nb.typ == typeTooLarge && len(doc) > deadLetterMax {
			msg += fmt.Sprintf("; message holds the first %d of the event's %d bytes", deadLetterMax, len(doc))
			cut := deadLetterMax
			for cut > 0 && !utf8.RuneStart(doc[cut]) {
				cut--
			}
			doc = doc[:cut]
		}
		now.Fields = pipeline.M{
			"message": string(doc),
			"error":   pipeline.M{"type": nb.typ, "message": msg, "status": nb.status},
		}
		if e.ID != "" {
			now.Fields["event"] = pipeline.M{"id": e.ID}
		}
		c.dlBody = codec.AppendEvent(c.dlBody, &now, codec.Options{})
		c.dlBody = append(c.dlBody, '\n')
	}
	c.dlOff = append(c.dlOff, len(c.dlBody))
	items, err := c.bulkSplit(ctx, c.dlBody, c.dlOff)
	for k, nb := range bad {
		it := itemResult{Status: http.StatusCreated}
		if items != nil {
			it = items[k]
		}
		out := classify(it.Status, it.Type)
		switch {
		case err == nil && (out == outStored || out == outDuplicate):
			b.AckDeadLetter(nb.i)
			c.n.deadLettered.Add(1)
			c.logLimited("dead_letter:"+nb.typ, "event Elasticsearch cannot index stored in the dead-letter index; first document's error",
				"index", c.cfg.NonIndexablePolicy.Index, "status", nb.status, "error.type", nb.typ, "error", nb.message)
		case err == nil && out == outNonIndexable:
			// Not even the dead letter can be stored (a mapping of the
			// dead-letter index that refuses it, a limit smaller than
			// its truncated message): retrying would block the queue.
			reason := "non_indexable:" + nb.typ
			b.Drop(nb.i, reason)
			c.n.dropped.Add(1)
			c.logLimited("dead_letter_refused:"+nb.typ, "the dead-letter index refused an event Elasticsearch cannot index; dropping it",
				"index", c.cfg.NonIndexablePolicy.Index, "error.type", nb.typ, "error", nb.message,
				"dead_letter.error.type", it.Type, "dead_letter.error", it.Reason)
		default:
			b.Retry(nb.i)
			c.n.retried.Add(1)
			if out == outBlocked {
				c.n.blocked.Add(1)
			}
			msg := fmt.Sprintf("status %d", it.Status)
			if err != nil {
				msg = err.Error()
			} else {
				msg += ": " + it.Type + ": " + it.Reason
			}
			c.logLimited("dead_letter_failed", "writing to the dead-letter index failed; the events will be retried",
				"index", c.cfg.NonIndexablePolicy.Index, "error", msg)
		}
	}
}

// shouldLog reports whether a line for key is due: the first time, and
// again once logEvery has passed.
func (c *Client) shouldLog(key string) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.logged[key]; ok && now.Sub(last) < c.logEvery {
		return false
	}
	c.logged[key] = now
	return true
}

func (c *Client) logLimited(key, msg string, args ...any) {
	if c.shouldLog(key) {
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
		return fmt.Errorf("%s: installing templates (setup.template.enabled): %w", c.cfg.engine().Name, err)
	}
	c.setup.done = true
	return nil
}

// errTooLarge is a whole request refused with 413.
var errTooLarge = errors.New("request too large")

// statusError describes a non-2xx reply to a whole request.
func statusError(eng *Engine, what string, status int, body []byte) error {
	name := eng.Name
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	switch status {
	case http.StatusUnauthorized:
		return fmt.Errorf("%s: %s: 401 authentication failed: check username/password or api_key: %s", name, what, msg)
	case http.StatusForbidden:
		return fmt.Errorf("%s: %s: 403 the user lacks a privilege: %s", name, what, msg)
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%s: %s: 413 %w: lower bulk_max_size (http.max_content_length of the cluster)", name, what, errTooLarge)
	}
	return fmt.Errorf("%s: %s: status %d: %s", name, what, status, msg)
}

// describeTransportError turns the client's errors into messages that say
// what to check.
func describeTransportError(eng *Engine, err error) error {
	s, name := err.Error(), eng.Name
	switch {
	case isWrongProduct(err):
		pe, _ := productErrorOf(eng, "", err)
		return fmt.Errorf("%s: %w", name, pe)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "timeout"):
		return fmt.Errorf("%s: request timed out (timeout setting): %w", name, err)
	case strings.Contains(s, "x509:") || strings.Contains(s, "tls:"):
		return fmt.Errorf("%s: TLS error: check ssl.certificate_authorities and ssl.verification_mode: %w", name, err)
	case strings.Contains(s, "connection refused"):
		return fmt.Errorf("%s: host unreachable (connection refused): %w", name, err)
	}
	return fmt.Errorf("%s: request failed: %w", name, err)
}

// gzipBody compresses a bulk body into a buffer of its own: net/http may
// go on writing a request body after the reply came (an early 413), so an
// output buffer is never reused; only the compressor is.
func (s *shared) gzipBody(body []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(body)/4 + 64)
	zw, _ := s.gzips.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(&out, s.cfg.CompressionLevel); err != nil {
			return nil, fmt.Errorf("gzip level %d: %w", s.cfg.CompressionLevel, err)
		}
	} else {
		zw.Reset(&out)
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	zw.Reset(nil)
	s.gzips.Put(zw)
	return out.Bytes(), nil
}
