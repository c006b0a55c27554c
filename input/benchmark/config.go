package benchmark

import (
	"errors"

	"github.com/fleutan/fleutanbeat/config"
)

// Config is the input's section.
type Config struct {
	// Count is the number of events to publish before stopping; 0 is no
	// end (eps must then be set).
	Count int64 `yaml:"count"`
	// EPS is the rate in events per second; 0 publishes as fast as the
	// queue accepts.
	EPS int64 `yaml:"eps"`
	// Flows is the number of distinct synthetic flows (time series).
	Flows int `yaml:"flows"`
}

// DefaultConfig is the config with every default.
func DefaultConfig() Config { return Config{Flows: 1000} }

// maxFlows bounds the flows kept in memory (one event each).
const maxFlows = 1_000_000

// Validate checks the section.
func (c *Config) Validate() error {
	var errs []error
	if c.Count < 0 {
		errs = append(errs, config.Errorf("count", "must not be negative"))
	}
	if c.EPS < 0 {
		errs = append(errs, config.Errorf("eps", "must not be negative"))
	}
	if c.Count == 0 && c.EPS == 0 {
		errs = append(errs, config.Errorf("count", "set count, eps or both: without either the input floods the output without end"))
	}
	if c.Flows < 1 || c.Flows > maxFlows {
		errs = append(errs, config.Errorf("flows", "must be between 1 and %d", maxFlows))
	}
	return errors.Join(errs...)
}
