package processor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// RenameConfig is the rename section.
type RenameConfig struct {
	Fields        []RenameField `yaml:"fields"`
	IgnoreMissing bool          `yaml:"ignore_missing"`
	FailOnError   bool          `yaml:"fail_on_error"`
}

type RenameField struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

func DefaultRenameConfig() RenameConfig { return RenameConfig{FailOnError: true} }

func (c RenameConfig) Validate() error {
	if len(c.Fields) == 0 {
		return config.Errorf("fields", "at least one {from, to} pair is required")
	}
	var errs []error
	for i, f := range c.Fields {
		k := "fields." + strconv.Itoa(i)
		switch {
		case f.From == "":
			errs = append(errs, config.Errorf(k+".from", "required"))
		case f.To == "":
			errs = append(errs, config.Errorf(k+".to", "required"))
		case f.From == f.To:
			errs = append(errs, config.Errorf(k+".to", "%q is the same field as from", f.To))
		}
	}
	return errors.Join(errs...)
}

type rename struct {
	fields        []RenameField
	ignoreMissing bool
	failOnError   bool
	s             Settings
}

func newRename(cfg config.Raw, s Settings) (pipeline.Processor, error) {
	c := DefaultRenameConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	return &rename{fields: c.Fields, ignoreMissing: c.IgnoreMissing, failOnError: c.FailOnError, s: s}, nil
}

// undo is one step to revert: put value back at key, or (put false)
// delete key, which removes objects that a rename created on the way.
type undo struct {
	key   string
	value any
	put   bool
}

// Run renames in order. Rather than cloning every event up front (the
// Beats way to restore on failure), it records the few changes it made
// and reverts them, so a successful rename costs no allocation.
func (p *rename) Run(e *pipeline.Event) (*pipeline.Event, error) {
	if e.Fields == nil {
		e.Fields = pipeline.M{}
	}
	var buf [4]undo
	log := buf[:0]
	for _, f := range p.fields {
		var err error
		log, err = p.renameOne(e.Fields, f, log)
		if err == nil {
			continue
		}
		if p.failOnError {
			for i := len(log) - 1; i >= 0; i-- {
				if log[i].put {
					e.Fields.Put(log[i].key, log[i].value)
				} else {
					e.Fields.Delete(log[i].key)
				}
			}
			return e, err
		}
		p.s.Logger.Debug("rename failed, going on", "error", err)
	}
	return e, nil
}

func (p *rename) renameOne(m pipeline.M, f RenameField, log []undo) ([]undo, error) {
	v, ok := m.GetValue(f.From)
	if !ok {
		if p.ignoreMissing {
			return log, nil
		}
		return log, fmt.Errorf("rename: field %q not found", f.From)
	}
	if m.HasKey(f.To) {
		return log, fmt.Errorf("rename: target field %q already exists, drop or rename it first", f.To)
	}
	m.Delete(f.From)
	log = append(log, undo{key: f.From, value: v, put: true})
	created, err := firstMissing(m, f.To)
	if err != nil {
		return log, err
	}
	m.Put(f.To, v)
	return append(log, undo{key: created}), nil
}

// firstMissing returns the shortest prefix of key that does not exist yet,
// which is what to delete to undo Put(key). Put would replace a scalar in
// the way; a rename must not destroy data, so that is an error.
func firstMissing(m pipeline.M, key string) (string, error) {
	var cur any = m
	for i := 0; ; {
		j := strings.IndexByte(key[i:], '.')
		if j < 0 {
			return key, nil
		}
		v, ok := pipeline.Lookup(cur, key[i:i+j])
		if !ok {
			return key[:i+j], nil
		}
		if !pipeline.IsObject(v) {
			return "", fmt.Errorf("rename: cannot create %q: %q is not an object", key, key[:i+j])
		}
		cur, i = v, i+j+1
	}
}

func (p *rename) String() string {
	pairs := make([]string, len(p.fields))
	for i, f := range p.fields {
		pairs[i] = f.From + "->" + f.To
	}
	return fmt.Sprintf("name=rename, fields=[%s], ignore_missing=%t, fail_on_error=%t",
		strings.Join(pairs, ", "), p.ignoreMissing, p.failOnError)
}
