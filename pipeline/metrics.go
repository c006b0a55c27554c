package pipeline

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Metrics is the registry of counters and gauges the agent reports on
// /stats, /metrics and in the periodic metrics log line. Names are dotted
// ("pipeline.events.acked"); a label (one key, one value) splits a counter
// into a family such as dropped events per reason.
type Metrics struct {
	mu       sync.Mutex
	counters map[string]*atomic.Int64
	gauges   map[string]func() int64
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics {
	return &Metrics{counters: map[string]*atomic.Int64{}, gauges: map[string]func() int64{}}
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
