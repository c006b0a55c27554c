package condition

import (
	"errors"

	"github.com/fleutan/fleutanbeat/config"
	"gopkg.in/yaml.v3"
)

// leaf is one field of an operator's mapping with its value's section.
type leaf struct {
	field string
	raw   config.Raw
}

// fieldLeaves flattens an operator's mapping into dotted field names. The
// loader expands dotted YAML keys into nested mappings (Beats semantics), so
// `equals: {process.name: nginx}` arrives as `{process: {name: nginx}}`;
// walking it back gives "process.name" with the value's position. Range
// thereby sees `{source.bytes: {gte: 1}}` as the leaf "source.bytes.gte".
func (b *builder) fieldLeaves(cfg config.Raw) ([]leaf, error) {
	n := deref(cfg.Node())
	if n == nil || n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return nil, cfg.Errorf("expected a mapping of field names to values")
	}
	var out []leaf
	var walk func(r config.Raw, n *yaml.Node, prefix string, depth int) error
	walk = func(r config.Raw, n *yaml.Node, prefix string, depth int) error {
		if err := b.spend(r, len(n.Content)/2); err != nil {
			return err
		}
		if depth > maxDepth {
			return r.Errorf("field names nested deeper than %d levels", maxDepth)
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			v := deref(n.Content[i+1])
			child := sub(r, k, n.Content[i+1])
			name := join(prefix, k)
			if k == "" {
				errs = append(errs, child.Errorf("empty field name"))
				continue
			}
			if v != nil && v.Kind == yaml.MappingNode && len(v.Content) > 0 {
				if err := walk(child, v, name, depth+1); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			out = append(out, leaf{field: name, raw: child})
		}
		return joinErrs(errs)
	}
	if err := walk(cfg, n, "", 0); err != nil {
		return nil, err
	}
	return out, nil
}

// sub is the section of a child node, named like Raw.Child names it.
func sub(parent config.Raw, key string, n *yaml.Node) config.Raw {
	return config.NewRaw(n, parent.File(), join(parent.Path(), key))
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

// deref resolves YAML aliases (`*anchor`); the parser already rejects
// aliases that refer to themselves, the bound is for safety only.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return deref(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar"
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// scalarText returns the text of a scalar value; conditions that compare
// text accept any non-null scalar as written.
func scalarText(r config.Raw, what string) (string, error) {
	n := deref(r.Node())
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) {
		got := "null"
		if n != nil && !isNull(n) {
			got = "a " + kindName(n)
		}
		return "", r.Errorf("expected %s, got %s", what, got)
	}
	return n.Value, nil
}
