package elasticsearch

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/fleutan/fleutanbeat/config/tlscfg"
)

// newESClient builds the go-elasticsearch client: round-robin over hosts,
// a failed connection marked dead and the request moved to the next host,
// product check on (it runs on the first successful answer).
func newESClient(c Config, userAgent string) (*es.Client, error) {
	client, _, err := newESClientTransport(c, userAgent, nil)
	return client, err
}

// newESClientTransport is newESClient that also returns its HTTP
// transport; hosts, when set, counts the requests per host.
func newESClientTransport(c Config, userAgent string, hosts *hostStats) (*es.Client, *http.Transport, error) {
	addrs := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		u, err := hostURL(h)
		if err != nil {
			return nil, nil, err
		}
		addrs[i] = u.String()
	}
	tr, err := newHTTPTransport(c)
	if err != nil {
		return nil, nil, err
	}
	header := http.Header{}
	for k, v := range c.Headers {
		header.Set(k, v)
	}
	if userAgent != "" {
		header.Set("User-Agent", userAgent)
	}
	var rt http.RoundTripper = tr
	if hosts != nil {
		rt = countingTransport{rt: tr, s: hosts}
	}
	ec := es.Config{
		Addresses: addrs,
		Username:  c.Username,
		Password:  c.Password,
		Header:    header,
		Transport: rt,
		// Status codes are the output's to judge (per item and per
		// request); the transport only moves on after network errors.
		RetryOnStatus: []int{-1},
	}
	if c.APIKey != "" {
		// The ApiKey scheme carries base64(id:key) (Elasticsearch
		// security API, "Create API key": the "encoded" value).
		ec.APIKey = base64.StdEncoding.EncodeToString([]byte(c.APIKey))
	}
	// Bulk bodies are gzipped by the Client (gzipBody), not by the
	// transport: go-elasticsearch's compression always uses a pooled
	// buffer that goes back to its pool when Perform returns, while
	// net/http may still be writing the body (a server that answers
	// before reading it all, as Elasticsearch does with 413); the next
	// request's compression then overwrote a body in flight, which the
	// race detector caught in the 413 test.
	if len(addrs) == 1 {
		// One host: the pipeline's retry with backoff is the only retry.
		ec.DisableRetry = true
	} else {
		ec.MaxRetries = len(addrs) - 1
	}
	client, err := es.NewClient(ec)
	if err != nil {
		return nil, nil, fmt.Errorf("elasticsearch: client: %w", err)
	}
	return client, tr, nil
}

func newHTTPTransport(c Config) (*http.Transport, error) {
	tlsCfg, err := tlsConfig(c.SSL)
	if err != nil {
		return nil, err
	}
	proxy := http.ProxyFromEnvironment
	if c.ProxyURL != "" {
		u, err := url.Parse(c.ProxyURL)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: proxy_url: %w", err)
		}
		proxy = http.ProxyURL(u)
	}
	timeout := c.Timeout.D()
	return &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: min(timeout, 30*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   min(timeout, 30*time.Second),
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   c.Worker + 2,
		IdleConnTimeout:       60 * time.Second,
		ForceAttemptHTTP2:     false,
	}, nil
}

// tlsConfig builds the client TLS settings (config/tlscfg), its errors
// naming the output.
func tlsConfig(s tlscfg.Config) (*tls.Config, error) {
	tc, err := s.Build()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	return tc, nil
}

// countBytes makes tr count the bytes of its connections, as
// libbeat.output.write.bytes and read.bytes: HTTP headers, compressed
// bodies and TLS records included, what the network carries.
func countBytes(tr *http.Transport, written, read *atomic.Int64) {
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, written: written, read: read}, nil
	}
}

type countingConn struct {
	net.Conn
	written, read *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
