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

	"github.com/fleutan/fleutanbeat/config/tlscfg"
)

// newClient builds the engine's client: round-robin over hosts, a failed
// connection marked dead and the request moved to the next host, and the
// product check (go-elasticsearch's own for Elasticsearch, the engine's
// CheckResponse otherwise) on the answers.
func newClient(c Config, userAgent string) (Transport, error) {
	client, _, err := newClientTransport(c, userAgent, nil)
	return client, err
}

// newClientTransport is newClient that also returns its HTTP transport;
// hosts, when set, counts the requests per host.
func newClientTransport(c Config, userAgent string, hosts *hostStats) (Transport, *http.Transport, error) {
	eng := c.engine()
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
	if eng.OtherProduct != nil {
		// Outside the counting: a host that answered is no connection
		// error, whatever product it is.
		rt = checkingTransport{rt: rt, eng: eng}
	}
	o := ClientOptions{
		Addresses: addrs,
		Username:  c.Username,
		Password:  c.Password,
		Header:    header,
		Transport: rt,
	}
	if c.APIKey != "" {
		// The ApiKey scheme carries base64(id:key) (Elasticsearch
		// security API, "Create API key": the "encoded" value).
		o.APIKey = base64.StdEncoding.EncodeToString([]byte(c.APIKey))
	}
	// One host: the pipeline's retry with backoff is the only retry.
	o.Retries = len(addrs) - 1
	client, err := eng.Connect(o)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: client: %w", eng.Name, err)
	}
	return client, tr, nil
}

// checkingTransport refuses answers of the wrong product before the
// client reads them.
type checkingTransport struct {
	rt  http.RoundTripper
	eng *Engine
}

func (t checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.rt.RoundTrip(req)
	if err != nil {
		return res, err
	}
	if t.eng.OtherProduct(res) {
		res.Body.Close()
		return nil, WrongProduct(t.eng, req.URL.Host)
	}
	return res, nil
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
