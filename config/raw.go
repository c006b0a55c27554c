// Package config loads fleutanbeat.yml: YAML with ${VAR} expansion, -E
// overrides and dotted keys, decoded strictly into each package's Config.
package config

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Raw is an undecoded config section together with where it came from, so
// that every error can name file, line, column and dotted key.
type Raw struct {
	node *yaml.Node
	file string
	path string
	src  *origins
}

// origins records which nodes did not come from the config file: those of
// -E overrides, labelled "-E key=value" so errors point at the flag.
type origins struct {
	base  string
	files map[*yaml.Node]string
}

func (o *origins) fileOf(n *yaml.Node, fallback string) string {
	if o == nil {
		return fallback
	}
	if f, ok := o.files[n]; ok {
		return f
	}
	return o.base
}

// sub is the section of node n found below r at path, keeping the origin.
func (r Raw) sub(n *yaml.Node, path string) Raw {
	return Raw{node: n, file: r.src.fileOf(n, r.file), path: path, src: r.src}
}

// At returns the section of n, a node found under key below this section
// (a plugin walking a free-form mapping itself). Unlike NewRaw it keeps the
// node's origin, so values set by -E still name the flag in errors.
func (r Raw) At(key string, n *yaml.Node) Raw {
	return r.sub(n, join(r.path, key))
}

// NewRaw wraps a YAML node found at the dotted path of file.
func NewRaw(node *yaml.Node, file, path string) Raw {
	return Raw{node: node, file: file, path: path}
}

// IsZero reports whether the section is absent or null (`key: ~`).
func (r Raw) IsZero() bool {
	return r.node == nil || (r.node.Kind == yaml.ScalarNode && r.node.Tag == "!!null")
}

// Path is the dotted key of the section, e.g. "output.file".
func (r Raw) Path() string { return r.path }

// File is the config file the section was read from.
func (r Raw) File() string { return r.file }

// Node exposes the YAML node for the loader and for plugins with a
// free-form shape (processors, conditions).
func (r Raw) Node() *yaml.Node { return r.node }

// Decode decodes the section into out (a pointer to a struct with yaml
// tags) strictly: unknown keys and values of the wrong type are errors that
// name file:line:column and the dotted key. An absent section leaves out
// untouched, so defaults set before Decode survive.
func (r Raw) Decode(out any) error {
	if r.IsZero() {
		return nil
	}
	return decodeInto(r, out)
}

// Validator is a section's Config: Validate checks the decoded values and
// returns KeyErrors relative to the section.
type Validator interface{ Validate() error }

// DecodeValid decodes the section into out as Decode does, then runs its
// Validate and positions the errors (Locate): what every plugin's
// constructor starts with.
func (r Raw) DecodeValid(out Validator) error {
	if err := r.Decode(out); err != nil {
		return err
	}
	return r.Locate(out.Validate())
}

// Child returns the sub-section at key (one level, no dots) of a mapping.
func (r Raw) Child(key string) (Raw, bool) {
	if r.node == nil || r.node.Kind != yaml.MappingNode {
		return Raw{}, false
	}
	for i := 0; i+1 < len(r.node.Content); i += 2 {
		if r.node.Content[i].Value == key {
			return r.sub(r.node.Content[i+1], join(r.path, key)), true
		}
	}
	return Raw{}, false
}

// Keys lists the keys of a mapping section in file order.
func (r Raw) Keys() []string {
	if r.node == nil || r.node.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]string, 0, len(r.node.Content)/2)
	for i := 0; i+1 < len(r.node.Content); i += 2 {
		keys = append(keys, r.node.Content[i].Value)
	}
	return keys
}

// List returns the elements of a sequence section; each element's path is
// "path.N" as in Beats.
func (r Raw) List() []Raw {
	if r.node == nil || r.node.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]Raw, len(r.node.Content))
	for i, n := range r.node.Content {
		out[i] = r.sub(n, fmt.Sprintf("%s.%d", r.path, i))
	}
	return out
}

// Errorf returns an error positioned at this section.
func (r Raw) Errorf(format string, args ...any) error {
	line, col := 0, 0
	if r.node != nil {
		line, col = r.node.Line, r.node.Column
	}
	return &Error{File: r.file, Line: line, Column: col, Key: r.path, Msg: fmt.Sprintf(format, args...)}
}

// Locate turns the KeyErrors that a Validate method returned (possibly
// joined) into positioned Errors by finding each key below this section.
func (r Raw) Locate(err error) error {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, r.Locate(e))
		}
		return errors.Join(errs...)
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		at := r.lookup(ke.Key)
		return &Error{File: at.file, Line: at.line(), Column: at.column(), Key: join(r.path, ke.Key), Msg: ke.Err.Error()}
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return r.Errorf("%v", err)
}

// lookup walks a dotted key (list indexes as numbers), stopping at the
// deepest node that exists so the error still points near the problem.
func (r Raw) lookup(key string) Raw {
	cur := r
	for _, part := range splitKey(key) {
		if next, ok := cur.Child(part); ok {
			cur = next
			continue
		}
		var idx int
		if _, err := fmt.Sscanf(part, "%d", &idx); err == nil {
			if l := cur.List(); idx >= 0 && idx < len(l) {
				cur = l[idx]
				continue
			}
		}
		break
	}
	return cur
}

func (r Raw) line() int {
	if r.node == nil {
		return 0
	}
	return r.node.Line
}

func (r Raw) column() int {
	if r.node == nil {
		return 0
	}
	return r.node.Column
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "." + b
}

// Without returns a copy of a mapping section lacking the given keys; the
// agent uses it to take out the keys it owns (type, enabled, processors)
// before a plugin decodes the rest strictly.
func (r Raw) Without(keys ...string) Raw {
	if r.node == nil || r.node.Kind != yaml.MappingNode {
		return r
	}
	cp := *r.node
	cp.Content = nil
next:
	for i := 0; i+1 < len(r.node.Content); i += 2 {
		for _, k := range keys {
			if r.node.Content[i].Value == k {
				continue next
			}
		}
		cp.Content = append(cp.Content, r.node.Content[i], r.node.Content[i+1])
	}
	return Raw{node: &cp, file: r.file, path: r.path, src: r.src}
}
