package rdmainput

import (
	"errors"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

// Config is the rdma input's section of fleutanbeat.inputs.
type Config struct {
	Period config.Duration `yaml:"period"`
	// KernelQPs also reports the queue pairs kernel modules own (each
	// port's GSI QP 1, storage and file system clients); off, only those
	// of processes.
	KernelQPs bool `yaml:"kernel_qps"`
	// Counters reports each port's hardware counters, one event per
	// counter and period.
	Counters bool `yaml:"counters"`
}

// DefaultConfig is the configuration of an input section that sets nothing.
func DefaultConfig() Config {
	return Config{Period: config.Duration(10 * time.Second), Counters: true}
}

// Validate checks the values; it does not touch the system.
func (c *Config) Validate() error {
	var errs []error
	if c.Period.D() <= 0 {
		errs = append(errs, config.Errorf("period", "must be positive, got %s", c.Period.D()))
	}
	return errors.Join(errs...)
}
