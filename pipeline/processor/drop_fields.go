package processor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// DropFieldsConfig is the drop_fields section.
type DropFieldsConfig struct {
	Fields        []string `yaml:"fields"`
	IgnoreMissing bool     `yaml:"ignore_missing"`
}

func DefaultDropFieldsConfig() DropFieldsConfig { return DropFieldsConfig{} }

func (c DropFieldsConfig) Validate() error {
	var errs []error
	for i, f := range c.Fields {
		if f == "@timestamp" || f == "@metadata" || strings.HasPrefix(f, "@metadata.") {
			errs = append(errs, config.Errorf("fields."+strconv.Itoa(i), "%q: %w", f, errReserved))
		}
	}
	if _, err := parseFieldList(c.Fields, "fields"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

var errReserved = errors.New("@timestamp and @metadata are kept on every event and cannot be dropped")

type dropFields struct {
	list          fieldList
	ignoreMissing bool
}

func newDropFields(cfg config.Raw, _ Settings) (pipeline.Processor, error) {
	c := DefaultDropFieldsConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	l, _ := parseFieldList(c.Fields, "fields")
	return &dropFields{list: l, ignoreMissing: c.IgnoreMissing}, nil
}

// Run deletes every listed field it finds; missing ones are reported
// together while the rest of the event goes on, as in Beats.
func (p *dropFields) Run(e *pipeline.Event) (*pipeline.Event, error) {
	var errs []error
	for _, f := range p.list.names {
		if !e.Fields.Delete(f) && !p.ignoreMissing {
			errs = append(errs, fmt.Errorf("drop_fields: field %q not found", f))
		}
	}
	if len(p.list.res) > 0 {
		walkMatches(e.Fields, "", p.list.res, func(key string, _ any) { e.Fields.Delete(key) })
	}
	return e, errors.Join(errs...)
}

func (p *dropFields) String() string {
	return fmt.Sprintf("name=drop_fields, fields=[%s], ignore_missing=%t", p.list, p.ignoreMissing)
}
