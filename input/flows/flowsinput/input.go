package flowsinput

import (
	"log/slog"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
)

// New is the input.Factory of the flows input.
func New(cfg config.Raw, s input.Settings) (input.Input, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	f, err := newFilter(&c)
	if err != nil {
		return nil, cfg.Locate(err)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return newInput(c, f, s)
}

// collectorOptions turns a validated Config into what the Collector takes.
func (c *Config) collectorOptions(s input.Settings) flows.Options {
	o := flows.Options{
		ProcRoot:      s.ProcRoot,
		AllNamespaces: c.Namespaces == NamespacesAll,
		Logger:        s.Logger,
		Routes:        c.Routes,
		RouteTTL:      c.RouteTTL.D(),
	}
	for _, p := range c.Protocols {
		v, _ := parseProtocol(p)
		o.Protocols = appendUnique(o.Protocols, v)
	}
	for _, f := range c.Families {
		v, _ := parseFamily(f)
		o.Families = appendUnique(o.Families, v)
	}
	for _, st := range c.States {
		m, _ := flows.StateMask(st)
		o.States |= m
	}
	if o.States == flows.AllStates {
		o.States = 0
	}
	return o
}

func appendUnique(s []uint8, v uint8) []uint8 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
