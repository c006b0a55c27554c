package processor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// AddFieldsConfig is the add_fields section.
type AddFieldsConfig struct {
	// Target is the object the fields go under; "" puts them at the root.
	Target string         `yaml:"target"`
	Fields map[string]any `yaml:"fields"`
}

func DefaultAddFieldsConfig() AddFieldsConfig { return AddFieldsConfig{Target: "fields"} }

func (c AddFieldsConfig) Validate() error {
	if len(c.Fields) == 0 {
		return config.Errorf("fields", "at least one field is required")
	}
	if strings.HasPrefix(c.Target, "@") {
		return config.Errorf("target", "%q is reserved; choose another target", c.Target)
	}
	return nil
}

// addFields merges a precomputed tree into each event, replacing values
// that are already there, as Beats' add_fields does.
type addFields struct {
	target string
	add    pipeline.M
}

func newAddFields(cfg config.Raw, _ Settings) (pipeline.Processor, error) {
	c := DefaultAddFieldsConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	fields := pipeline.M{}
	for k, v := range c.Fields {
		fields.Put(k, normalize(v))
	}
	add := fields
	if c.Target != "" {
		add = pipeline.M{}
		add.Put(c.Target, fields)
	}
	return &addFields{target: c.Target, add: add}, nil
}

func (p *addFields) Run(e *pipeline.Event) (*pipeline.Event, error) {
	if e.Fields == nil {
		e.Fields = pipeline.M{}
	}
	merge(e.Fields, p.add)
	return e, nil
}

func (p *addFields) String() string {
	var keys []string
	p.add.Flatten(func(k string, _ any) { keys = append(keys, k) })
	sort.Strings(keys)
	return fmt.Sprintf("name=add_fields, target=%q, fields=[%s]", p.target, strings.Join(keys, ", "))
}

// merge copies src into dst; objects of src are cloned so that no two
// events share a map.
func merge(dst, src pipeline.M) {
	for k, v := range src {
		sv, ok := asM(v)
		if !ok {
			dst[k] = v
			continue
		}
		if dv, ok := dst.MutableObject(k); ok {
			merge(dv, sv)
			continue
		}
		dst[k] = sv.Clone()
	}
}

// normalize turns what yaml.v3 decodes into event values: mappings become
// pipeline.M (keys with dots are expanded as the loader does), lists keep
// their elements normalized.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := pipeline.M{}
		for k, x := range t {
			m.Put(k, normalize(x))
		}
		return m
	case map[any]any:
		m := pipeline.M{}
		for k, x := range t {
			m.Put(fmt.Sprint(k), normalize(x))
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalize(x)
		}
		return out
	}
	return v
}
