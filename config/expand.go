package config

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxExpandDepth bounds ${A:${B:${C}}} nesting.
const maxExpandDepth = 16

// expander replaces ${VAR}, ${VAR:default} and ${VAR:?message} in scalar
// values, as Beats does; $${X} is a literal ${X}.
type expander struct {
	getenv func(string) (string, bool)
	errs   []error
}

// walk expands every scalar value below n; r names n for errors.
func (e *expander) walk(r Raw, depth int) {
	n := r.node
	if n == nil || depth > maxDecodeDepth {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			e.walk(r.sub(c, r.path), depth+1)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			e.walk(r.sub(n.Content[i+1], join(r.path, n.Content[i].Value)), depth+1)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			e.walk(r.sub(c, r.path+"."+strconv.Itoa(i)), depth+1)
		}
	case yaml.ScalarNode:
		e.scalar(r)
	}
}

func (e *expander) scalar(r Raw) {
	n := r.node
	if !strings.Contains(n.Value, "${") {
		return
	}
	out, msg, ok := e.expand(n.Value, 0, r.path)
	if !ok {
		e.errs = append(e.errs, r.Errorf("%s", msg))
		return
	}
	if !utf8.ValidString(out) {
		e.errs = append(e.errs, r.Errorf("the value is not valid UTF-8 after expanding variables"))
		return
	}
	n.Value = out
	// A plain scalar is typed by what it reads as after expansion, so
	// `port: ${PORT}` is an int; quoted or explicitly tagged ones stay.
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0 {
		n.Tag = ""
		n.Tag = n.ShortTag()
	}
}

// expand returns s with references replaced, or a message saying why not.
func (e *expander) expand(s string, depth int, path string) (string, string, bool) {
	if depth > maxExpandDepth {
		return "", "variable references nested too deeply", false
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), "", true
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := closingBrace(s, i+2)
		if end < 0 {
			return "", `unclosed "${" (write $${ for a literal ${)`, false
		}
		ref := s[i+2 : end]
		s = s[end+1:]
		name, rest, hasRest := strings.Cut(ref, ":")
		if !validVarName(name) {
			if isSecretPath(path) {
				return "", "invalid variable reference (names use letters, digits, _ and .)", false
			}
			return "", "invalid variable reference ${" + ref + "} (names use letters, digits, _ and .)", false
		}
		if v, ok := e.getenv(name); ok {
			b.WriteString(v)
			continue
		}
		switch {
		case !hasRest:
			return "", "environment variable " + name + " is not set (set it or give a default: ${" + name + ":default})", false
		case strings.HasPrefix(rest, "?"):
			if m := strings.TrimSpace(rest[1:]); m != "" {
				return "", name + ": " + m, false
			}
			return "", "environment variable " + name + " is not set", false
		default:
			def, msg, ok := e.expand(rest, depth+1, path)
			if !ok {
				return "", msg, false
			}
			b.WriteString(def)
		}
	}
}

// closingBrace finds the } matching a ${ whose content starts at from.
func closingBrace(s string, from int) int {
	level := 0
	for i := from; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			level++
			i++
		case s[i] == '}':
			if level == 0 {
				return i
			}
			level--
		}
	}
	return -1
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		case i > 0 && (c == '.' || (c >= '0' && c <= '9')):
		default:
			return false
		}
	}
	return true
}
