// Package tlscfg is the `ssl` sub-section that the Elasticsearch and
// Logstash outputs and setup.kibana share, with Beats' keys, and the client
// tls.Config it builds.
package tlscfg

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
)

// Config is an `ssl` sub-section. Its zero value verifies the server
// against the system roots, chain and host name.
type Config struct {
	// CertificateAuthorities are PEM files, or PEM text inline, trusted
	// instead of the system roots.
	CertificateAuthorities []string `yaml:"certificate_authorities"`
	// Certificate and Key are the client certificate for servers that
	// require one (PEM file or inline PEM).
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	// VerificationMode is full (chain and host name, the default; strict
	// is accepted as its Beats synonym), certificate (chain only) or none
	// (encryption without authentication).
	VerificationMode   string   `yaml:"verification_mode"`
	SupportedProtocols []string `yaml:"supported_protocols"`
}

var versions = map[string]uint16{
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

// IsSet reports whether any key is set.
func (c Config) IsSet() bool {
	return len(c.CertificateAuthorities) > 0 || c.Certificate != "" || c.Key != "" ||
		c.VerificationMode != "" || len(c.SupportedProtocols) > 0
}

// Validate checks the values without reading files (Build reports
// unreadable or invalid files at start-up). Keys are relative to the
// section; config.Prefix puts them under it.
func (c Config) Validate() error {
	var errs []error
	switch c.VerificationMode {
	case "", "full", "strict", "certificate", "none":
	default:
		errs = append(errs, config.Errorf("verification_mode", "%q is not one of full, strict, certificate, none", c.VerificationMode))
	}
	if (c.Certificate == "") != (c.Key == "") {
		errs = append(errs, config.Errorf("certificate", "certificate and key must be set together"))
	}
	for i, p := range c.SupportedProtocols {
		if _, ok := versions[p]; !ok {
			errs = append(errs, config.Errorf(fmt.Sprintf("supported_protocols.%d", i), "%q is not supported (use TLSv1.2 or TLSv1.3)", p))
		}
	}
	return errors.Join(errs...)
}

// Build returns the client TLS configuration; the server name is left to
// the dialer. Errors name the ssl.* key.
func (c Config) Build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(c.SupportedProtocols) > 0 {
		tc.MinVersion, tc.MaxVersion = tls.VersionTLS13, tls.VersionTLS12
		for _, p := range c.SupportedProtocols {
			v := versions[p]
			tc.MinVersion, tc.MaxVersion = min(tc.MinVersion, v), max(tc.MaxVersion, v)
		}
	}
	if len(c.CertificateAuthorities) > 0 {
		pool := x509.NewCertPool()
		for _, ca := range c.CertificateAuthorities {
			b, err := pemOrFile(ca)
			if err != nil {
				return nil, fmt.Errorf("ssl.certificate_authorities: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("ssl.certificate_authorities: %s holds no PEM certificate", shortPEM(ca))
			}
		}
		tc.RootCAs = pool
	}
	if c.Certificate != "" {
		cert, err := pemOrFile(c.Certificate)
		if err != nil {
			return nil, fmt.Errorf("ssl.certificate: %w", err)
		}
		key, err := pemOrFile(c.Key)
		if err != nil {
			return nil, fmt.Errorf("ssl.key: %w", err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("ssl.certificate/ssl.key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	switch c.VerificationMode {
	case "none":
		tc.InsecureSkipVerify = true
	case "certificate":
		// Go verifies chain and name together; to check the chain alone
		// the built-in check is turned off and redone without the name.
		tc.InsecureSkipVerify = true
		roots := tc.RootCAs
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs.PeerCertificates, roots)
		}
	}
	return tc, nil
}

func verifyChain(certs []*x509.Certificate, roots *x509.CertPool) error {
	if len(certs) == 0 {
		return errors.New("tls: server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// pemOrFile returns inline PEM as is and reads anything else as a path, as
// Beats does.
func pemOrFile(s string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return []byte(s), nil
	}
	return os.ReadFile(s)
}

// shortPEM names a value in errors without dumping inline PEM.
func shortPEM(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return "inline PEM"
	}
	return s
}
