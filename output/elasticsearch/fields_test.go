package elasticsearch

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestFieldReferenceMatchesTemplates keeps docs/FIELDS.md and the
// templates equal: the same fields, each with the same type and unit.
func TestFieldReferenceMatchesTemplates(t *testing.T) {
	f, err := os.Open("../../docs/FIELDS.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type row struct{ typ, unit string }
	doc := map[string]row{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Errorf("FIELDS.md:%d: want 4 cells (field, type, unit, meaning): %s", n, line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		unit := strings.TrimSpace(cells[2])
		if unit == "—" {
			unit = ""
		}
		if _, dup := doc[name]; dup {
			t.Errorf("FIELDS.md:%d: %s listed twice", n, name)
		}
		doc[name] = row{strings.TrimSpace(cells[1]), unit}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, fd := range Fields() {
		r, ok := doc[fd.Name]
		if !ok {
			t.Errorf("%s (%s, %s) is mapped but missing from docs/FIELDS.md", fd.Name, fd.Type, fd.Unit)
			continue
		}
		delete(doc, fd.Name)
		if r.typ != fd.Type || r.unit != fd.Unit {
			t.Errorf("%s: FIELDS.md says %s in %q, the templates %s in %q", fd.Name, r.typ, r.unit, fd.Type, fd.Unit)
		}
	}
	for name := range doc {
		t.Errorf("docs/FIELDS.md lists %s, which no template maps", name)
	}
}

// TestEveryNumberHasAUnit: a numeric field without a unit is a field
// nobody can read; a *.pct field is a fraction (1 = 100%), as in Beats.
func TestEveryNumberHasAUnit(t *testing.T) {
	known := map[string]bool{UnitBytes: true, UnitBitsPS: true, UnitPacketsPS: true, UnitCountPS: true, UnitMicros: true, UnitNanos: true,
		UnitPackets: true, UnitSegments: true, UnitFraction: true, UnitCount: true, UnitCores: true, UnitID: true}
	for _, f := range Fields() {
		numeric := f.Type == "long" || f.Type == "double"
		switch {
		case numeric && !known[f.Unit]:
			t.Errorf("%s (%s): unit %q is not one of the documented units", f.Name, f.Type, f.Unit)
		case !numeric && f.Unit != "":
			t.Errorf("%s (%s) is not a number but has unit %q", f.Name, f.Type, f.Unit)
		}
		if strings.HasSuffix(f.Name, ".pct") != (f.Unit == UnitFraction && f.Name != "fleutan.cpu.share") {
			t.Errorf("%s: unit %q; every *.pct field, and no other but share, is a fraction", f.Name, f.Unit)
		}
	}
}

// TestTemplatesCarryUnits: Elasticsearch's meta.unit, which Kibana reads,
// says percent (a fraction) for the *.pct fields and byte, micros, nanos
// where the unit has such a name.
func TestTemplatesCarryUnits(t *testing.T) {
	ts, err := Templates(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	leaves := map[string]map[string]any{}
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for k, v := range props {
			m := v.(map[string]any)
			if sub, ok := m["properties"].(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			leaves[prefix+k] = m
		}
	}
	for _, tpl := range ts {
		tm, _ := tpl.Body["template"].(map[string]any)
		mp, _ := tm["mappings"].(map[string]any)
		if props, ok := mp["properties"].(map[string]any); ok {
			walk("", props)
		}
	}
	for _, tc := range []struct{ field, unit string }{
		{"fleutan.cpu.pct", "percent"},
		{"fleutan.cpu.norm.pct", "percent"},
		{"fleutan.cpu.idle.pct", "percent"},
		{"fleutan.cpu.user.pct", "percent"},
		{"fleutan.cpu.share", "percent"},
		{"event.duration", "nanos"},
		{"fleutan.collection.duration_us", "micros"},
		{"fleutan.flow.tcp.rtt_us", "micros"},
		{"network.bytes", "byte"},
		{"fleutan.qdisc.backlog_bytes", "byte"},
		{"fleutan.flow.tcp.cwnd", ""},
		{"fleutan.cpu.migrations", ""},
	} {
		leaf, ok := leaves[tc.field]
		if !ok {
			t.Errorf("%s is not mapped", tc.field)
			continue
		}
		meta, _ := leaf["meta"].(map[string]any)
		if got, _ := meta["unit"].(string); got != tc.unit {
			t.Errorf("%s: meta.unit %q, want %q", tc.field, got, tc.unit)
		}
	}
}
