package qdiscinput

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input/qdisc"
)

// Config is the qdisc input's section of fleutanbeat.inputs.
type Config struct {
	Period config.Duration `yaml:"period"`
	// Devices are shell patterns (path.Match) of device names; empty
	// means every device except loopbacks. A loopback is kept when a
	// pattern names it.
	Devices []string `yaml:"devices"`
	// Namespaces is "host" (the agent's network namespace) or "all".
	Namespaces string `yaml:"namespaces"`
	// FlowAttribution is auto (eBPF when the kernel allows it, else
	// none), ebpf (fail at start without it) or off.
	FlowAttribution string `yaml:"flow_attribution"`
	// TopFlowsPerQueue bounds the flow events per TX queue and period;
	// the rest are summed into one "other" event.
	TopFlowsPerQueue int `yaml:"top_flows_per_queue"`
}

// Namespace selections.
const (
	NamespacesHost = "host"
	NamespacesAll  = "all"
)

// Flow attribution modes.
const (
	AttributionAuto = "auto"
	AttributionEBPF = "ebpf"
	AttributionOff  = "off"
)

// DefaultConfig is the configuration of an input section that sets nothing.
func DefaultConfig() Config {
	return Config{
		Period:           config.Duration(10 * time.Second),
		Namespaces:       NamespacesHost,
		FlowAttribution:  AttributionAuto,
		TopFlowsPerQueue: 20,
	}
}

// Validate checks the values; it does not touch the system.
func (c *Config) Validate() error {
	var errs []error
	if c.Period.D() <= 0 {
		errs = append(errs, config.Errorf("period", "must be positive, got %s", c.Period.D()))
	}
	for i, d := range c.Devices {
		if _, err := path.Match(d, ""); err != nil || d == "" {
			errs = append(errs, config.Errorf(fmt.Sprintf("devices.%d", i), "%q is not a device name or shell pattern (use eth0, veth*, enp[0-9]s*)", d))
		}
	}
	if c.Namespaces != NamespacesHost && c.Namespaces != NamespacesAll {
		errs = append(errs, config.Errorf("namespaces", "%q is not a namespace selection (use host or all)", c.Namespaces))
	}
	switch c.FlowAttribution {
	case AttributionAuto, AttributionEBPF, AttributionOff:
	default:
		errs = append(errs, config.Errorf("flow_attribution", "%q is not an attribution mode (use auto, ebpf or off)", c.FlowAttribution))
	}
	if c.TopFlowsPerQueue <= 0 {
		errs = append(errs, config.Errorf("top_flows_per_queue", "must be positive, got %d", c.TopFlowsPerQueue))
	}
	return errors.Join(errs...)
}

// matchDevice reports whether the device is selected.
func (c *Config) matchDevice(name string, loopback bool) bool {
	return qdisc.MatchDevice(c.Devices, name, loopback)
}
