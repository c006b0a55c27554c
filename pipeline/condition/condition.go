// Package condition evaluates the `when` mapping of a processor, with the
// operators and semantics of Elastic Beats conditions: equals, contains,
// regexp, range, network, has_fields, and, or, not.
package condition

import (
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

// Condition decides whether a processor applies to an event. Check must not
// modify the event nor allocate: it runs once per event per processor.
type Condition interface {
	Check(pipeline.M) bool
	String() string
}

// operators lists the condition names in the order error messages show them.
var operators = []string{"equals", "contains", "regexp", "range", "network", "has_fields", "and", "or", "not"}

// maxDepth bounds and/or/not nesting so that a hostile or broken config
// cannot exhaust the stack.
const maxDepth = 64

// New builds the condition of a `when` mapping. Several operators in one
// mapping must all match, as in Beats. Errors are positioned at the
// offending key or value and joined.
func New(cfg config.Raw) (Condition, error) {
	b := &builder{budget: maxNodes}
	return b.build(cfg, 0)
}

// maxNodes bounds the work of building one condition: YAML aliases can
// make a short file describe an exponentially large tree.
const maxNodes = 100000

type builder struct{ budget int }

// spend charges n nodes and reports an error once the budget is gone.
func (b *builder) spend(cfg config.Raw, n int) error {
	b.budget -= n
	if b.budget < 0 {
		return cfg.Errorf("condition too large (more than %d YAML nodes after expanding aliases)", maxNodes)
	}
	return nil
}

func (b *builder) build(cfg config.Raw, depth int) (Condition, error) {
	if err := b.spend(cfg, 1); err != nil {
		return nil, err
	}
	if depth > maxDepth {
		return nil, cfg.Errorf("conditions nested deeper than %d levels", maxDepth)
	}
	n := deref(cfg.Node())
	if n == nil || isNull(n) {
		return nil, cfg.Errorf("missing condition (use one of %s)", strings.Join(operators, ", "))
	}
	if n.Kind != yaml.MappingNode {
		return nil, cfg.Errorf("expected a mapping of condition operators, got a %s", kindName(n))
	}
	if len(n.Content) == 0 {
		return nil, cfg.Errorf("empty condition (use one of %s)", strings.Join(operators, ", "))
	}
	var (
		all  and
		errs []error
	)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		val := sub(cfg, key.Value, n.Content[i+1])
		var (
			c   Condition
			err error
		)
		switch key.Value {
		case "equals":
			c, err = b.newEquals(val)
		case "contains":
			c, err = b.newContains(val)
		case "regexp":
			c, err = b.newRegexp(val)
		case "range":
			c, err = b.newRange(val)
		case "network":
			c, err = b.newNetwork(val)
		case "has_fields":
			c, err = b.newHasFields(val)
		case "and", "or":
			c, err = b.newList(val, key.Value, depth)
		case "not":
			var inner Condition
			inner, err = b.build(val, depth+1)
			if err == nil {
				c = not{inner}
			}
		default:
			err = config.NewRaw(key, cfg.File(), join(cfg.Path(), key.Value)).Errorf(
				"unknown condition %q (use one of %s)", key.Value, strings.Join(operators, ", "))
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, c)
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return all, nil
}

func (b *builder) newList(cfg config.Raw, op string, depth int) (Condition, error) {
	n := deref(cfg.Node())
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, cfg.Errorf("expected a non-empty list of conditions")
	}
	var (
		list []Condition
		errs []error
	)
	for i, el := range n.Content {
		c, err := b.build(sub(cfg, itoa(i), el), depth+1)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		list = append(list, c)
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	if op == "or" {
		return or(list), nil
	}
	return and(list), nil
}

type and []Condition

func (a and) Check(m pipeline.M) bool {
	for _, c := range a {
		if !c.Check(m) {
			return false
		}
	}
	return true
}

func (a and) String() string { return "and(" + joinConds(a) + ")" }

type or []Condition

func (o or) Check(m pipeline.M) bool {
	for _, c := range o {
		if c.Check(m) {
			return true
		}
	}
	return false
}

func (o or) String() string { return "or(" + joinConds(o) + ")" }

type not struct{ c Condition }

func (n not) Check(m pipeline.M) bool { return !n.c.Check(m) }
func (n not) String() string          { return "not(" + n.c.String() + ")" }

func joinConds(cs []Condition) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}
