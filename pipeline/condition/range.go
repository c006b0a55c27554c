package condition

import (
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

type rangeOp uint8

const (
	opGT rangeOp = iota
	opGTE
	opLT
	opLTE
)

var rangeOpNames = [...]string{opGT: "gt", opGTE: "gte", opLT: "lt", opLTE: "lte"}

type bound struct {
	field string
	op    rangeOp
	value float64
}

// ranges holds every bound of a range condition; all must hold. Written
// `range: {source.bytes.gte: 10}` or `range: {source.bytes: {gte: 10}}`.
type ranges []bound

func (b *builder) newRange(cfg config.Raw) (Condition, error) {
	leaves, err := b.fieldLeaves(cfg)
	if err != nil {
		return nil, err
	}
	var (
		out  ranges
		errs []error
	)
	for _, l := range leaves {
		i := strings.LastIndexByte(l.field, '.')
		opName := l.field[i+1:]
		op := -1
		for j, name := range rangeOpNames {
			if name == opName {
				op = j
			}
		}
		if op < 0 {
			errs = append(errs, l.raw.Errorf("unknown range operator %q (write FIELD.gt, gte, lt or lte)", opName))
			continue
		}
		if i <= 0 {
			errs = append(errs, l.raw.Errorf("range needs a field name before %q", opName))
			continue
		}
		n := deref(l.raw.Node())
		var f float64
		if n == nil || n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			text := "null"
			if n != nil && n.Kind == yaml.ScalarNode {
				text = strconv.Quote(n.Value)
			} else if n != nil {
				text = "a " + kindName(n)
			}
			errs = append(errs, l.raw.Errorf("%s is not a number", text))
			continue
		}
		out = append(out, bound{field: l.field[:i], op: rangeOp(op), value: f})
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return out, nil
}

func (r ranges) Check(m pipeline.M) bool {
	for _, b := range r {
		v, ok := m.GetMember(b.field)
		if !ok {
			return false
		}
		f, ok := numberOf(v)
		if !ok {
			return false
		}
		var hold bool
		switch b.op {
		case opGT:
			hold = f > b.value
		case opGTE:
			hold = f >= b.value
		case opLT:
			hold = f < b.value
		case opLTE:
			hold = f <= b.value
		}
		if !hold {
			return false
		}
	}
	return true
}

func (r ranges) String() string {
	parts := make([]string, len(r))
	for i, b := range r {
		parts[i] = b.field + "." + rangeOpNames[b.op] + ": " + strconv.FormatFloat(b.value, 'g', -1, 64)
	}
	return "range(" + strings.Join(parts, ", ") + ")"
}
