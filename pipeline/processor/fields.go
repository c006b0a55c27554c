package processor

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// fieldList is a drop_fields/include_fields list: dotted names, and
// `/regex/` entries matched against the dotted names of objects and leaves.
type fieldList struct {
	names []string
	res   []*regexp.Regexp
}

func parseFieldList(fields []string, key string) (fieldList, error) {
	var l fieldList
	if len(fields) == 0 {
		return l, config.Errorf(key, "at least one field is required")
	}
	for i, f := range fields {
		k := key + "." + strconv.Itoa(i)
		if len(f) >= 2 && f[0] == '/' && f[len(f)-1] == '/' {
			re, err := regexp.Compile(f[1 : len(f)-1])
			if err != nil {
				return l, config.Errorf(k, "%q is not a valid regular expression: %v", f, err)
			}
			l.res = append(l.res, re)
			continue
		}
		if f == "" {
			return l, config.Errorf(k, "empty field name")
		}
		l.names = append(l.names, f)
	}
	return l, nil
}

func (l fieldList) String() string {
	s := append([]string(nil), l.names...)
	for _, re := range l.res {
		s = append(s, "/"+re.String()+"/")
	}
	return strings.Join(s, ", ")
}

// walkMatches calls fn with the dotted path of every object or leaf that
// one of res matches, without descending into a matched object.
func walkMatches(m pipeline.M, prefix string, res []*regexp.Regexp, fn func(key string, v any)) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if matchAny(res, key) {
			fn(key, v)
			continue
		}
		if sub, ok := asM(v); ok {
			walkMatches(sub, key, res, fn)
		}
	}
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
