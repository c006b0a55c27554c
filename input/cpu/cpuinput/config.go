package cpuinput

import (
	"errors"
	"math"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input/cpu"
)

// Config is the cpu input's section of fleutanbeat.inputs.
type Config struct {
	Period config.Duration `yaml:"period"`
	// Processes selects whom to measure: "network" (processes holding a
	// TCP or UDP socket of the agent's network namespace, the owners of
	// the flows input's flows, or an RDMA queue pair) or "all".
	Processes string `yaml:"processes"`
	// MinPct leaves out processes below this fraction of one core over
	// the period (0.05 = 5%), in both selections: the unit of
	// fleutan.cpu.pct.
	MinPct float64 `yaml:"min_pct"`
	// Method is "auto" (eBPF where the kernel allows, else sampling),
	// "ebpf" (fail when it cannot load) or "sampling".
	Method string `yaml:"method"`
	// SampleInterval is the sampling method's period between two reads of
	// every selected thread.
	SampleInterval config.Duration `yaml:"sample_interval"`
}

// Selections and methods.
const (
	ProcessesNetwork = "network"
	ProcessesAll     = "all"

	MethodAuto     = cpu.MethodAuto
	MethodEBPF     = cpu.MethodEBPF
	MethodSampling = cpu.MethodSampling
)

// DefaultConfig is the configuration of an input section that sets nothing.
func DefaultConfig() Config {
	return Config{
		Period:         config.Duration(10 * time.Second),
		Processes:      ProcessesNetwork,
		MinPct:         0,
		Method:         MethodAuto,
		SampleInterval: config.Duration(100 * time.Millisecond),
	}
}

// minSampleInterval keeps the sampler from becoming the busiest process.
const minSampleInterval = cpu.MinSampleInterval

// Validate checks the values; it does not touch the system.
func (c *Config) Validate() error {
	var errs []error
	if c.Period.D() <= 0 {
		errs = append(errs, config.Errorf("period", "must be positive, got %s", c.Period.D()))
	}
	switch c.Processes {
	case ProcessesNetwork, ProcessesAll:
	default:
		errs = append(errs, config.Errorf("processes", "%q is not a process selection (use network or all)", c.Processes))
	}
	if c.MinPct < 0 || math.IsNaN(c.MinPct) || math.IsInf(c.MinPct, 0) {
		errs = append(errs, config.Errorf("min_pct", "must be a fraction of one core (0.05 = 5%%), 0 or more, got %v", c.MinPct))
	}
	switch c.Method {
	case MethodAuto, MethodEBPF, MethodSampling:
	default:
		errs = append(errs, config.Errorf("method", "%q is not a method (use auto, ebpf or sampling)", c.Method))
	}
	si := c.SampleInterval.D()
	switch {
	case si < minSampleInterval:
		errs = append(errs, config.Errorf("sample_interval", "must be at least %s, got %s", minSampleInterval, si))
	case c.Period.D() > 0 && si > c.Period.D():
		errs = append(errs, config.Errorf("sample_interval", "must not exceed period (%s), got %s", c.Period.D(), si))
	}
	return errors.Join(errs...)
}
