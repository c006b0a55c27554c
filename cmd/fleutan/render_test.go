package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/pipeline"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the current rendering")

// snapshotFixture is two consecutive snapshots of each collector, as their
// JSON (the library's json tags): the interval between them is what the
// views draw.
type snapshotFixture struct {
	Flows *struct{ Prev, Cur flows.Snapshot } `json:"flows"`
	CPU   *struct{ Prev, Cur cpu.Snapshot }   `json:"cpu"`
}

// loadInterval reads a snapshot fixture and diffs its snapshots as the
// tool does.
func loadInterval(t *testing.T, name string) *interval {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fx snapshotFixture
	if err := dec.Decode(&fx); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	iv := &interval{}
	if fx.Flows != nil {
		iv.Flows, iv.FlowDeltas = &fx.Flows.Cur, flows.Diff(fx.Flows.Prev, fx.Flows.Cur)
	}
	if fx.CPU != nil {
		u := cpu.Diff(fx.CPU.Prev, fx.CPU.Cur)
		iv.CPU = &u
	}
	return iv
}

// loadEvents reads an NDJSON fixture of pipeline events as --json prints
// them; numbers stay json.Number so large counters are exact.
func loadEvents(t *testing.T, name string) []pipeline.Event {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []pipeline.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ts, _ := time.Parse(time.RFC3339, m["@timestamp"].(string))
		delete(m, "@timestamp")
		events = append(events, pipeline.Event{Timestamp: ts, Fields: pipeline.M(m)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

func TestViewsMatchGoldenFiles(t *testing.T) {
	th := [3]float64{10, 20, 100}
	cases := []struct {
		name    string
		fixture string
		opts    flowsOptions
		style   Style
	}{
		{"cpu_fl_asoc", "flows_cpu.json", flowsOptions{view: viewCPUAssoc}, Style{Width: 100}},
		{"cpu_fl_asoc_narrow", "flows_cpu.json", flowsOptions{view: viewCPUAssoc}, Style{Width: 40}},
		{"cpu_gen", "flows_cpu.json", flowsOptions{view: viewCPUGen}, Style{Width: 100}},
		{"qdisc", "qdisc.ndjson", flowsOptions{view: viewQdisc}, Style{Width: 100}},
		{"qdisc_narrow", "qdisc.ndjson", flowsOptions{view: viewQdisc}, Style{Width: 60}},
		{"lat", "flows_cpu.json", flowsOptions{view: viewLat, thresholds: th}, Style{Width: 100}},
		{"lat_color", "flows_cpu.json", flowsOptions{view: viewLat, thresholds: th}, Style{Width: 100, Color: true}},
		{"lat_group_proc", "flows_cpu.json", flowsOptions{view: viewLat, thresholds: [3]float64{1, 25, 99}, group: "proc"}, Style{Width: 120}},
		{"vol", "flows_cpu.json", flowsOptions{view: viewVol}, Style{Width: 100}},
		{"vol_group_peer", "flows_cpu.json", flowsOptions{view: viewVol, group: "peer"}, Style{Width: 100}},
		{"empty_cpu", "", flowsOptions{view: viewCPUAssoc}, Style{Width: 100}},
		{"empty_qdisc", "", flowsOptions{view: viewQdisc}, Style{Width: 100}},
		{"empty_lat", "", flowsOptions{view: viewLat, thresholds: th}, Style{Width: 100}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iv := &interval{}
			switch {
			case strings.HasSuffix(tc.fixture, ".json"):
				iv = loadInterval(t, tc.fixture)
			case tc.fixture != "":
				iv.qdiscEvents = loadEvents(t, tc.fixture)
			}
			fr := buildFrame(iv)
			got := render(&fr, &tc.opts, tc.style)
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
				t.Errorf("%s differs (go test -run TestViewsMatchGoldenFiles -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
			}
			if !tc.style.Color && strings.Contains(got, "\x1b[") {
				t.Error("colour codes without Color")
			}
		})
	}
}
