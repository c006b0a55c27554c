package pathsinput

import (
	"errors"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input/flows/flowsinput"
	"github.com/fleutan/fleutanbeat/input/paths"
)

// Config is the paths input's section of fleutanbeat.inputs.
type Config struct {
	// Method is the kind of probe: udp (needs no privilege), icmp (echo
	// requests) or tcp (SYNs to the flow's own destination port); icmp
	// and tcp need CAP_NET_RAW, without which the input logs one line
	// and probes with udp.
	Method string `yaml:"method"`
	// Interval is how often every selected peer is traced again.
	Interval config.Duration `yaml:"interval"`
	// MaxPeers bounds the peers traced per round: those with the most
	// flows first.
	MaxPeers     int             `yaml:"max_peers"`
	ProbesPerHop int             `yaml:"probes_per_hop"`
	MaxTTL       int             `yaml:"max_ttl"`
	ProbeTimeout config.Duration `yaml:"probe_timeout"`
	// Rate is the global budget of probe packets per second.
	Rate float64 `yaml:"rate"`
	// FlowIDs is how many flow identifiers (source ports) each peer is
	// probed with: more find more of the equal-cost next hops.
	FlowIDs int `yaml:"flow_ids"`
	// CIDRs, Ports and Processes select the flows whose peers are traced,
	// as in the flows input. Loopback peers are never traced.
	CIDRs     flowsinput.CIDRFilter `yaml:"cidrs"`
	Ports     flowsinput.PortFilter `yaml:"ports"`
	Processes []string              `yaml:"processes"`
	// Namespaces is "host" or "all", as in the flows input: a peer is
	// traced from the namespace of its flows.
	Namespaces string `yaml:"namespaces"`
}

// DefaultConfig is the configuration of an input section that sets nothing.
func DefaultConfig() Config {
	return Config{
		Method:       string(paths.MethodUDP),
		Interval:     config.Duration(5 * time.Minute),
		MaxPeers:     50,
		ProbesPerHop: 3,
		MaxTTL:       30,
		ProbeTimeout: config.Duration(time.Second),
		Rate:         20,
		FlowIDs:      1,
		Namespaces:   flowsinput.NamespacesHost,
	}
}

// flowsConfig is the flows input's Config with this one's selection,
// whose Validate and Filter check and compile it with the same keys.
func (c *Config) flowsConfig() flowsinput.Config {
	f := flowsinput.DefaultConfig()
	f.CIDRs, f.Ports, f.Processes, f.Namespaces = c.CIDRs, c.Ports, c.Processes, c.Namespaces
	f.IncludeLoopback = false
	return f
}

// Validate checks the values; it does not touch the system.
func (c *Config) Validate() error {
	var errs []error
	if _, err := paths.ParseMethod(c.Method); err != nil {
		errs = append(errs, config.Errorf("method", "%q is not udp, icmp or tcp", c.Method))
	}
	if c.Interval.D() <= 0 {
		errs = append(errs, config.Errorf("interval", "must be positive, got %s", c.Interval.D()))
	}
	if c.MaxPeers <= 0 {
		errs = append(errs, config.Errorf("max_peers", "must be positive, got %d", c.MaxPeers))
	}
	if c.ProbesPerHop < 1 || c.ProbesPerHop > 10 {
		errs = append(errs, config.Errorf("probes_per_hop", "must be between 1 and 10, got %d", c.ProbesPerHop))
	}
	if c.MaxTTL < 1 || c.MaxTTL > 255 {
		errs = append(errs, config.Errorf("max_ttl", "must be between 1 and 255, got %d", c.MaxTTL))
	}
	if c.ProbeTimeout.D() <= 0 {
		errs = append(errs, config.Errorf("probe_timeout", "must be positive, got %s", c.ProbeTimeout.D()))
	}
	if c.Rate <= 0 {
		errs = append(errs, config.Errorf("rate", "must be positive (packets per second), got %g", c.Rate))
	}
	if c.FlowIDs < 1 || c.FlowIDs > 64 {
		errs = append(errs, config.Errorf("flow_ids", "must be between 1 and 64, got %d", c.FlowIDs))
	}
	f := c.flowsConfig()
	if err := f.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
