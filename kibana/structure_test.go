package kibana

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"testing"
)

type object struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Attributes map[string]any `json:"attributes"`
	References []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"references"`
}

// lensLayer is the part of a Lens form-based layer the tests check.
type lensLayer struct {
	ColumnOrder []string `json:"columnOrder"`
	Columns     map[string]struct {
		OperationType string         `json:"operationType"`
		SourceField   string         `json:"sourceField"`
		IsBucketed    bool           `json:"isBucketed"`
		DataType      string         `json:"dataType"`
		Params        map[string]any `json:"params"`
	} `json:"columns"`
}

func parseBundle(t *testing.T) []object {
	t.Helper()
	var objs []object
	sc := bufio.NewScanner(bytes.NewReader(Objects()))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var o object
		var generic map[string]any
		if err := json.Unmarshal(sc.Bytes(), &generic); err != nil {
			t.Fatalf("line %d does not parse: %v", line, err)
		}
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		objs = append(objs, o)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return objs
}

func lensState(t *testing.T, o object) (map[string]lensLayer, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(o.Attributes["state"])
	var st struct {
		DatasourceStates struct {
			FormBased struct {
				Layers map[string]lensLayer `json:"layers"`
			} `json:"formBased"`
		} `json:"datasourceStates"`
		Visualization map[string]any `json:"visualization"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("%s: state: %v", o.ID, err)
	}
	return st.DatasourceStates.FormBased.Layers, st.Visualization
}

func TestBundleCounts(t *testing.T) {
	count := map[string]int{}
	for _, o := range parseBundle(t) {
		count[o.Type]++
	}
	want := map[string]int{"index-pattern": 1, "lens": 27, "dashboard": 6}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%d objects of type %s, want %d", count[k], k, v)
		}
	}
	if len(count) != len(want) {
		t.Errorf("types %v, want %v", count, want)
	}
}

func TestIDsUniqueAndReferencesResolve(t *testing.T) {
	objs := parseBundle(t)
	have := map[string]bool{}
	for _, o := range objs {
		k := o.Type + "/" + o.ID
		if o.ID == "" || have[k] {
			t.Errorf("id %q of type %s empty or duplicated", o.ID, o.Type)
		}
		have[k] = true
	}
	for _, o := range objs {
		names := map[string]bool{}
		for _, r := range o.References {
			if !have[r.Type+"/"+r.ID] {
				t.Errorf("%s %s: reference %s %s/%s is not in the bundle", o.Type, o.ID, r.Name, r.Type, r.ID)
			}
			if names[r.Name] {
				t.Errorf("%s %s: reference name %s repeated", o.Type, o.ID, r.Name)
			}
			names[r.Name] = true
		}
	}
}

func TestStringAttributesParse(t *testing.T) {
	for _, o := range parseBundle(t) {
		if o.Type != "dashboard" {
			continue
		}
		refs := map[string]bool{}
		for _, r := range o.References {
			refs[r.Name] = true
		}
		var panels []struct {
			PanelIndex   string `json:"panelIndex"`
			PanelRefName string `json:"panelRefName"`
			GridData     struct {
				I string `json:"i"`
			} `json:"gridData"`
		}
		if err := json.Unmarshal([]byte(o.Attributes["panelsJSON"].(string)), &panels); err != nil {
			t.Fatalf("%s: panelsJSON: %v", o.ID, err)
		}
		if len(panels) < 4 {
			t.Errorf("%s: %d panels, want at least 4", o.ID, len(panels))
		}
		for _, p := range panels {
			if !refs[p.PanelIndex+":"+p.PanelRefName] || p.GridData.I != p.PanelIndex {
				t.Errorf("%s: panel %s has no reference %s:%s", o.ID, p.PanelIndex, p.PanelIndex, p.PanelRefName)
			}
		}
		var anyv any
		if err := json.Unmarshal([]byte(o.Attributes["optionsJSON"].(string)), &anyv); err != nil {
			t.Errorf("%s: optionsJSON: %v", o.ID, err)
		}
		meta := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
		if err := json.Unmarshal([]byte(meta["searchSourceJSON"].(string)), &anyv); err != nil {
			t.Errorf("%s: searchSourceJSON: %v", o.ID, err)
		}
		cg := o.Attributes["controlGroupInput"].(map[string]any)
		var controls map[string]struct {
			ExplicitInput struct {
				FieldName  string `json:"fieldName"`
				DataViewID string `json:"dataViewId"`
			} `json:"explicitInput"`
		}
		if err := json.Unmarshal([]byte(cg["panelsJSON"].(string)), &controls); err != nil {
			t.Fatalf("%s: controlGroupInput.panelsJSON: %v", o.ID, err)
		}
		hostFilter := false
		for id, c := range controls {
			if c.ExplicitInput.FieldName == "host.name" && refs["controlGroup_"+id+":optionsListDataView"] {
				hostFilter = true
			}
		}
		if !hostFilter {
			t.Errorf("%s: no host.name control with its data view reference", o.ID)
		}
	}
}

func TestLensLayersAreConsistent(t *testing.T) {
	for _, o := range parseBundle(t) {
		if o.Type != "lens" {
			continue
		}
		refs := map[string]bool{}
		for _, r := range o.References {
			if r.Type == "index-pattern" {
				refs[r.Name] = true
			}
		}
		layers, viz := lensState(t, o)
		if len(layers) != 1 {
			t.Errorf("%s: %d layers, want 1", o.ID, len(layers))
		}
		for id, l := range layers {
			if !refs["indexpattern-datasource-layer-"+id] {
				t.Errorf("%s: layer %s has no data view reference", o.ID, id)
			}
			if len(l.ColumnOrder) != len(l.Columns) {
				t.Errorf("%s: columnOrder %v vs %d columns", o.ID, l.ColumnOrder, len(l.Columns))
			}
			for _, c := range l.ColumnOrder {
				col, ok := l.Columns[c]
				if !ok {
					t.Errorf("%s: columnOrder names missing column %s", o.ID, c)
				}
				if col.SourceField == "" {
					t.Errorf("%s: column %s has no field", o.ID, c)
				}
				if ob, ok := col.Params["orderBy"].(map[string]any); ok {
					if _, ok := l.Columns[ob["columnId"].(string)]; !ok {
						t.Errorf("%s: column %s orders by missing column %v", o.ID, c, ob["columnId"])
					}
				}
			}
			for _, a := range accessors(viz) {
				if _, ok := l.Columns[a]; !ok {
					t.Errorf("%s: accessor %s names no column", o.ID, a)
				}
			}
		}
	}
}

// accessors lists every column id the visualization state points at.
func accessors(viz map[string]any) []string {
	var out []string
	add := func(m map[string]any, keys ...string) {
		for _, k := range keys {
			switch v := m[k].(type) {
			case string:
				out = append(out, v)
			case []any:
				for _, s := range v {
					out = append(out, s.(string))
				}
			}
		}
	}
	add(viz, "xAccessor", "yAccessor", "valueAccessor")
	if ls, ok := viz["layers"].([]any); ok {
		for _, l := range ls {
			add(l.(map[string]any), "xAccessor", "splitAccessor", "accessors")
		}
	}
	if cs, ok := viz["columns"].([]any); ok {
		for _, c := range cs {
			add(c.(map[string]any), "columnId")
		}
	}
	sort.Strings(out)
	return out
}

// TestBundleIsGenerated fails when fleutan.ndjson was edited by hand or
// the generator changed without `go generate`.
func TestBundleIsGenerated(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out := t.TempDir() + "/gen.ndjson"
	cmd := exec.Command("go", "run", "./internal/gen", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Objects()) {
		t.Error("fleutan.ndjson differs from the generator's output: run go generate ./kibana")
	}
}
