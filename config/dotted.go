package config

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the tree once aliases are expanded: a few anchors can
// otherwise stand for billions of values ("billion laughs").
const maxNodes = 100_000

// copier deep-copies a parsed tree, replacing each alias by a copy of its
// anchor so later steps can change nodes in place without touching the
// other users of an anchor.
type copier struct {
	file  string
	count int
	err   error
	via   *yaml.Node
}

func (c *copier) copy(n *yaml.Node, depth int) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && c.via == nil {
		// Errors point at the outermost alias being expanded: that is
		// the line to change.
		c.via = n
		defer func() { c.via = nil }()
	}
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDecodeDepth; i++ {
		if n.Alias == nil {
			break
		}
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	c.count++
	if c.err == nil {
		at := n
		if c.via != nil {
			at = c.via
		}
		switch {
		case c.count > maxNodes:
			c.err = &Error{File: c.file, Line: at.Line, Column: at.Column, Msg: fmt.Sprintf("the config expands to more than %d values (check the aliases)", maxNodes)}
		case depth > maxDecodeDepth:
			c.err = &Error{File: c.file, Line: at.Line, Column: at.Column, Msg: fmt.Sprintf("values nested more than %d levels deep", maxDecodeDepth)}
		case n.Kind == yaml.AliasNode:
			c.err = &Error{File: c.file, Line: n.Line, Column: n.Column, Msg: "alias refers to nothing usable"}
		}
	}
	if c.err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	cp := &yaml.Node{
		Kind: n.Kind, Style: n.Style, Tag: n.Tag, Value: n.Value,
		Line: n.Line, Column: n.Column,
	}
	if len(n.Content) > 0 {
		cp.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			cp.Content[i] = c.copy(ch, depth+1)
		}
	}
	return cp
}

// normalizer turns dotted keys into nested mappings (`queue.mem.events: 1`
// is `queue: {mem: {events: 1}}`, as in Beats) and merges the spellings of
// one path, so that every later step sees a single tree. A key set twice is
// an error naming both places.
type normalizer struct {
	file string
	errs []error
	// keys indexes the mappings being built, so a file with many keys is
	// not quadratic to load.
	keys map[*yaml.Node]map[string]int
}

func (z *normalizer) index(m *yaml.Node) map[string]int {
	if z.keys == nil {
		z.keys = map[*yaml.Node]map[string]int{}
	}
	idx := z.keys[m]
	if idx == nil {
		idx = map[string]int{}
		for i := 0; i+1 < len(m.Content); i += 2 {
			idx[m.Content[i].Value] = i
		}
		z.keys[m] = idx
	}
	return idx
}

func (z *normalizer) find(m *yaml.Node, key string) int {
	if i, ok := z.index(m)[key]; ok {
		return i
	}
	return -1
}

func (z *normalizer) add(m, k, v *yaml.Node) {
	z.index(m)[k.Value] = len(m.Content)
	m.Content = append(m.Content, k, v)
}

func (z *normalizer) fail(n *yaml.Node, key, format string, args ...any) {
	z.errs = append(z.errs, &Error{File: z.file, Line: n.Line, Column: n.Column, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (z *normalizer) node(n *yaml.Node, path string, depth int) *yaml.Node {
	if depth > maxDecodeDepth {
		return n
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, c := range n.Content {
			n.Content[i] = z.node(c, fmt.Sprintf("%s.%d", path, i), depth+1)
		}
		return n
	case yaml.MappingNode:
	default:
		return n
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			z.fail(k, path, "keys must be names, got a %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		parts := strings.Split(k.Value, ".")
		if !validKey(parts) {
			z.fail(k, path, "%q is not a valid key (use names separated by single dots)", k.Value)
			continue
		}
		nv := z.node(v, join(path, k.Value), depth+1)
		z.insert(out, path, parts, k, nv, false)
	}
	// `<<: *base` merges keys the mapping does not set itself (YAML merge
	// key); explicit keys win, so conflicts are not errors.
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			if s.Kind != yaml.MappingNode {
				if !isNullNode(s) {
					z.fail(s, path, "<< merges a mapping, got a %s", kindName(s))
				}
				continue
			}
			ns := z.node(s, path, depth+1)
			for i := 0; i+1 < len(ns.Content); i += 2 {
				z.insert(out, path, []string{ns.Content[i].Value}, ns.Content[i], ns.Content[i+1], true)
			}
		}
	}
	return out
}

func validKey(parts []string) bool {
	for _, p := range parts {
		if p == "" || !utf8.ValidString(p) {
			return false
		}
	}
	return true
}

func findKey(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// insert sets the dotted path parts below mapping m to v; k is the key as
// written, for positions. soft inserts (merge keys) never overwrite.
func (z *normalizer) insert(m *yaml.Node, path string, parts []string, k, v *yaml.Node, soft bool) {
	cur := m
	for i, part := range parts {
		path = join(path, part)
		last := i == len(parts)-1
		idx := z.find(cur, part)
		if idx < 0 {
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: part, Line: k.Line, Column: k.Column}
			if last {
				z.add(cur, key, v)
				return
			}
			child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: k.Line, Column: k.Column}
			z.add(cur, key, child)
			cur = child
			continue
		}
		prevKey, prev := cur.Content[idx], cur.Content[idx+1]
		switch {
		case last && prev.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode:
			for j := 0; j+1 < len(v.Content); j += 2 {
				z.insert(prev, path, []string{v.Content[j].Value}, v.Content[j], v.Content[j+1], soft)
			}
			return
		case !last && prev.Kind == yaml.MappingNode:
			cur = prev
			continue
		case soft:
			return
		}
		if prevKey.Line > 0 {
			z.fail(k, path, "duplicate key (also set at line %d)", prevKey.Line)
		} else {
			z.fail(k, path, "duplicate key")
		}
		return
	}
}
