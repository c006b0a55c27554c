package pathsinput

import (
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Interval.D() != 5*time.Minute || c.MaxPeers != 50 || c.ProbesPerHop != 3 || c.MaxTTL != 30 || c.Rate != 20 || c.ProbeTimeout.D() != time.Second || c.Method != "udp" {
		t.Errorf("defaults %+v", c)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"method", func(c *Config) { c.Method = "sctp" }, `method: "sctp" is not udp, icmp or tcp`},
		{"zero interval", func(c *Config) { c.Interval = 0 }, "interval: must be positive, got 0s"},
		{"no peers", func(c *Config) { c.MaxPeers = 0 }, "max_peers: must be positive, got 0"},
		{"probes", func(c *Config) { c.ProbesPerHop = 11 }, "probes_per_hop: must be between 1 and 10, got 11"},
		{"ttl", func(c *Config) { c.MaxTTL = 256 }, "max_ttl: must be between 1 and 255, got 256"},
		{"timeout", func(c *Config) { c.ProbeTimeout = config.Duration(-time.Second) }, "probe_timeout: must be positive, got -1s"},
		{"rate", func(c *Config) { c.Rate = 0 }, "rate: must be positive (packets per second), got 0"},
		{"flow ids", func(c *Config) { c.FlowIDs = 65 }, "flow_ids: must be between 1 and 64, got 65"},
		{"bad cidr", func(c *Config) { c.CIDRs.Include = []string{"10.0.0.0/33"} }, `cidrs.include.0: "10.0.0.0/33" is not a CIDR`},
		{"bad port", func(c *Config) { c.Ports.Exclude = []string{"90-80"} }, `ports.exclude.0: "90-80" is not a port or port range`},
		{"bad regexp", func(c *Config) { c.Processes = []string{"ngin(x"} }, `processes.0: "ngin(x" is not a regular expression`},
		{"bad namespaces", func(c *Config) { c.Namespaces = "some" }, `namespaces: "some" is not a namespace selection`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
