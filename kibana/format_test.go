package kibana

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/output/elasticsearch"
)

// templateUnits is every mapped field's Elasticsearch meta.unit, from
// the templates the elasticsearch output installs.
func templateUnits(t *testing.T) map[string]string {
	t.Helper()
	tpls, err := elasticsearch.Templates(elasticsearch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for k, v := range props {
			leaf, _ := v.(map[string]any)
			if sub, ok := leaf["properties"].(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			meta, _ := leaf["meta"].(map[string]any)
			unit, _ := meta["unit"].(string)
			out[prefix+k] = unit
		}
	}
	for _, tp := range tpls {
		tm, _ := tp.Body["template"].(map[string]any)
		mp, _ := tm["mappings"].(map[string]any)
		if props, ok := mp["properties"].(map[string]any); ok {
			walk("", props)
		}
	}
	return out
}

// wantFormat is the Kibana field format id of an Elasticsearch unit:
// "percent" shows a fraction (1 = 100%) as a percentage.
var wantFormat = map[string]string{"percent": "percent", "byte": "bytes"}

// TestFractionsUsePercentFormat: the *.pct fields are fractions, so the
// data view and every Lens column showing one use Kibana's percent
// format (which multiplies by 100); byte fields use the bytes format.
func TestFractionsUsePercentFormat(t *testing.T) {
	units := templateUnits(t)
	for _, f := range []string{"fleutan.cpu.pct", "fleutan.cpu.norm.pct", "fleutan.cpu.idle.pct"} {
		if units[f] != "percent" {
			t.Fatalf("%s: meta.unit %q in the templates, want percent", f, units[f])
		}
	}
	var percentColumns int
	for _, o := range parseBundle(t) {
		switch o.Type {
		case "index-pattern":
			raw, _ := o.Attributes["fieldFormatMap"].(string)
			var fm map[string]struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(raw), &fm); err != nil {
				t.Fatalf("%s: fieldFormatMap %q: %v", o.ID, raw, err)
			}
			for field, unit := range units {
				if want := wantFormat[unit]; fm[field].ID != want {
					t.Errorf("data view: %s (unit %q) has format %q, want %q", field, unit, fm[field].ID, want)
				}
			}
			for field := range fm {
				if _, ok := units[field]; !ok {
					t.Errorf("data view formats %s, which no template maps", field)
				}
			}
		case "lens":
			layers, _ := lensState(t, o)
			for _, l := range layers {
				for id, c := range l.Columns {
					if c.IsBucketed || c.OperationType == "unique_count" || c.OperationType == "count" {
						continue
					}
					want := wantFormat[units[c.SourceField]]
					format, _ := c.Params["format"].(map[string]any)
					got, _ := format["id"].(string)
					if got != want {
						t.Errorf("%s column %s (%s of %s): format %q, want %q", o.ID, id, c.OperationType, c.SourceField, got, want)
					}
					if got == "percent" && strings.HasSuffix(c.SourceField, ".pct") {
						percentColumns++
					}
				}
			}
		}
	}
	if percentColumns == 0 {
		t.Error("no Lens column shows a *.pct field: the test checked nothing")
	}
}
