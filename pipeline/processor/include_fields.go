package processor

import (
	"fmt"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// IncludeFieldsConfig is the include_fields section.
type IncludeFieldsConfig struct {
	Fields []string `yaml:"fields"`
}

func DefaultIncludeFieldsConfig() IncludeFieldsConfig { return IncludeFieldsConfig{} }

func (c IncludeFieldsConfig) Validate() error {
	_, err := parseFieldList(c.Fields, "fields")
	return err
}

// includeFields keeps only the listed fields. @timestamp and @metadata
// live outside Event.Fields and so are always kept.
type includeFields struct{ list fieldList }

func newIncludeFields(cfg config.Raw, _ Settings) (pipeline.Processor, error) {
	c := DefaultIncludeFieldsConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	l, _ := parseFieldList(c.Fields, "fields")
	return &includeFields{list: l}, nil
}

func (p *includeFields) Run(e *pipeline.Event) (*pipeline.Event, error) {
	out := pipeline.M{}
	for _, f := range p.list.names {
		if v, ok := e.Fields.GetValue(f); ok {
			out.Put(f, v)
		}
	}
	if len(p.list.res) > 0 {
		walkMatches(e.Fields, "", p.list.res, func(key string, v any) { out.Put(key, v) })
	}
	e.Fields = out
	return e, nil
}

func (p *includeFields) String() string {
	return fmt.Sprintf("name=include_fields, fields=[%s]", p.list)
}
