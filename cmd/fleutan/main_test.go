package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseFlowsReadsTheOriginalCommandLines(t *testing.T) {
	cases := []struct {
		args     string
		view     string
		group    string
		interval time.Duration
		count    int
		th       [3]float64
	}{
		// One report by default, as the original: sample -i seconds, print,
		// exit. -n 0 is the continuous mode.
		{"--cpu -i 5", viewCPUAssoc, "", 5 * time.Second, 1, [3]float64{10, 20, 100}},
		{"--cpu fl_asoc -i 5", viewCPUAssoc, "", 5 * time.Second, 1, [3]float64{10, 20, 100}},
		{"--cpu gen -i 5", viewCPUGen, "", 5 * time.Second, 1, [3]float64{10, 20, 100}},
		{"-i 5 --cpu", viewCPUAssoc, "", 5 * time.Second, 1, [3]float64{10, 20, 100}},
		{"-c gen", viewCPUGen, "", 2 * time.Second, 1, [3]float64{10, 20, 100}},
		{"-q -i 5", viewQdisc, "", 5 * time.Second, 1, [3]float64{10, 20, 100}},
		{"-q -n 0", viewQdisc, "", 2 * time.Second, 0, [3]float64{10, 20, 100}},
		{"--lat -t 5,50,500 -g peer", viewLat, "peer", 2 * time.Second, 1, [3]float64{5, 50, 500}},
		{"--lat -g proc -i 0.5 -n 1", viewLat, "proc", 500 * time.Millisecond, 1, [3]float64{10, 20, 100}},
		{"--vol -g proc -i 5 --count 3", viewVol, "proc", 5 * time.Second, 3, [3]float64{10, 20, 100}},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			o, err := parseFlows(strings.Fields(tc.args), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if o.view != tc.view || o.group != tc.group || o.interval != tc.interval || o.count != tc.count || o.thresholds != tc.th {
				t.Fatalf("got %+v", *o)
			}
		})
	}
}

func TestRunReportsErrorsOnOneLine(t *testing.T) {
	cases := []struct {
		args string
		code int
		err  string
	}{
		{"", 2, "Usage: fleutan COMMAND"},
		{"bogus", 2, "fleutan: unknown command \"bogus\" (see fleutan --help)\n"},
		{"flows", 2, "fleutan: flows: choose a view: --cpu, -q, --lat or --vol (see fleutan flows --help)\n"},
		// The views are named by the flags as typed.
		{"flows --lat --vol", 2, "fleutan: flows: choose one view, not --lat and --vol\n"},
		{"flows --cpu --lat", 2, "fleutan: flows: choose one view, not --cpu and --lat\n"},
		{"flows -c gen -l", 2, "fleutan: flows: choose one view, not -c and -l\n"},
		{"flows --vol -q -l", 2, "fleutan: flows: choose one view, not --vol and -q and -l\n"},
		{"flows --lat -l --cpu", 2, "fleutan: flows: choose one view, not --lat and --cpu\n"},
		{"flows --lat --vol --lat=false --cpu", 2, "fleutan: flows: choose one view, not --vol and --cpu\n"},
		{"flows --bogus", 2, "fleutan: flows: flag provided but not defined: -bogus\n"},
		{"flows --cpu all", 2, "fleutan: flows: unexpected argument \"all\"\n"},
		{"flows --cpu=all", 2, "fleutan: flows: --cpu \"all\": use fl_asoc or gen\n"},
		{"flows --lat -t 10,20", 2, "fleutan: flows: --thresh: \"10,20\": give three RTTs in ms, as 10,20,100\n"},
		{"flows --lat -t 30,20,100", 2, "fleutan: flows: --thresh: \"30,20,100\": thresholds must not decrease\n"},
		{"flows --lat -g host", 2, "fleutan: flows: --group \"host\": use proc or peer\n"},
		{"flows --lat -i 0", 2, "fleutan: flows: --interval 0: use seconds from 0.1 to 86400\n"},
		{"flows --lat -i x", 2, "fleutan: flows: invalid value \"x\" for flag -i: parse error\n"},
		{"flows --lat -n -1", 2, "fleutan: flows: --count -1: use 1 or more reports, or 0 (until Ctrl-C)\n"},
		{"flows --lat --color=sometimes", 2, "fleutan: flows: --color \"sometimes\": use auto, always or never\n"},
		{"paths", 2, "fleutan: paths: choose a view: --load or --delta (see fleutan paths --help)\n"},
		{"paths --load --delta", 2, "fleutan: paths: choose one view, not --load and --delta\n"},
		{"paths -d --dsts", 2, "fleutan: paths: --dsts needs at least one address\n"},
		{"paths -d --dsts 10.0.0.1 example.com", 2, "fleutan: paths: --dsts \"example.com\" is not an IP address\n"},
		{"paths -l -m sctp", 2, "fleutan: paths: --method \"sctp\": use udp, icmp or tcp\n"},
		{"paths -l --rate 0", 2, "fleutan: paths: --rate 0: use 1 to 10000 packets per second\n"},
		{"paths -l --max-ttl 256", 2, "fleutan: paths: --max-ttl 256: use 1 to 255\n"},
		{"paths -l -n -1", 2, "fleutan: paths: --count -1: use 1 or more reports, or 0 (until Ctrl-C)\n"},
		{"paths -l --color=sometimes", 2, "fleutan: paths: --color \"sometimes\": use auto, always or never\n"},
		{"paths -l 10.0.0.1", 2, "fleutan: paths: unexpected argument \"10.0.0.1\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), strings.Fields(tc.args), &out, &errb, noEnv)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if tc.code == 2 && tc.args != "" && strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", errb.String())
			}
			if !strings.HasPrefix(errb.String(), tc.err) {
				t.Errorf("stderr %q, want %q", errb.String(), tc.err)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}

func TestHelpGoesToStdoutWithStatusZero(t *testing.T) {
	for _, args := range []string{"--help", "help", "flows --help", "flows -h", "flows --lat --help", "paths --help", "paths -l -h"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), strings.Fields(args), &out, &errb, noEnv); code != 0 {
			t.Errorf("%s: exit %d", args, code)
		}
		if !strings.HasPrefix(out.String(), "Usage: fleutan") || errb.Len() != 0 {
			t.Errorf("%s: stdout %q stderr %q", args, out.String(), errb.String())
		}
	}
}

func TestTermWidthFallsBackToColumnsThenDefault(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "COLUMNS" {
				return v
			}
			return ""
		}
	}
	cases := []struct {
		columns string
		want    int
	}{{"", 100}, {"132", 132}, {"0", 100}, {"wide", 100}}
	for _, tc := range cases {
		if got := termWidth(-1, env(tc.columns)); got != tc.want {
			t.Errorf("COLUMNS=%q: width %d, want %d", tc.columns, got, tc.want)
		}
	}
}

func TestHumanUsesSISuffixes(t *testing.T) {
	cases := map[float64]string{0: "0.00", 999.994: "999.99", 1000: "1.00K", 1536: "1.54K", 2.48e6: "2.48M", 7e12: "7.00T"}
	for v, want := range cases {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestHistogramSplitsTenEqualRanges(t *testing.T) {
	bins := histogram([]float64{1, 2, 2, 11}, 10)
	counts := make([]int, len(bins))
	for i, b := range bins {
		counts[i] = b.n
	}
	if want := []int{1, 2, 0, 0, 0, 0, 0, 0, 0, 1}; !equalInts(counts, want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	if bins[0].lo != 1 || bins[9].hi != 11 || bins[1].lo != 2 {
		t.Fatalf("edges %+v", bins)
	}
	one := histogram([]float64{5, 5}, 10)
	if one[0].lo != 4.5 || one[9].hi != 5.5 || one[5].n != 2 {
		t.Fatalf("equal values: %+v", one)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
