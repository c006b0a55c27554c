package elasticsearch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
)

// newESClient builds the go-elasticsearch client: round-robin over hosts,
// a failed connection marked dead and the request moved to the next host,
// product check on (it runs on the first successful answer).
func newESClient(c Config, userAgent string) (*es.Client, error) {
	client, _, err := newESClientTransport(c, userAgent)
	return client, err
}

func newESClientTransport(c Config, userAgent string) (*es.Client, *http.Transport, error) {
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
	ec := es.Config{
		Addresses: addrs,
		Username:  c.Username,
		Password:  c.Password,
		Header:    header,
		Transport: tr,
		// Status codes are the output's to judge (per item and per
		// request); the transport only moves on after network errors.
		RetryOnStatus: []int{-1},
	}
	if c.APIKey != "" {
		// The ApiKey scheme carries base64(id:key) (Elasticsearch
		// security API, "Create API key": the "encoded" value).
		ec.APIKey = base64.StdEncoding.EncodeToString([]byte(c.APIKey))
	}
	if c.CompressionLevel > 0 {
		ec.CompressRequestBody = true
		ec.CompressRequestBodyLevel = c.CompressionLevel
		ec.PoolCompressor = true
	}
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

// tlsConfig builds the client TLS settings. verification_mode certificate
// checks the chain but not the host name: Go has no switch for that, so
// the chain is verified by hand in VerifyConnection.
func tlsConfig(s SSLConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(s.CertificateAuthorities) > 0 {
		pool := x509.NewCertPool()
		for _, ca := range s.CertificateAuthorities {
			pem, err := readPEM(ca)
			if err != nil {
				return nil, fmt.Errorf("elasticsearch: ssl.certificate_authorities: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("elasticsearch: ssl.certificate_authorities: %s holds no PEM certificate", shortPEM(ca))
			}
		}
		cfg.RootCAs = pool
	}
	if s.Certificate != "" {
		certPEM, err := readPEM(s.Certificate)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: ssl.certificate: %w", err)
		}
		keyPEM, err := readPEM(s.Key)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: ssl.key: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: ssl.certificate/ssl.key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	switch s.VerificationMode {
	case "none":
		cfg.InsecureSkipVerify = true
	case "certificate":
		cfg.InsecureSkipVerify = true
		roots := cfg.RootCAs
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg, nil
}

// readPEM takes inline PEM or a file path, as Beats does.
func readPEM(s string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return []byte(s), nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func shortPEM(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return "inline PEM"
	}
	return s
}
