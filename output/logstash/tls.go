package logstash

import (
	"crypto/tls"

	"github.com/fleutan/fleutanbeat/config/tlscfg"
)

// TLSConfig is the `ssl` sub-section: Beats' shared ssl keys and, as in
// Beats' Logstash output, `enabled`.
type TLSConfig struct {
	// Enabled defaults to true when any other ssl key is set, as in Beats.
	Enabled       *bool `yaml:"enabled"`
	tlscfg.Config `yaml:",inline"`
}

// DefaultTLSConfig returns an unset section: TLS is off.
func DefaultTLSConfig() TLSConfig { return TLSConfig{} }

// IsEnabled reports whether connections use TLS.
func (c TLSConfig) IsEnabled() bool {
	if c.Enabled != nil {
		return *c.Enabled
	}
	return c.IsSet()
}

// BuildTLS returns the client TLS configuration, or nil when TLS is off.
// serverName is set per connection by the dialer.
func (c TLSConfig) BuildTLS() (*tls.Config, error) {
	if !c.IsEnabled() {
		return nil, nil
	}
	return c.Build()
}
