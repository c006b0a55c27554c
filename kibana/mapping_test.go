package kibana

import (
	"regexp"
	"testing"

	"github.com/fleutan/fleutanbeat/output/elasticsearch"
)

// templateFields flattens the properties of the component templates the
// elasticsearch output installs: dataset ("" for the common one) to field
// to mapping type.
func templateFields(t *testing.T) map[string]map[string]string {
	t.Helper()
	tpls, err := elasticsearch.Templates(elasticsearch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, tp := range tpls {
		if tp.Kind != elasticsearch.KindComponent {
			continue
		}
		ds := ""
		for _, d := range elasticsearch.AllDatasets() {
			if tp.Name == d+"@mappings" {
				ds = d
			}
		}
		fields := map[string]string{}
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			if props, ok := m["properties"].(map[string]any); ok {
				for k, sub := range props {
					name := k
					if prefix != "" {
						name = prefix + "." + k
					}
					if sm, ok := sub.(map[string]any); ok {
						if typ, ok := sm["type"].(string); ok {
							fields[name] = typ
						}
					}
					walk(name, sub)
				}
				return
			}
			for k, sub := range m {
				if k == "template" || k == "mappings" {
					walk(prefix, sub)
				}
			}
		}
		walk("", tp.Body)
		out[ds] = fields
	}
	return out
}

// fits says whether an operation can run on a field of a mapping type.
func fits(op, typ string) bool {
	numeric := typ == "long" || typ == "double"
	switch op {
	case "sum", "average", "max", "min", "median", "percentile", "range":
		return numeric
	case "terms":
		return numeric || typ == "keyword" || typ == "ip" || typ == "boolean"
	case "unique_count":
		return numeric || typ == "keyword" || typ == "ip"
	case "date_histogram":
		return typ == "date"
	}
	return false
}

var datasetClause = regexp.MustCompile(`data_stream\.dataset : "([a-z.]+)"`)

func TestEveryFieldIsMappedWithAFittingType(t *testing.T) {
	mapped := templateFields(t)
	if len(mapped[""]) == 0 || len(mapped["fleutan.cpu"]) == 0 {
		t.Fatalf("template walk found no fields: %v", mapped)
	}
	checked := 0
	for _, o := range parseBundle(t) {
		if o.Type != "lens" {
			continue
		}
		st := o.Attributes["state"].(map[string]any)
		q := st["query"].(map[string]any)["query"].(string)
		mt := datasetClause.FindStringSubmatch(q)
		if mt == nil {
			t.Errorf("%s: query %q names no dataset", o.ID, q)
			continue
		}
		layers, _ := lensState(t, o)
		for _, l := range layers {
			for id, c := range l.Columns {
				typ, ok := mapped[mt[1]][c.SourceField]
				if !ok {
					typ, ok = mapped[""][c.SourceField]
				}
				if !ok {
					t.Errorf("%s: column %s field %s is not in the %s mapping", o.ID, id, c.SourceField, mt[1])
					continue
				}
				if !fits(c.OperationType, typ) {
					t.Errorf("%s: column %s: %s on %s field %s", o.ID, id, c.OperationType, typ, c.SourceField)
				}
				checked++
			}
		}
	}
	if checked != 95 {
		t.Errorf("checked %d columns, want 95", checked)
	}
}
