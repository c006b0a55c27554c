// Package opensearch is output.opensearch: output.elasticsearch's options,
// semantics and counters (under output.opensearch.*) for an OpenSearch
// cluster. Only the client differs: opensearch-go instead of
// go-elasticsearch, whose product check refuses OpenSearch, and a check of
// its own that refuses Elasticsearch. Bulk bodies, item outcomes, the
// dead-letter path, templates and backoff are output/elasticsearch's.
package opensearch

import (
	"context"
	"io"
	"net/http"

	osgo "github.com/opensearch-project/opensearch-go/v4"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
)

// Engine is OpenSearch for output/elasticsearch.
var Engine = &elasticsearch.Engine{
	Name:    "opensearch",
	Product: "OpenSearch",
	// The security plugin has no API keys of Elasticsearch's kind.
	APIKeys:      false,
	Connect:      connect,
	OtherProduct: isElasticsearch,
	Identify:     func(res *http.Response) bool { return !isElasticsearch(res) },
}

// Config is the `output.opensearch` section: the keys of
// output.elasticsearch, except api_key.
type Config = elasticsearch.Config

// New is the output.Factory for `output.opensearch`.
func New(raw config.Raw, s output.Settings) (output.Group, error) {
	c, err := DecodeWithSetup(raw, s.Setup)
	if err != nil {
		return output.Group{}, err
	}
	return elasticsearch.NewGroup(c, s)
}

// DecodeWithSetup decodes `output.opensearch` and `setup.template`.
func DecodeWithSetup(raw, setup config.Raw) (Config, error) {
	return elasticsearch.DecodeWithSetupFor(Engine, raw, setup)
}

// DefaultConfig is output.elasticsearch's defaults for OpenSearch.
func DefaultConfig() Config {
	c := elasticsearch.DefaultConfig()
	c.Engine = Engine
	return c
}

// TestOutput checks every host for `test output`.
func TestOutput(ctx context.Context, c Config, w io.Writer) error {
	c.Engine = Engine
	return elasticsearch.TestOutput(ctx, c, w)
}

// isElasticsearch: Elasticsearch names itself in a header on every answer
// since 7.14, which go-elasticsearch's product check reads too.
func isElasticsearch(res *http.Response) bool {
	return res.Header.Get("X-Elastic-Product") != ""
}

func connect(o elasticsearch.ClientOptions) (elasticsearch.Transport, error) {
	noDiscovery := false
	c, err := osgo.NewClient(osgo.Config{
		Addresses: o.Addresses,
		Username:  o.Username,
		Password:  o.Password,
		Header:    o.Header,
		Transport: o.Transport,
		// Status codes are the output's to judge, as for Elasticsearch;
		// an empty, non-nil list turns off the client's 502/503/504
		// retries.
		RetryOnStatus: []int{},
		DisableRetry:  o.Retries == 0,
		MaxRetries:    o.Retries,
		// No requests of the client's own: the per-host counters and
		// the tests count what the output sends. A host that failed is
		// tried again after the client's resurrect timeout.
		HealthCheckMaxRetries: -1,
		MaxRetryClusterHealth: -1,
		DiscoverNodesOnStart:  &noDiscovery,
	})
	if err != nil {
		return nil, err
	}
	return streamer{c}, nil
}

// streamer sends requests with Stream, which hands the body over as it
// comes (Perform reads it into a copy first, and is deprecated).
type streamer struct{ c *osgo.Client }

func (s streamer) Perform(req *http.Request) (*http.Response, error) {
	res, err := s.c.Stream(req)
	if err != nil && res != nil {
		// Stream may return both; the output reads one or the other.
		res.Body.Close()
		res = nil
	}
	return res, err
}
