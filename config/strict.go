package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The strict decoder walks the YAML node tree itself instead of calling
// yaml.Node.Decode: yaml.v3 silently drops unknown keys, stops at the first
// type error and reports only a line, while users need every mistake of
// a file at once with line, column and the full dotted key.

var (
	rawType      = reflect.TypeOf(Raw{})
	nodeType     = reflect.TypeOf(yaml.Node{})
	durationType = reflect.TypeOf(time.Duration(0))
	unmarshalerT = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	obsoleteT    = reflect.TypeOf((*interface {
		UnmarshalYAML(func(any) error) error
	})(nil)).Elem()
	textUnmarshalerT = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// maxDecodeDepth bounds recursion on hostile input; real configs nest a
// dozen levels at most.
const maxDecodeDepth = 200

func decodeInto(r Raw, out any) error {
	v := reflect.ValueOf(out)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
		return r.Errorf("internal error: Decode needs a non-nil pointer, got %T", out)
	}
	d := &decoder{}
	d.value(r, v.Elem(), 0)
	return joinErrors(d.errs)
}

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

type decoder struct {
	errs []error
}

// fail records an error about the value at r. The message may quote the
// value; under a secret key every copy of it is masked.
func (d *decoder) fail(r Raw, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if isSecretPath(r.path) && r.node != nil && r.node.Kind == yaml.ScalarNode && r.node.Value != "" {
		msg = strings.ReplaceAll(msg, strconv.Quote(r.node.Value), redactedText)
		msg = strings.ReplaceAll(msg, r.node.Value, redactedText)
	}
	d.errs = append(d.errs, r.Errorf("%s", msg))
}

func isNullNode(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is for "expected X, got Y" messages.
func describe(r Raw) string {
	n := r.node
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return show(r.path, n.Value)
	}
	return "a " + kindName(n)
}

// show quotes a value for a message unless it sits under a secret key.
func show(path, value string) string {
	if isSecretPath(path) {
		return redactedText
	}
	return strconv.Quote(value)
}

func (d *decoder) value(r Raw, v reflect.Value, depth int) {
	n := r.node
	for n != nil && n.Kind == yaml.AliasNode && depth < maxDecodeDepth {
		n, depth = n.Alias, depth+1
		r.node = n
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return
	}
	if depth > maxDecodeDepth {
		d.fail(r, "nested more than %d levels deep", maxDecodeDepth)
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 1 {
			r.node = n.Content[0]
			d.value(r, v, depth+1)
		}
		return
	}

	switch v.Type() {
	case rawType:
		v.Set(reflect.ValueOf(r))
		return
	case nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	}
	// A null leaves the destination as it was, so defaults survive `key: ~`.
	if isNullNode(n) {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(r, v.Elem(), depth+1)
		return
	}
	if v.CanAddr() {
		if d.custom(r, v.Addr()) {
			return
		}
	}
	if v.Type() == durationType {
		d.duration(r, v)
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.structure(r, v, depth)
	case reflect.Map:
		d.mapping(r, v, depth)
	case reflect.Slice:
		d.slice(r, v, depth)
	case reflect.Array:
		d.array(r, v, depth)
	case reflect.Interface:
		d.iface(r, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(r, "expected a string, got %s", describe(r))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		d.boolean(r, v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.integer(r, v)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.unsigned(r, v)
	case reflect.Float32, reflect.Float64:
		d.float(r, v)
	default:
		d.fail(r, "internal error: cannot decode into %s", v.Type())
	}
}

// custom runs the type's own unmarshaler, keeping its message and adding
// the position and key.
func (d *decoder) custom(r Raw, p reflect.Value) bool {
	t := p.Type()
	var err error
	switch {
	case t.Implements(unmarshalerT):
		err = p.Interface().(yaml.Unmarshaler).UnmarshalYAML(r.node)
	case t.Implements(obsoleteT):
		err = p.Interface().(interface {
			UnmarshalYAML(func(any) error) error
		}).UnmarshalYAML(func(x any) error { return r.node.Decode(x) })
	case t.Implements(textUnmarshalerT) && r.node.Kind == yaml.ScalarNode:
		err = p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(r.node.Value))
	default:
		return false
	}
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			d.errs = append(d.errs, err)
			return true
		}
		d.fail(r, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return true
}

func (d *decoder) duration(r Raw, v reflect.Value) {
	var x Duration
	if err := x.UnmarshalYAML(r.node); err != nil {
		d.fail(r, "%s", err.Error())
		return
	}
	v.SetInt(int64(x))
}

// field is a settable key of a struct; index walks inline structs.
type field struct {
	name  string
	index []int
}

// fields lists the keys a struct type accepts and its inline map, if any.
func fields(t reflect.Type, prefix []int, out map[string]field, inlineMap *[]int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := false
		for _, o := range strings.Split(opts, ",") {
			if o == "inline" {
				inline = true
			}
		}
		idx := append(append([]int(nil), prefix...), i)
		if inline {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				fields(ft, idx, out, inlineMap)
			case reflect.Map:
				if *inlineMap == nil {
					*inlineMap = idx
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if _, dup := out[name]; !dup {
			out[name] = field{name: name, index: idx}
		}
	}
}

// fieldByIndex is reflect.Value.FieldByIndex allocating nil inline pointers.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func (d *decoder) structure(r Raw, v reflect.Value, depth int) {
	if r.node.Kind != yaml.MappingNode {
		d.fail(r, "expected a mapping, got %s", describe(r))
		return
	}
	known := map[string]field{}
	var inlineMap []int
	fields(v.Type(), nil, known, &inlineMap)
	for i := 0; i+1 < len(r.node.Content); i += 2 {
		k, val := r.node.Content[i], r.node.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(r.sub(k, r.path), "keys must be names, got %s", describe(r.sub(k, r.path)))
			continue
		}
		child := r.sub(val, join(r.path, k.Value))
		if f, ok := known[k.Value]; ok {
			d.value(child, fieldByIndex(v, f.index), depth+1)
			continue
		}
		if inlineMap != nil {
			d.mapEntry(r, k, val, fieldByIndex(v, inlineMap), depth)
			continue
		}
		names := make([]string, 0, len(known))
		for name := range known {
			names = append(names, name)
		}
		sort.Strings(names)
		keyAt := r.sub(k, child.path)
		if len(names) == 0 {
			d.fail(keyAt, "unknown key (this section takes no settings)")
		} else {
			d.fail(keyAt, "unknown key (known keys: %s)", strings.Join(names, ", "))
		}
	}
}

func (d *decoder) mapping(r Raw, v reflect.Value, depth int) {
	if r.node.Kind != yaml.MappingNode {
		d.fail(r, "expected a mapping, got %s", describe(r))
		return
	}
	for i := 0; i+1 < len(r.node.Content); i += 2 {
		d.mapEntry(r, r.node.Content[i], r.node.Content[i+1], v, depth)
	}
}

func (d *decoder) mapEntry(r Raw, k, val *yaml.Node, m reflect.Value, depth int) {
	t := m.Type()
	if m.IsNil() {
		m.Set(reflect.MakeMap(t))
	}
	kr := r.sub(k, join(r.path, k.Value))
	key := reflect.New(t.Key()).Elem()
	before := len(d.errs)
	if k.Kind != yaml.ScalarNode {
		d.fail(kr, "keys must be names, got %s", describe(kr))
		return
	}
	d.value(kr, key, depth+1)
	if len(d.errs) > before {
		return
	}
	elem := reflect.New(t.Elem()).Elem()
	d.value(r.sub(val, join(r.path, k.Value)), elem, depth+1)
	m.SetMapIndex(key, elem)
}

func (d *decoder) slice(r Raw, v reflect.Value, depth int) {
	if r.node.Kind != yaml.SequenceNode {
		d.fail(r, "expected a list, got %s", describe(r))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(r.node.Content), len(r.node.Content))
	for i, n := range r.node.Content {
		d.value(r.sub(n, r.path+"."+strconv.Itoa(i)), s.Index(i), depth+1)
	}
	v.Set(s)
}

func (d *decoder) array(r Raw, v reflect.Value, depth int) {
	if r.node.Kind != yaml.SequenceNode {
		d.fail(r, "expected a list, got %s", describe(r))
		return
	}
	if len(r.node.Content) != v.Len() {
		d.fail(r, "expected a list of %d values, got %d", v.Len(), len(r.node.Content))
		return
	}
	for i, n := range r.node.Content {
		d.value(r.sub(n, r.path+"."+strconv.Itoa(i)), v.Index(i), depth+1)
	}
}

// iface fills an `any` with yaml.v3's generic form (map[string]any, []any,
// int, float64, bool, string), for free-form sections such as fields.
func (d *decoder) iface(r Raw, v reflect.Value) {
	if v.NumMethod() != 0 {
		d.fail(r, "internal error: cannot decode into %s", v.Type())
		return
	}
	var x any
	if err := r.node.Decode(&x); err != nil {
		d.fail(r, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	if x != nil {
		v.Set(reflect.ValueOf(x))
	}
}

func (d *decoder) boolean(r Raw, v reflect.Value) {
	if r.node.Kind != yaml.ScalarNode {
		d.fail(r, "expected true or false, got %s", describe(r))
		return
	}
	// yaml.v3 also accepts the YAML 1.1 spellings for bool fields; older
	// Beats configs use them.
	switch strings.ToLower(r.node.Value) {
	case "true", "yes", "on":
		v.SetBool(true)
	case "false", "no", "off":
		v.SetBool(false)
	default:
		d.fail(r, "%s is not a boolean (use true or false)", show(r.path, r.node.Value))
	}
}

func numberText(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "_", "")
}

func (d *decoder) integer(r Raw, v reflect.Value) {
	if r.node.Kind != yaml.ScalarNode {
		d.fail(r, "expected an integer, got %s", describe(r))
		return
	}
	bits := v.Type().Bits()
	lo, hi := int64(math.MinInt64)>>(64-bits), int64(math.MaxInt64)>>(64-bits)
	text := numberText(r.node.Value)
	x, err := strconv.ParseInt(text, 0, 64)
	if err != nil {
		var ok bool
		x, ok = integralFloat(text)
		if !ok {
			if errors.Is(err, strconv.ErrRange) {
				d.fail(r, "%s is out of range (%d..%d)", show(r.path, r.node.Value), lo, hi)
			} else {
				d.fail(r, "%s is not an integer", show(r.path, r.node.Value))
			}
			return
		}
	}
	if v.OverflowInt(x) {
		d.fail(r, "%s is out of range (%d..%d)", show(r.path, r.node.Value), lo, hi)
		return
	}
	v.SetInt(x)
}

// integralFloat accepts 1e6 for an integer setting, as yaml.v3 does.
func integralFloat(text string) (int64, bool) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

func (d *decoder) unsigned(r Raw, v reflect.Value) {
	if r.node.Kind != yaml.ScalarNode {
		d.fail(r, "expected a non-negative integer, got %s", describe(r))
		return
	}
	hi := uint64(math.MaxUint64) >> (64 - v.Type().Bits())
	text := numberText(r.node.Value)
	x, err := strconv.ParseUint(text, 0, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(text, 0, 64); ierr == nil && i < 0 {
			d.fail(r, "%s is out of range (0..%d)", show(r.path, r.node.Value), hi)
			return
		}
		f, ok := integralFloat(text)
		switch {
		case ok && f < 0:
			d.fail(r, "%s is out of range (0..%d)", show(r.path, r.node.Value), hi)
			return
		case ok:
			x = uint64(f)
		case errors.Is(err, strconv.ErrRange) || strings.HasPrefix(text, "-"):
			d.fail(r, "%s is out of range (0..%d)", show(r.path, r.node.Value), hi)
			return
		default:
			d.fail(r, "%s is not an integer", show(r.path, r.node.Value))
			return
		}
	}
	if v.OverflowUint(x) {
		d.fail(r, "%s is out of range (0..%d)", show(r.path, r.node.Value), hi)
		return
	}
	v.SetUint(x)
}

func (d *decoder) float(r Raw, v reflect.Value) {
	if r.node.Kind != yaml.ScalarNode {
		d.fail(r, "expected a number, got %s", describe(r))
		return
	}
	x, err := strconv.ParseFloat(numberText(r.node.Value), v.Type().Bits())
	if err != nil {
		// .inf and .nan are YAML spellings that Go does not parse.
		if r.node.ShortTag() != "!!float" || r.node.Decode(&x) != nil {
			d.fail(r, "%s is not a number", show(r.path, r.node.Value))
			return
		}
	}
	if v.OverflowFloat(x) {
		d.fail(r, "%s is out of range", show(r.path, r.node.Value))
		return
	}
	v.SetFloat(x)
}
