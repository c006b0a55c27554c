package queryapi

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/rdma"
	"gopkg.in/yaml.v3"
)

// schemaTypes maps the spec's component schemas to the Go types whose
// JSON they describe; TestSchemasAreTheGoTypes holds each pair equal.
var schemaTypes = map[string]reflect.Type{
	"Error":            reflect.TypeFor[errorBody](),
	"Flows":            reflect.TypeFor[flowsDoc](),
	"FlowReport":       reflect.TypeFor[flowItem](),
	"Flow":             reflect.TypeFor[flows.Flow](),
	"Namespace":        reflect.TypeFor[flows.Namespace](),
	"Unattributed":     reflect.TypeFor[flows.Unattributed](),
	"TCPInfo":          reflect.TypeFor[flows.TCPInfo](),
	"Route":            reflect.TypeFor[flows.Route](),
	"Delta":            reflect.TypeFor[flows.Delta](),
	"Process":          reflect.TypeFor[process.Process](),
	"ProcessView":      reflect.TypeFor[processDoc](),
	"CPU":              reflect.TypeFor[cpuDoc](),
	"CoreUsage":        reflect.TypeFor[cpu.CoreUsage](),
	"ProcessUsage":     reflect.TypeFor[cpu.ProcessUsage](),
	"ProcessCoreUsage": reflect.TypeFor[cpu.ProcessCoreUsage](),
	"QdiscView":        reflect.TypeFor[qdiscDoc](),
	"QdiscNamespace":   reflect.TypeFor[qdisc.Namespace](),
	"QdiscReport":      reflect.TypeFor[qdiscReport](),
	"QdiscChange":      reflect.TypeFor[qdiscChange](),
	"Qdisc":            reflect.TypeFor[qdisc.Qdisc](),
	"Device":           reflect.TypeFor[qdisc.Device](),
	"Queue":            reflect.TypeFor[queueReport](),
	"QueueFlow":        reflect.TypeFor[qdisc.QueueFlow](),
	"HTBQdisc":         reflect.TypeFor[qdisc.HTBQdisc](),
	"HTBClass":         reflect.TypeFor[qdisc.HTBClass](),
	"TBF":              reflect.TypeFor[qdisc.TBF](),
	"FQCodel":          reflect.TypeFor[qdisc.FQCodel](),
	"FQ":               reflect.TypeFor[qdisc.FQ](),
	"Cake":             reflect.TypeFor[qdisc.Cake](),
	"CakeTin":          reflect.TypeFor[qdisc.CakeTin](),
	"RDMAView":         reflect.TypeFor[rdmaDoc](),
	"RDMADevice":       reflect.TypeFor[rdma.Device](),
	"RDMAPort":         reflect.TypeFor[rdma.Port](),
	"RDMAQPReport":     reflect.TypeFor[qpReport](),
	"RDMAQPChange":     reflect.TypeFor[qpChange](),
	"RDMAQP":           reflect.TypeFor[rdma.QP](),
	"RDMACMID":         reflect.TypeFor[rdma.CMID](),
	"RDMAPortReport":   reflect.TypeFor[portReport](),
}

// TestSchemasAreTheGoTypes compares every component schema with the JSON
// encoding/json writes for its Go type: the same properties (json names,
// embedded structs flattened), required exactly when the field has no
// omitempty, no other properties allowed, and JSON types that fit the Go
// kinds (unsigned integers with minimum 0). A field added to a library
// snapshot type fails it until the spec describes it.
func TestSchemasAreTheGoTypes(t *testing.T) {
	doc := loadSpec(t)
	for name, typ := range schemaTypes {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.yaml has no schema %s for %s", name, typ)
			continue
		}
		checkSchema(t, doc, name, s, typ)
	}
	for name := range doc.Components.Schemas {
		if _, ok := schemaTypes[name]; !ok {
			t.Errorf("schema %s has no Go type in schemaTypes: nothing checks it", name)
		}
	}
}

var (
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
)

// schemaTypeNames are the JSON types a schema allows.
func (s *schema) types() []string {
	switch v := s.Type.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func resolve(t *testing.T, doc *openAPI, s *schema) *schema {
	t.Helper()
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok || doc.Components.Schemas[name] == nil {
			t.Fatalf("unresolvable $ref %q", s.Ref)
		}
		s = doc.Components.Schemas[name]
	}
	return s
}

func checkSchema(t *testing.T, doc *openAPI, where string, s *schema, typ reflect.Type) {
	t.Helper()
	if s == nil {
		t.Errorf("%s: no schema for %s", where, typ)
		return
	}
	if s.Ref != "" {
		// A named schema is checked against its own Go type once; here
		// only that it is that type.
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if want, ok := schemaTypes[name]; ok && want != typ {
			t.Errorf("%s: $ref %s is %s, the Go field is %s", where, name, want, typ)
		}
		resolve(t, doc, s)
		return
	}
	if len(s.OneOf) > 0 {
		// The one use: a nullable named schema, for a pointer that
		// encodes as null.
		if len(s.OneOf) != 2 || s.OneOf[0].Ref == "" || !slices.Equal(s.OneOf[1].types(), []string{"null"}) {
			t.Errorf("%s: oneOf is used only as [$ref, {type: \"null\"}]", where)
			return
		}
		if typ.Kind() != reflect.Pointer {
			t.Errorf("%s: nullable, but the Go %s is never null", where, typ)
		}
		checkSchema(t, doc, where, s.OneOf[0], typ)
		return
	}
	types := s.types()
	if slices.Contains(types, "null") && typ.Kind() != reflect.Pointer {
		t.Errorf("%s: nullable, but the Go %s is never null", where, typ)
	}
	is := func(jt string) {
		t.Helper()
		if !slices.Contains(types, jt) {
			t.Errorf("%s: schema type %v, the Go %s encodes as %s", where, types, typ, jt)
		}
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == reflect.TypeFor[time.Time]():
		is("string")
		if s.Extra["format"] != "date-time" {
			t.Errorf("%s: a time needs format: date-time", where)
		}
		return
	case typ.Implements(jsonMarshaler) || reflect.PointerTo(typ).Implements(jsonMarshaler):
		t.Errorf("%s: %s has its own JSON encoding: give it a case here", where, typ)
		return
	case typ.Implements(textMarshaler) || reflect.PointerTo(typ).Implements(textMarshaler):
		is("string")
		return
	}
	switch typ.Kind() {
	case reflect.Bool:
		is("boolean")
	case reflect.String:
		is("string")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		is("integer")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		is("integer")
		if !nonNegativeEnum(s.Extra["enum"]) && (s.Minimum == nil || *s.Minimum < 0) {
			t.Errorf("%s: unsigned %s needs minimum: 0 (or more)", where, typ)
		}
	case reflect.Float32, reflect.Float64:
		is("number")
	case reflect.Slice, reflect.Array:
		is("array")
		checkSchema(t, doc, where+"[]", s.Items, typ.Elem())
	case reflect.Map:
		// A map of names to values: an object whose members are all of
		// the value's schema.
		is("object")
		if typ.Key().Kind() != reflect.String {
			t.Errorf("%s: a map with %s keys is no JSON object", where, typ.Key())
		}
		add, ok := s.AdditionalProperties.(map[string]any)
		if !ok || len(s.Properties) > 0 {
			t.Errorf("%s: the map %s needs additionalProperties: {schema} and no properties", where, typ)
			return
		}
		b, _ := yaml.Marshal(add)
		var vs schema
		if err := yaml.Unmarshal(b, &vs); err != nil {
			t.Fatal(err)
		}
		checkSchema(t, doc, where+"{}", &vs, typ.Elem())
	case reflect.Struct:
		is("object")
		if s.AdditionalProperties != false {
			t.Errorf("%s: an object of %s needs additionalProperties: false", where, typ)
		}
		fields := map[string]reflect.Type{}
		var required []string
		jsonFields(typ, fields, &required)
		var names, props []string
		for n := range fields {
			names = append(names, n)
		}
		for n := range s.Properties {
			props = append(props, n)
		}
		sort.Strings(names)
		sort.Strings(props)
		if !slices.Equal(names, props) {
			t.Errorf("%s: properties %v, the JSON of %s has %v", where, props, typ, names)
		}
		req := slices.Clone(s.Required)
		sort.Strings(req)
		sort.Strings(required)
		if !slices.Equal(req, required) {
			t.Errorf("%s: required %v, %s always writes %v", where, req, typ, required)
		}
		for n, ft := range fields {
			if ps, ok := s.Properties[n]; ok {
				checkSchema(t, doc, where+"."+n, ps, ft)
			}
		}
	default:
		t.Errorf("%s: no rule for the Go kind %s", where, typ.Kind())
	}
}

// jsonFields lists the members encoding/json writes for struct typ, and
// those it always writes (no omitempty).
func jsonFields(typ reflect.Type, fields map[string]reflect.Type, required *[]string) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				jsonFields(et, fields, required)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
		if !slices.Contains(strings.Split(opts, ","), "omitempty") && !slices.Contains(strings.Split(opts, ","), "omitzero") {
			*required = append(*required, name)
		}
	}
}

// nonNegativeEnum reports whether v is an enum list of integers >= 0.
func nonNegativeEnum(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return false
	}
	for _, x := range l {
		if n, ok := x.(int); !ok || n < 0 {
			return false
		}
	}
	return true
}
