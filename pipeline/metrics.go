package pipeline

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Metrics is the registry of counters, gauges and texts the agent reports
// on /stats, /metrics, in the periodic metrics log line and in the stop
// summary. Names are dotted ("pipeline.events.acked"); a label (one key,
// one value) splits a counter into a family such as dropped events per
// reason. Adding a counter is one Counter call with its name: every view
// shows it from then on.
type Metrics struct {
	mu       sync.Mutex
	counters map[string]*atomic.Int64
	gauges   map[string]func() int64
	texts    map[string]*Text
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics {
	return &Metrics{counters: map[string]*atomic.Int64{}, gauges: map[string]func() int64{}, texts: map[string]*Text{}}
}

// The active output's counters, named as in Beats' monitoring
// (libbeat.output.*) whatever the output. The pipeline's workers count the
// events' outcomes; each output counts what only it sees (bytes, I/O
// errors, 429 replies) under the same prefix.
const (
	// Type is the output's name ("elasticsearch").
	MetricOutputType = "libbeat.output.type"
	// Batches is the number of Publish calls, retries included; Total the
	// events handed over in them.
	MetricOutputBatches = "libbeat.output.events.batches"
	MetricOutputTotal   = "libbeat.output.events.total"
	// Active is a gauge: events inside a Publish call now.
	MetricOutputActive = "libbeat.output.events.active"
	// Every event handed over ends in exactly one of these, so once the
	// workers are idle Total = Acked + Duplicates + DeadLetter + Dropped +
	// Failed. Acked
	// counts events the destination newly stored; Duplicates those it
	// already had (Elasticsearch 409); DeadLetter events stored in the
	// dead-letter index instead; Dropped events refused for good; Failed
	// events to be sent again (each retry counts in Total again).
	MetricOutputAcked      = "libbeat.output.events.acked"
	MetricOutputDuplicates = "libbeat.output.events.duplicates"
	MetricOutputDeadLetter = "libbeat.output.events.dead_letter"
	MetricOutputDropped    = "libbeat.output.events.dropped"
	MetricOutputFailed     = "libbeat.output.events.failed"
	// TooMany counts events refused with 429 Too Many Requests.
	MetricOutputTooMany = "libbeat.output.events.toomany"
	// Bytes on the wire (or into the file), and I/O errors, as the
	// output counts them.
	MetricOutputWriteBytes  = "libbeat.output.write.bytes"
	MetricOutputWriteErrors = "libbeat.output.write.errors"
	MetricOutputReadBytes   = "libbeat.output.read.bytes"
	MetricOutputReadErrors  = "libbeat.output.read.errors"
	// Latency of Publish calls in microseconds: the sum over all calls
	// (divide by batches for the mean) and the longest one.
	MetricOutputLatencySum = "libbeat.output.write.latency_us.sum"
	MetricOutputLatencyMax = "libbeat.output.write.latency_us.max"
)

// Text is a metric whose value is a word, such as the method an input
// measures with; empty texts are not reported.
type Text struct{ v atomic.Pointer[string] }

// Set changes the value.
func (t *Text) Set(s string) { t.v.Store(&s) }

// Load returns the value, "" when unset.
func (t *Text) Load() string {
	if p := t.v.Load(); p != nil {
		return *p
	}
	return ""
}

// Counter returns the counter with the given name, creating it at zero. Keep
// the pointer: lookups take a lock.
func (m *Metrics) Counter(name string) *atomic.Int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.counters[name]
	if !ok {
		c = new(atomic.Int64)
		m.counters[name] = c
	}
	return c
}

// LabeledCounter is Counter for one member of a family: name{label="value"}.
func (m *Metrics) LabeledCounter(name, label, value string) *atomic.Int64 {
	return m.Counter(name + "{" + label + "=" + value + "}")
}

// Text returns the text metric with the given name, creating it unset.
func (m *Metrics) Text(name string) *Text {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.texts[name]
	if !ok {
		t = new(Text)
		m.texts[name] = t
	}
	return t
}

// Gauge registers a function read at snapshot time.
func (m *Metrics) Gauge(name string, fn func() int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gauges[name] = fn
}

// Sample is one value of a snapshot.
type Sample struct {
	Name  string // dotted name without label
	Label string // label key, "" when unlabeled
	Value string // label value
	N     int64
	Gauge bool
	// Text is the value of a text metric (N is then 0).
	Text   string
	IsText bool
}

// Snapshot returns every metric sorted by name, then label value.
func (m *Metrics) Snapshot() []Sample {
	m.mu.Lock()
	out := make([]Sample, 0, len(m.counters)+len(m.gauges))
	for k, c := range m.counters {
		s := Sample{Name: k, N: c.Load()}
		if i := strings.IndexByte(k, '{'); i > 0 && strings.HasSuffix(k, "}") {
			lv := k[i+1 : len(k)-1]
			if j := strings.IndexByte(lv, '='); j > 0 {
				s.Name, s.Label, s.Value = k[:i], lv[:j], lv[j+1:]
			}
		}
		out = append(out, s)
	}
	gauges := make(map[string]func() int64, len(m.gauges))
	for k, fn := range m.gauges {
		gauges[k] = fn
	}
	for k, t := range m.texts {
		if v := t.Load(); v != "" {
			out = append(out, Sample{Name: k, Text: v, IsText: true})
		}
	}
	m.mu.Unlock()
	// Gauges run outside the lock: they may take locks of their own.
	for k, fn := range gauges {
		out = append(out, Sample{Name: k, N: fn(), Gauge: true})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// Tree renders a snapshot as nested objects for /stats: labeled counters
// become an object keyed by label value under their name.
func (m *Metrics) Tree() M {
	root := M{}
	for _, s := range m.Snapshot() {
		if s.IsText {
			root.Put(s.Name, s.Text)
			continue
		}
		if s.Label == "" {
			root.Put(s.Name, s.N)
			continue
		}
		if s.Value == "" {
			s.Value = "unknown"
		}
		v, _ := root.GetValue(s.Name)
		fam, ok := asM(v)
		if !ok {
			fam = M{}
			root.Put(s.Name, fam)
		}
		fam[s.Value] = s.N
	}
	return root
}
