package condition

import (
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type fieldText struct {
	field string
	text  string
}

// contains matches a substring of a string field, or an element of a list
// of strings.
type contains []fieldText

func (b *builder) newContains(cfg config.Raw) (Condition, error) {
	leaves, err := b.fieldLeaves(cfg)
	if err != nil {
		return nil, err
	}
	var (
		out  contains
		errs []error
	)
	for _, l := range leaves {
		s, err := scalarText(l.raw, "a string to look for")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, fieldText{field: l.field, text: s})
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return out, nil
}

func (c contains) Check(m pipeline.M) bool {
	for _, f := range c {
		v, ok := m.GetMember(f.field)
		if !ok {
			return false
		}
		if v.Kind() == pipeline.KindString {
			if !strings.Contains(v.Str(), f.text) {
				return false
			}
			continue
		}
		if !containsMatch(v.Value(), f.text) {
			return false
		}
	}
	return true
}

func containsMatch(v any, text string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, text)
	case []string:
		for _, s := range x {
			if s == text {
				return true
			}
		}
	case []any:
		for _, el := range x {
			if s, ok := el.(string); ok && s == text {
				return true
			}
		}
	}
	return false
}

func (c contains) String() string {
	parts := make([]string, len(c))
	for i, f := range c {
		parts[i] = f.field + ": " + strconv.Quote(f.text)
	}
	return "contains(" + strings.Join(parts, ", ") + ")"
}
