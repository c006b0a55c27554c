package condition

import (
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

// hasFields matches when every listed dotted field exists, whatever its
// value (null included).
type hasFields []string

func (b *builder) newHasFields(cfg config.Raw) (Condition, error) {
	n := deref(cfg.Node())
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, cfg.Errorf("expected a non-empty list of field names")
	}
	var (
		out  hasFields
		errs []error
	)
	for i, el := range n.Content {
		r := sub(cfg, itoa(i), el)
		s, err := scalarText(r, "a field name")
		if err == nil && s == "" {
			err = r.Errorf("empty field name")
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return out, nil
}

func (h hasFields) Check(m pipeline.M) bool {
	for _, f := range h {
		if !m.HasKey(f) {
			return false
		}
	}
	return true
}

func (h hasFields) String() string { return "has_fields(" + strings.Join(h, ", ") + ")" }
