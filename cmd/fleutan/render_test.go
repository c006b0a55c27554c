package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/rdma"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the current rendering")

// snapshotFixture is two consecutive snapshots of each collector, as their
// JSON (the library's json tags): the interval between them is what the
// views draw.
type snapshotFixture struct {
	Flows *struct{ Prev, Cur flows.Snapshot } `json:"flows"`
	CPU   *struct{ Prev, Cur cpu.Snapshot }   `json:"cpu"`
	Qdisc *struct{ Prev, Cur qdisc.Snapshot } `json:"qdisc"`
	RDMA  *struct{ Prev, Cur rdma.Snapshot }  `json:"rdma"`
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
	if fx.Qdisc != nil {
		iv.Qdisc, iv.QdiscDeltas = &fx.Qdisc.Cur, qdisc.Diff(fx.Qdisc.Prev, fx.Qdisc.Cur)
	}
	if fx.RDMA != nil {
		d := rdma.Diff(fx.RDMA.Prev, fx.RDMA.Cur)
		iv.RDMA, iv.RDMADelta = &fx.RDMA.Cur, &d
	}
	return iv
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
		{"qdisc", "qdisc.json", flowsOptions{view: viewQdisc}, Style{Width: 100}},
		{"qdisc_narrow", "qdisc.json", flowsOptions{view: viewQdisc}, Style{Width: 60}},
		{"lat", "flows_cpu.json", flowsOptions{view: viewLat, thresholds: th}, Style{Width: 100}},
		{"lat_color", "flows_cpu.json", flowsOptions{view: viewLat, thresholds: th}, Style{Width: 100, Color: true}},
		{"lat_group_proc", "flows_cpu.json", flowsOptions{view: viewLat, thresholds: [3]float64{1, 25, 99}, group: "proc"}, Style{Width: 120}},
		{"vol", "flows_cpu.json", flowsOptions{view: viewVol}, Style{Width: 100}},
		{"vol_group_peer", "flows_cpu.json", flowsOptions{view: viewVol, group: "peer"}, Style{Width: 100}},
		{"empty_cpu", "", flowsOptions{view: viewCPUAssoc}, Style{Width: 100}},
		{"empty_qdisc", "", flowsOptions{view: viewQdisc}, Style{Width: 100}},
		{"empty_lat", "", flowsOptions{view: viewLat, thresholds: th}, Style{Width: 100}},
		{"rdma", "rdma.json", flowsOptions{view: viewRDMA}, Style{Width: 100}},
		{"rdma_narrow", "rdma.json", flowsOptions{view: viewRDMA}, Style{Width: 40}},
		{"empty_rdma", "", flowsOptions{view: viewRDMA}, Style{Width: 100}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iv := &interval{}
			if tc.fixture != "" {
				iv = loadInterval(t, tc.fixture)
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

// TestJSONCarriesWhatTheViewsDraw encodes each fixture's interval as
// --json prints it and draws every view from the decoded copy: the
// drawing must not change, so the JSON holds all that the views show.
func TestJSONCarriesWhatTheViewsDraw(t *testing.T) {
	th := [3]float64{10, 20, 100}
	for _, tc := range []struct {
		fixture string
		views   []flowsOptions
	}{
		{"flows_cpu.json", []flowsOptions{{view: viewCPUAssoc}, {view: viewCPUGen}, {view: viewLat, thresholds: th}, {view: viewVol, group: "peer"}}},
		{"qdisc.json", []flowsOptions{{view: viewQdisc}}},
		{"rdma.json", []flowsOptions{{view: viewRDMA}}},
	} {
		iv := loadInterval(t, tc.fixture)
		b, err := json.Marshal(iv)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(b, []byte("\n")) != 0 {
			t.Fatalf("%s: the JSON of an interval is not one line", tc.fixture)
		}
		var back interval
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", tc.fixture, err)
		}
		for _, o := range tc.views {
			want, got := buildFrame(iv), buildFrame(&back)
			st := Style{Width: 100}
			if w, g := render(&want, &o, st), render(&got, &o, st); g != w || w == "" {
				t.Errorf("%s, view %s: drawn from the JSON\n%s\nwant\n%s", tc.fixture, o.view, g, w)
			}
		}
	}
}
