package elasticsearch

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	es "github.com/elastic/go-elasticsearch/v8"
)

// Transport is what the output needs from an engine's client: a request
// sent to one of the hosts, moved to another after a connection error.
// go-elasticsearch's and opensearch-go's clients both are one, and so is
// what esapi requests take.
type Transport interface {
	Perform(*http.Request) (*http.Response, error)
}

// ClientOptions is what an Engine's Connect gets to build its client.
type ClientOptions struct {
	Addresses          []string
	Username, Password string
	// APIKey is the encoded id:key (empty when not configured).
	APIKey    string
	Header    http.Header
	Transport http.RoundTripper
	// Retries is how many other hosts a request may go to after a
	// connection error; 0 is none. Status codes are never retried by the
	// client: they are the output's to judge, per item and per request.
	Retries int
}

// Engine is what differs between the servers this package writes to: the
// client library, the product check, the names in counters and messages.
// Everything else (bulk bodies, item outcomes, the dead-letter path,
// templates, backoff) is one code for all engines.
type Engine struct {
	// Name is the output's name (output.NAME) and its counters' prefix.
	Name string
	// Product names the server in messages.
	Product string
	// APIKeys says whether the server takes api_key authentication.
	APIKeys bool
	// TimeSeries says whether the server has time series data streams
	// (index.mode: time_series and the time_series_* mapping parameters);
	// without them setup.template.index_mode has no effect and every data
	// stream is a standard one.
	TimeSeries bool
	// Connect builds the client.
	Connect func(ClientOptions) (Transport, error)
	// OtherProduct, when set, tells an answer of another product, which
	// the request then fails on; it runs on every answer.
	// (go-elasticsearch checks its own product.)
	OtherProduct func(*http.Response) bool
	// Identify tells from a successful answer whether it came from this
	// engine's product; false fails `test output` at once.
	Identify func(*http.Response) bool
}

// Elasticsearch is the engine of output.elasticsearch.
var Elasticsearch = &Engine{
	Name:       "elasticsearch",
	Product:    "Elasticsearch",
	APIKeys:    true,
	TimeSeries: true,
	Connect:    connectElasticsearch,
	Identify: func(res *http.Response) bool {
		return res.Header.Get("X-Elastic-Product") == "Elasticsearch"
	},
}

func connectElasticsearch(o ClientOptions) (Transport, error) {
	ec := es.Config{
		Addresses: o.Addresses,
		Username:  o.Username,
		Password:  o.Password,
		APIKey:    o.APIKey,
		Header:    o.Header,
		Transport: o.Transport,
		// Status codes are the output's to judge (per item and per
		// request); the transport only moves on after network errors.
		RetryOnStatus: []int{-1},
	}
	// Bulk bodies are gzipped by the Client (gzipBody), not by the
	// transport: go-elasticsearch's compression always uses a pooled
	// buffer that goes back to its pool when Perform returns, while
	// net/http may still be writing the body (a server that answers
	// before reading it all, as Elasticsearch does with 413); the next
	// request's compression then overwrote a body in flight, which the
	// race detector caught in the 413 test.
	if o.Retries == 0 {
		ec.DisableRetry = true
	} else {
		ec.MaxRetries = o.Retries
	}
	return es.NewClient(ec)
}

// engine is the configured engine, Elasticsearch unless an output set
// another.
func (c Config) engine() *Engine {
	if c.Engine != nil {
		return c.Engine
	}
	return Elasticsearch
}

// ErrWrongProduct is the error of a server of another product than the
// output's: a configuration that can never work, which `run` stops on.
var ErrWrongProduct = errors.New("product check failed")

// productError is the product check's failure: errors.Is it
// ErrWrongProduct, and errors.As finds it under a client's wrapping.
type productError struct{ msg string }

func (e *productError) Error() string        { return ErrWrongProduct.Error() + ": " + e.msg }
func (e *productError) Is(target error) bool { return target == ErrWrongProduct }

// WrongProduct is the error of the engine's output meeting another
// product at host, naming the output that fits the server.
func WrongProduct(eng *Engine, host string) error {
	at := ""
	if host != "" {
		at = " at " + host
	}
	if eng.Name == Elasticsearch.Name {
		return &productError{fmt.Sprintf("the server%s is not Elasticsearch (its answers carry no X-Elastic-Product header); "+
			"for OpenSearch use output.opensearch instead of output.elasticsearch", at)}
	}
	return &productError{fmt.Sprintf("the server%s is Elasticsearch, not %s (it answers with X-Elastic-Product: Elasticsearch); "+
		"use output.elasticsearch instead of output.%s", at, eng.Product, eng.Name)}
}

// productErrorOf is the product check's failure in a client error, as
// one message whichever client found it: ours unwrapped from the client's
// wrapping, go-elasticsearch's (which names no host) as WrongProduct.
func productErrorOf(eng *Engine, host string, err error) (error, bool) {
	if err == nil {
		return nil, false
	}
	var pe *productError
	if errors.As(err, &pe) {
		return pe, true
	}
	if isWrongProduct(err) {
		return WrongProduct(eng, host), true
	}
	return nil, false
}

// isWrongProduct recognizes the product check's failure in a client
// error: ours by errors.Is, go-elasticsearch's by its message.
func isWrongProduct(err error) bool {
	if errors.Is(err, ErrWrongProduct) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "not Elasticsearch") || strings.Contains(s, "unknown product") || strings.Contains(s, ErrWrongProduct.Error())
}
