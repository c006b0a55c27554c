package elasticsearch

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// pattern is a parsed index name pattern: literal text, event fields
// (%{[a.b]}) and the event's date (%{+yyyy.MM.dd}).
type pattern struct {
	parts []part
	// namespace answers %{[data_stream.namespace]} for encoded events.
	namespace string
}

type part struct {
	lit    string
	field  string // dotted path, when non-empty
	layout string // Go time layout, when non-empty
}

// jodaToGo maps the Joda letters Beats patterns use; anything else in a
// date part is an error rather than a silent literal.
var jodaToGo = []struct{ joda, goLayout string }{
	{"yyyy", "2006"}, {"MM", "01"}, {"dd", "02"}, {"HH", "15"},
}

func parsePattern(s string) (*pattern, error) {
	if s == "" {
		return nil, errors.New("must not be empty")
	}
	p := &pattern{}
	rest := s
	for rest != "" {
		i := strings.Index(rest, "%{")
		if i < 0 {
			p.parts = append(p.parts, part{lit: rest})
			break
		}
		if i > 0 {
			p.parts = append(p.parts, part{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%q: unclosed %%{ at byte %d", s, len(s)-len(rest)+i)
		}
		ref := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		switch {
		case strings.HasPrefix(ref, "+"):
			layout, err := jodaLayout(ref[1:])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			p.parts = append(p.parts, part{layout: layout})
		case len(ref) > 2 && ref[0] == '[' && ref[len(ref)-1] == ']':
			field := strings.ReplaceAll(ref[1:len(ref)-1], "][", ".")
			if field == "" || strings.ContainsAny(field, "[]") {
				return nil, fmt.Errorf("%q: bad field reference %%{%s}", s, ref)
			}
			p.parts = append(p.parts, part{field: field})
		default:
			return nil, fmt.Errorf("%q: %%{%s} is neither a field %%{[a.b]} nor a date %%{+yyyy.MM.dd}", s, ref)
		}
	}
	// The literal parts must already be a valid index name fragment, so
	// that only event values can make a name invalid at run time.
	var lit strings.Builder
	for _, pt := range p.parts {
		lit.WriteString(pt.lit)
		if pt.lit == "" {
			lit.WriteByte('x')
		}
	}
	if err := checkIndexName(lit.String()); err != nil {
		return nil, err
	}
	return p, nil
}

func jodaLayout(j string) (string, error) {
	var b strings.Builder
	for j != "" {
		matched := false
		for _, m := range jodaToGo {
			if strings.HasPrefix(j, m.joda) {
				b.WriteString(m.goLayout)
				j = j[len(m.joda):]
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		if c := j[0]; c == '.' || c == '-' || c == '_' {
			b.WriteByte(c)
			j = j[1:]
			continue
		}
		return "", fmt.Errorf("date format %q: only yyyy, MM, dd, HH and . - _ are supported", j)
	}
	return b.String(), nil
}

// hasField reports whether the pattern uses the given field.
func (p *pattern) hasField(f string) bool {
	for _, pt := range p.parts {
		if pt.field == f {
			return true
		}
	}
	return false
}

// wildcard renders the pattern for an index template: dataset in place of
// %{[event.dataset]} and * for every other reference.
func (p *pattern) wildcard(dataset string) string {
	var b strings.Builder
	for _, pt := range p.parts {
		switch {
		case pt.field == "event.dataset" && dataset != "":
			b.WriteString(dataset)
		case pt.field != "" || pt.layout != "":
			// Everything after the first unknown part is covered by one
			// wildcard: "a-*-*" would also need literal text to match.
			b.WriteByte('*')
			return b.String()
		default:
			b.WriteString(pt.lit)
		}
	}
	if !strings.HasSuffix(b.String(), "*") {
		b.WriteByte('*')
	}
	return b.String()
}

// render appends the index name for one event.
func (p *pattern) render(dst []byte, e *pipeline.Event) ([]byte, error) {
	start := len(dst)
	for _, pt := range p.parts {
		switch {
		case pt.field != "":
			v, ok := fieldOf(e, pt.field)
			if !ok && pt.field == "data_stream.namespace" && e.Fields == nil {
				v, ok = p.namespace, p.namespace != ""
			}
			if !ok {
				return dst[:start], fmt.Errorf("index pattern: event has no field %s", pt.field)
			}
			s, err := scalarString(v)
			if err != nil {
				return dst[:start], fmt.Errorf("index pattern: field %s: %w", pt.field, err)
			}
			dst = append(dst, strings.ToLower(s)...)
		case pt.layout != "":
			dst = e.Timestamp.UTC().AppendFormat(dst, pt.layout)
		default:
			dst = append(dst, pt.lit...)
		}
	}
	if err := checkIndexName(string(dst[start:])); err != nil {
		return dst[:start], fmt.Errorf("index pattern: %w", err)
	}
	return dst, nil
}

func scalarString(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case int:
		return strconv.Itoa(t), nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case uint64:
		return strconv.FormatUint(t, 10), nil
	case bool:
		return strconv.FormatBool(t), nil
	case time.Time:
		return t.UTC().Format("2006.01.02"), nil
	}
	return "", fmt.Errorf("value of type %T cannot be part of an index name", v)
}

// encodedFields are what an index pattern may use: an event the pipeline
// has encoded keeps only these beside its body.
var encodedFields = []string{"event.dataset", "data_stream.dataset", "data_stream.type", "data_stream.namespace"}

// checkFields refuses references an encoded event cannot answer.
func (p *pattern) checkFields() error {
	for _, pt := range p.parts {
		if pt.field != "" && !slices.Contains(encodedFields, pt.field) {
			return fmt.Errorf("%%{[%s]}: an index pattern may use %s and the date (%%{+yyyy.MM.dd})", pt.field, strings.Join(encodedFields, ", "))
		}
	}
	return nil
}

// fieldOf reads a field of the event, from its maps or, for an encoded
// event, from what the pipeline kept beside the body.
func fieldOf(e *pipeline.Event, field string) (any, bool) {
	if e.Fields != nil || e.Body == nil {
		return e.Fields.GetValue(field)
	}
	switch field {
	case "event.dataset", "data_stream.dataset":
		return e.Dataset, e.Dataset != ""
	case "data_stream.type":
		return "metrics", true
	}
	return nil, false
}

// dataStreamName appends metrics-<dataset>-<namespace> for one event.
func dataStreamName(dst []byte, e *pipeline.Event, namespace string) ([]byte, string, error) {
	v, ok := fieldOf(e, "event.dataset")
	ds, _ := v.(string)
	if !ok || ds == "" {
		return dst, "", errors.New("data stream: event has no event.dataset")
	}
	if err := checkNamePart(ds); err != nil {
		return dst, "", fmt.Errorf("data stream: event.dataset %w", err)
	}
	dst = append(dst, "metrics-"...)
	dst = append(dst, ds...)
	dst = append(dst, '-')
	dst = append(dst, namespace...)
	return dst, ds, nil
}
