package flowsinput

import "github.com/fleutan/fleutanbeat/input/flows"

// Filter compiles the flow selection of a validated Config (cidrs, ports,
// processes, include_loopback) into the library's Filter: the paths input
// selects the flows whose peers it traces with the same keys and rules.
func (c *Config) Filter() (*flows.Filter, error) { return newFilter(c) }
