package condition

import (
	"regexp"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type fieldRegexp struct {
	field string
	re    *regexp.Regexp
}

// regexps matches string fields (or any element of a list of strings)
// against RE2 expressions compiled at start-up; like Beats the expression
// is not anchored.
type regexps []fieldRegexp

func (b *builder) newRegexp(cfg config.Raw) (Condition, error) {
	leaves, err := b.fieldLeaves(cfg)
	if err != nil {
		return nil, err
	}
	var (
		out  regexps
		errs []error
	)
	for _, l := range leaves {
		s, err := scalarText(l.raw, "a regular expression")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		re, err := regexp.Compile(s)
		if err != nil {
			errs = append(errs, l.raw.Errorf("%q is not a valid regular expression: %v", s, err))
			continue
		}
		out = append(out, fieldRegexp{field: l.field, re: re})
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return out, nil
}

func (r regexps) Check(m pipeline.M) bool {
	for _, f := range r {
		v, ok := m.GetMember(f.field)
		if !ok {
			return false
		}
		if v.Kind() == pipeline.KindString {
			if !f.re.MatchString(v.Str()) {
				return false
			}
			continue
		}
		if !regexpMatch(v.Value(), f.re) {
			return false
		}
	}
	return true
}

func regexpMatch(v any, re *regexp.Regexp) bool {
	switch x := v.(type) {
	case string:
		return re.MatchString(x)
	case []string:
		for _, s := range x {
			if re.MatchString(s) {
				return true
			}
		}
	case []any:
		for _, el := range x {
			if s, ok := el.(string); ok && re.MatchString(s) {
				return true
			}
		}
	}
	return false
}

func (r regexps) String() string {
	parts := make([]string, len(r))
	for i, f := range r {
		parts[i] = f.field + ": " + f.re.String()
	}
	return "regexp(" + strings.Join(parts, ", ") + ")"
}
