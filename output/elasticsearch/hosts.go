package elasticsearch

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// Per-host counters in pipeline.Metrics, labeled host="HOST:PORT": what a
// multi-host output did while nodes went away. Requests counts the HTTP
// requests sent to the host (bulk and setup alike); ConnErrors those that
// failed without an answer (refused or reset connection, timeout), after
// which the client marks the host dead for a while and moves the request
// to the next host. Failovers counts those moves: a request sent again to
// another host after a connection error, within one bulk attempt.
const (
	MetricHostRequests   = "output.elasticsearch.host.requests"
	MetricHostConnErrors = "output.elasticsearch.host.connection_errors"
	MetricFailovers      = "output.elasticsearch.failovers"
)

type hostCounters struct{ requests, connErrors *atomic.Int64 }

// hostStats holds the per-host counters; hosts first seen in a request
// (none, unless the client sniffs) are added then.
type hostStats struct {
	m         *pipeline.Metrics
	eng       *Engine
	failovers *atomic.Int64
	mu        sync.Mutex
	hosts     map[string]hostCounters
}

func newHostStats(m *pipeline.Metrics, eng *Engine, hosts []string) *hostStats {
	if m == nil {
		m = pipeline.NewMetrics()
	}
	s := &hostStats{m: m, eng: eng, failovers: m.Counter(MetricName(eng, MetricFailovers)), hosts: map[string]hostCounters{}}
	for _, h := range hosts {
		if u, err := hostURL(h); err == nil {
			s.host(u.Host)
		}
	}
	return s
}

func (s *hostStats) host(h string) hostCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.hosts[h]
	if !ok {
		c = hostCounters{
			requests:   s.m.LabeledCounter(MetricName(s.eng, MetricHostRequests), "host", h),
			connErrors: s.m.LabeledCounter(MetricName(s.eng, MetricHostConnErrors), "host", h),
		}
		s.hosts[h] = c
	}
	return c
}

// attempts follows one request through the client's retries on other
// hosts: go-elasticsearch sends them one after another with the request's
// context, so no lock is needed.
type attempts struct{ failedOn string }

type attemptsKey struct{}

// withAttempts marks ctx so that the transport can tell a failover from a
// first attempt.
func withAttempts(ctx context.Context) context.Context {
	return context.WithValue(ctx, attemptsKey{}, &attempts{})
}

// countingTransport counts each request and its connection error under
// its host.
type countingTransport struct {
	rt http.RoundTripper
	s  *hostStats
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	c := t.s.host(host)
	c.requests.Add(1)
	a, _ := req.Context().Value(attemptsKey{}).(*attempts)
	if a != nil {
		if a.failedOn != "" && a.failedOn != host {
			t.s.failovers.Add(1)
		}
		a.failedOn = ""
	}
	res, err := t.rt.RoundTrip(req)
	// A request its caller gave up on (the agent stopping, the bulk
	// timeout) says nothing about the host.
	if err != nil && req.Context().Err() == nil {
		c.connErrors.Add(1)
		if a != nil {
			a.failedOn = host
		}
	}
	return res, err
}
