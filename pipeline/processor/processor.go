// Package processor builds the `processors` list of the config into
// pipeline.Processors, with the names, options and semantics of Elastic
// Beats processors. Each processor may carry a `when` condition.
package processor

import (
	"errors"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/fleutan/fleutanbeat/pipeline/condition"
	"gopkg.in/yaml.v3"
)

// Settings is what the program, not the user, provides to processors.
type Settings struct {
	Logger *slog.Logger
	// Root is the filesystem root for /etc/machine-id, /etc/os-release and
	// /proc; "" means "/". Tests point it at a fixture tree.
	Root string
	// Hostname returns the host's name; nil means os.Hostname.
	Hostname func() (string, error)
}

func (s Settings) withDefaults() Settings {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Root == "" {
		s.Root = "/"
	}
	if s.Hostname == nil {
		s.Hostname = os.Hostname
	}
	return s
}

// constructor builds one processor from its options (without `when`). It
// decodes strictly and returns errors positioned with Raw.Locate.
type constructor func(cfg config.Raw, s Settings) (pipeline.Processor, error)

// New builds the processors of a list whose elements are single-key
// mappings `- NAME: {options}` or `- NAME: ~`. All errors of the list are
// returned joined.
func New(list []config.Raw, s Settings) ([]pipeline.Processor, error) {
	s = s.withDefaults()
	reg := registry()
	var (
		out  []pipeline.Processor
		errs []error
	)
	for _, item := range list {
		p, err := build(item, s, reg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func build(item config.Raw, s Settings, reg map[string]constructor) (pipeline.Processor, error) {
	n := item.Node()
	if n == nil || n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return nil, item.Errorf("expected a single-key mapping such as `- add_host_metadata: ~` naming one processor")
	}
	name := n.Content[0].Value
	ctor, ok := reg[name]
	if !ok {
		known := make([]string, 0, len(reg))
		for k := range reg {
			known = append(known, k)
		}
		sort.Strings(known)
		at := config.NewRaw(n.Content[0], item.File(), item.Path()+"."+name)
		return nil, at.Errorf("unknown processor %q (known: %s)", name, strings.Join(known, ", "))
	}
	opts, _ := item.Child(name)
	var (
		when condition.Condition
		errs []error
	)
	if w, ok := opts.Child("when"); ok {
		c, err := condition.New(w)
		if err != nil {
			errs = append(errs, err)
		}
		when = c
		opts = opts.Without("when")
	}
	p, err := ctor(opts, s)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if when != nil {
		return conditional{when: when, p: p}, nil
	}
	return p, nil
}

// conditional runs a processor only on events its `when` matches.
type conditional struct {
	when condition.Condition
	p    pipeline.Processor
}

func (c conditional) Run(e *pipeline.Event) (*pipeline.Event, error) {
	if !c.when.Check(e.Fields) {
		return e, nil
	}
	return c.p.Run(e)
}

func (c conditional) String() string { return c.p.String() + ", condition=" + c.when.String() }

// asM is a read-only view of a nested object of any spelling (see
// pipeline.AsObject); write through pipeline.M methods or MutableObject.
func asM(v any) (pipeline.M, bool) { return pipeline.AsObject(v) }
