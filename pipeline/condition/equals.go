package condition

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

type valueKind uint8

const (
	kindString valueKind = iota
	kindInt
	kindBool
)

// equalsValue is one expected value, parsed once. A string that is also an
// IP address keeps its parsed form so netip.Addr fields compare without
// formatting.
type equalsValue struct {
	field string
	kind  valueKind
	s     string
	addr  netip.Addr
	// i holds integers up to MaxInt64; larger ones (only unsigned fields
	// can hold them) are in u with big set.
	i   int64
	u   uint64
	big bool
	b   bool
}

type equals []equalsValue

func (b *builder) newEquals(cfg config.Raw) (Condition, error) {
	leaves, err := b.fieldLeaves(cfg)
	if err != nil {
		return nil, err
	}
	var (
		out  equals
		errs []error
	)
	for _, l := range leaves {
		v, err := parseEqualsValue(l.raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v.field = l.field
		out = append(out, v)
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return out, nil
}

func parseEqualsValue(r config.Raw) (equalsValue, error) {
	n := deref(r.Node())
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) {
		return equalsValue{}, r.Errorf("expected a string, integer or boolean to compare with")
	}
	switch n.ShortTag() {
	case "!!str":
		v := equalsValue{kind: kindString, s: n.Value}
		if a, err := netip.ParseAddr(n.Value); err == nil {
			v.addr = a.Unmap().WithZone("")
		}
		return v, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return equalsValue{}, r.Errorf("%q is not a boolean", n.Value)
		}
		return equalsValue{kind: kindBool, b: b}, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return equalsValue{kind: kindInt, i: i}, nil
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return equalsValue{kind: kindInt, u: u, big: true}, nil
		}
		return equalsValue{}, r.Errorf("%q is out of the range of 64-bit integers", n.Value)
	}
	return equalsValue{}, r.Errorf("%q is not a string, integer or boolean (use range to compare numbers with fractions)", n.Value)
}

func (e equals) Check(m pipeline.M) bool {
	for i := range e {
		v, ok := m.GetMember(e[i].field)
		if !ok {
			return false
		}
		if !e[i].matchMember(v) {
			return false
		}
	}
	return true
}

// matchMember is match for a value read with GetMember: strings and
// numbers an *pipeline.Object holds are compared without boxing them.
func (e *equalsValue) matchMember(v pipeline.Member) bool {
	switch v.Kind() {
	case pipeline.KindString:
		return e.kind == kindString && v.Str() == e.s
	case pipeline.KindBool:
		return e.kind == kindBool && v.Bool() == e.b
	case pipeline.KindInt, pipeline.KindInt64:
		return e.kind == kindInt && e.matchInt(v.Int64(), 0, true)
	case pipeline.KindUint64:
		return e.kind == kindInt && e.matchInt(0, v.Uint64(), false)
	case pipeline.KindAny:
		return e.match(v.Any())
	}
	return e.match(v.Value())
}

func (e *equalsValue) match(v any) bool {
	switch e.kind {
	case kindString:
		switch x := v.(type) {
		case string:
			return x == e.s
		case netip.Addr:
			return e.addr.IsValid() && x.Unmap().WithZone("") == e.addr
		default:
			if e.addr.IsValid() {
				if a, ok := address(v); ok {
					return a == e.addr
				}
			}
			return false
		}
	case kindBool:
		b, ok := v.(bool)
		return ok && b == e.b
	case kindInt:
		i, u, signed, ok := integer(v)
		return ok && e.matchInt(i, u, signed)
	}
	return false
}

// matchInt compares a field's integer: i when signed, u otherwise.
func (e *equalsValue) matchInt(i int64, u uint64, signed bool) bool {
	switch {
	case signed:
		return !e.big && i == e.i
	case e.big:
		return u == e.u
	default:
		return e.i >= 0 && u <= math.MaxInt64 && int64(u) == e.i
	}
}

func (e equals) String() string {
	parts := make([]string, len(e))
	for i, v := range e {
		parts[i] = v.field + ": " + v.text()
	}
	return "equals(" + strings.Join(parts, ", ") + ")"
}

func (e *equalsValue) text() string {
	switch e.kind {
	case kindBool:
		return strconv.FormatBool(e.b)
	case kindInt:
		if e.big {
			return strconv.FormatUint(e.u, 10)
		}
		return strconv.FormatInt(e.i, 10)
	}
	return fmt.Sprintf("%q", e.s)
}
