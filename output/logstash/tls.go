package logstash

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
)

// TLSConfig is the `ssl` sub-section, with the keys of Beats' Elasticsearch
// and Logstash outputs.
type TLSConfig struct {
	// Enabled defaults to true when any other ssl key is set, as in Beats.
	Enabled *bool `yaml:"enabled"`
	// CertificateAuthorities are PEM files, or PEM text inline, trusted
	// instead of the system roots.
	CertificateAuthorities []string `yaml:"certificate_authorities"`
	// Certificate and Key are the client certificate for servers that
	// require one (PEM file or inline PEM).
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	// VerificationMode is full (chain and host name, the default),
	// certificate (chain only) or none (encryption without authentication).
	VerificationMode   string   `yaml:"verification_mode"`
	SupportedProtocols []string `yaml:"supported_protocols"`
}

// DefaultTLSConfig returns an unset section: TLS is off.
func DefaultTLSConfig() TLSConfig { return TLSConfig{} }

// IsEnabled reports whether connections use TLS.
func (c TLSConfig) IsEnabled() bool {
	if c.Enabled != nil {
		return *c.Enabled
	}
	return len(c.CertificateAuthorities) > 0 || c.Certificate != "" || c.Key != "" ||
		c.VerificationMode != "" || len(c.SupportedProtocols) > 0
}

var tlsVersions = map[string]uint16{
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

// Validate checks the values without reading files; BuildTLS reports
// unreadable or invalid files at start-up.
func (c TLSConfig) Validate() error {
	var errs []error
	switch c.VerificationMode {
	case "", "full", "strict", "certificate", "none":
	default:
		errs = append(errs, config.Errorf("verification_mode", "%q is not one of full, certificate, none", c.VerificationMode))
	}
	if (c.Certificate == "") != (c.Key == "") {
		errs = append(errs, config.Errorf("certificate", "certificate and key must be set together"))
	}
	for i, p := range c.SupportedProtocols {
		if _, ok := tlsVersions[p]; !ok {
			errs = append(errs, config.Errorf(fmt.Sprintf("supported_protocols.%d", i), "%q is not supported (use TLSv1.2 or TLSv1.3)", p))
		}
	}
	return errors.Join(errs...)
}

// pemOrFile returns inline PEM as is and reads anything else as a path.
func pemOrFile(s string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return []byte(s), nil
	}
	return os.ReadFile(s)
}

// BuildTLS returns the client TLS configuration, or nil when TLS is off.
// serverName is set per connection by the dialer.
func (c TLSConfig) BuildTLS() (*tls.Config, error) {
	if !c.IsEnabled() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(c.SupportedProtocols) > 0 {
		tc.MinVersion, tc.MaxVersion = tls.VersionTLS13, tls.VersionTLS12
		for _, p := range c.SupportedProtocols {
			v := tlsVersions[p]
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

func shortPEM(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return "inline PEM"
	}
	return s
}
