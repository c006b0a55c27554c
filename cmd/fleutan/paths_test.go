package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadPathsReport reads a report fixture: the JSON --json prints.
func loadPathsReport(t *testing.T, name string) *pathsReport {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rep pathsReport
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &rep
}

func TestPathsViewsMatchGoldenFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		view  string
		style Style
	}{
		{"paths_load", viewLoad, Style{Width: 100}},
		// The chain of hops wraps at the width.
		{"paths_load_narrow", viewLoad, Style{Width: 60}},
		{"paths_delta", viewDelta, Style{Width: 160}},
		{"paths_delta_color", viewDelta, Style{Width: 160, Color: true}},
		// Three paths do not fit in 80 columns: two to a table, then
		// one, as the IPv6 paths are wide.
		{"paths_delta_80", viewDelta, Style{Width: 80}},
		{"paths_delta_narrow", viewDelta, Style{Width: 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renderPaths(loadPathsReport(t, "paths.json"), tc.view, tc.style)
			path := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -run TestPathsViewsMatchGoldenFiles -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
			}
			if !tc.style.Color && strings.Contains(got, "\x1b[") {
				t.Error("colour codes without Color")
			}
		})
	}
}

// TestPathsJSONCarriesWhatTheViewsDraw: both views drawn from the --json
// encoding of a report are the views drawn from the report.
func TestPathsJSONCarriesWhatTheViewsDraw(t *testing.T) {
	rep := loadPathsReport(t, "paths.json")
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("\n")) {
		t.Fatal("the JSON of a report is not one line")
	}
	var back pathsReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{viewLoad, viewDelta} {
		st := Style{Width: 100, Color: true}
		if w, g := renderPaths(rep, v, st), renderPaths(&back, v, st); g != w || w == "" {
			t.Errorf("view %s drawn from the JSON\n%s\nwant\n%s", v, g, w)
		}
	}
}
