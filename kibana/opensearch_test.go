package kibana

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/output/elasticsearch"
)

// osObject is a saved object of opensearch/fleutan.ndjson, the index
// patterns and saved searches for OpenSearch Dashboards, which cannot
// import Kibana's Lens objects. OpenSearch Dashboards cannot run here, so
// these tests check what can be checked without it: the export format of
// its saved objects (Kibana 7.10's, which it forked), references, and
// that every field a search shows or queries is mapped by the templates.
type osObject struct {
	ID               string            `json:"id"`
	Type             string            `json:"type"`
	Attributes       map[string]any    `json:"attributes"`
	References       []reference       `json:"references"`
	MigrationVersion map[string]string `json:"migrationVersion"`
}

type reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

func parseOpenSearchBundle(t *testing.T) []osObject {
	t.Helper()
	b, err := os.ReadFile("opensearch/fleutan.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var out []osObject
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var o osObject
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		out = append(out, o)
	}
	return out
}

// kqlField finds the field names of a KQL query: the word before each ':',
// '>', '<' or '>='.
var kqlField = regexp.MustCompile(`([A-Za-z_@][A-Za-z0-9_.@]*)\s*(?::|>=|<=|>|<)`)

func TestOpenSearchDashboardsObjects(t *testing.T) {
	objs := parseOpenSearchBundle(t)
	mapped := map[string]string{} // field -> dataset ("" for common)
	for _, f := range elasticsearch.Fields() {
		mapped[f.Name] = f.Dataset
	}
	patterns := map[string]string{} // id -> dataset of the pattern ("" for all)
	ids := map[string]bool{}
	counts := map[string]int{}
	for _, o := range objs {
		if ids[o.ID] {
			t.Errorf("id %s twice", o.ID)
		}
		ids[o.ID] = true
		counts[o.Type]++
		if o.Type != "index-pattern" {
			continue
		}
		title, _ := o.Attributes["title"].(string)
		if o.Attributes["timeFieldName"] != "@timestamp" || o.MigrationVersion["index-pattern"] == "" {
			t.Errorf("index pattern %s: %v %v", o.ID, o.Attributes, o.MigrationVersion)
		}
		switch {
		case title == "metrics-fleutan.*":
			patterns[o.ID] = ""
		case strings.HasPrefix(title, "metrics-") && strings.HasSuffix(title, "-*"):
			ds := strings.TrimSuffix(strings.TrimPrefix(title, "metrics-"), "-*")
			if !slices.Contains(elasticsearch.AllDatasets(), ds) {
				t.Errorf("index pattern %s: %s is no dataset the templates map", o.ID, title)
			}
			patterns[o.ID] = ds
		default:
			t.Errorf("index pattern %s has title %q", o.ID, title)
		}
	}
	// One pattern for all and one per dataset; a saved search for each
	// dataset at least.
	if counts["index-pattern"] != 1+len(elasticsearch.AllDatasets()) || counts["search"] < len(elasticsearch.AllDatasets()) || len(counts) != 2 {
		t.Fatalf("objects by type: %v", counts)
	}
	searched := map[string]bool{}
	for _, o := range objs {
		if o.Type != "search" {
			continue
		}
		if o.MigrationVersion["search"] == "" {
			t.Errorf("search %s has no migrationVersion", o.ID)
		}
		meta, _ := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
		ssj, _ := meta["searchSourceJSON"].(string)
		var ss struct {
			Query struct {
				Query    string `json:"query"`
				Language string `json:"language"`
			} `json:"query"`
			Filter       []any  `json:"filter"`
			IndexRefName string `json:"indexRefName"`
		}
		if err := json.Unmarshal([]byte(ssj), &ss); err != nil {
			t.Errorf("search %s: searchSourceJSON: %v", o.ID, err)
			continue
		}
		if ss.Query.Language != "kuery" || ss.IndexRefName == "" {
			t.Errorf("search %s: query %+v", o.ID, ss)
		}
		var pattern string
		for _, r := range o.References {
			if r.Name == ss.IndexRefName && r.Type == "index-pattern" {
				pattern = r.ID
			}
			if !ids[r.ID] {
				t.Errorf("search %s: reference %s does not resolve", o.ID, r.ID)
			}
		}
		ds, ok := patterns[pattern]
		if !ok {
			t.Errorf("search %s: no index-pattern reference named %q", o.ID, ss.IndexRefName)
			continue
		}
		searched[ds] = true
		var fields []string
		cols, _ := o.Attributes["columns"].([]any)
		if len(cols) == 0 {
			t.Errorf("search %s has no columns", o.ID)
		}
		for _, c := range cols {
			fields = append(fields, c.(string))
		}
		for _, m := range kqlField.FindAllStringSubmatch(ss.Query.Query, -1) {
			if m[1] != "and" && m[1] != "or" && m[1] != "not" {
				fields = append(fields, m[1])
			}
		}
		for _, s := range o.Attributes["sort"].([]any) {
			fields = append(fields, s.([]any)[0].(string))
		}
		for _, f := range fields {
			fds, ok := mapped[f]
			if !ok {
				t.Errorf("search %s: field %s is not in the index templates", o.ID, f)
			} else if fds != "" && ds != "" && fds != ds {
				t.Errorf("search %s on %s: field %s belongs to %s", o.ID, ds, f, fds)
			}
		}
	}
	for _, ds := range elasticsearch.AllDatasets() {
		if !searched[ds] {
			t.Errorf("no saved search for %s", ds)
		}
	}
}
