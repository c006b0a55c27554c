package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// flowsOptions are the flags of `fleutan flows`.
type flowsOptions struct {
	view       string
	thresholds [3]float64
	group      string
	interval   time.Duration
	count      int
	json       bool
	color      string // auto | always | never
}

// usageError is a bad command line: one line, exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const flowsUsage = `Usage: fleutan flows VIEW [options]

Views (exactly one):
  -c, --cpu [fl_asoc|gen]  per process its flows and its CPU time per core
                           (fl_asoc, the default), or the flow processing
                           load per core weighted by segments in and out,
                           bandwidth-delay product and bytes (gen)
  -q, --qdisc              bytes per TX queue, then each queue's flows
  -l, --lat                RTT histogram and RTT per flow (TCP)
  -v, --vol                bandwidth-delay product per flow, segments and
                           bytes in and out over the interval (TCP)

Options:
  -t, --thresh T1,T2,T3    RTT thresholds in ms for --lat: green up to T1,
                           yellow up to T2, red up to T3 (default 10,20,100)
  -g, --group proc|peer    group --lat and --vol by process or remote address
  -i, --interval SECONDS   sampling interval (default 2)
  -n, --count N            stop after N intervals (default 0: until Ctrl-C)
      --json               print the collectors' events as NDJSON instead
      --color auto|always|never
                           colours on a terminal only (default auto)
  -h, --help               this help
`

// parseFlows reads the flows command line. The original's --cpu takes an
// optional value (`--cpu -i 5` means fl_asoc), which the flag package
// cannot express: a bare --cpu is rewritten to --cpu=fl_asoc first.
func parseFlows(args []string, stdout io.Writer) (*flowsOptions, error) {
	o := &flowsOptions{}
	fs := flag.NewFlagSet("flows", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cpu, thresh, group, color string
	var qdisc, lat, vol, help bool
	var interval float64
	for _, n := range []string{"c", "cpu"} {
		fs.StringVar(&cpu, n, "", "")
	}
	for _, n := range []string{"q", "qdisc"} {
		fs.BoolVar(&qdisc, n, false, "")
	}
	for _, n := range []string{"l", "lat"} {
		fs.BoolVar(&lat, n, false, "")
	}
	for _, n := range []string{"v", "vol"} {
		fs.BoolVar(&vol, n, false, "")
	}
	for _, n := range []string{"t", "thresh"} {
		fs.StringVar(&thresh, n, "10,20,100", "")
	}
	for _, n := range []string{"g", "group"} {
		fs.StringVar(&group, n, "", "")
	}
	for _, n := range []string{"i", "interval"} {
		fs.Float64Var(&interval, n, 2, "")
	}
	for _, n := range []string{"n", "count"} {
		fs.IntVar(&o.count, n, 0, "")
	}
	for _, n := range []string{"h", "help"} {
		fs.BoolVar(&help, n, false, "")
	}
	fs.BoolVar(&o.json, "json", false, "")
	fs.StringVar(&color, "color", "auto", "")

	if err := fs.Parse(optionalCPU(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help = true
		} else {
			return nil, usagef("flows: %v", err)
		}
	}
	if help {
		_, _ = io.WriteString(stdout, flowsUsage)
		return nil, nil
	}
	if fs.NArg() > 0 {
		return nil, usagef("flows: unexpected argument %q", fs.Arg(0))
	}

	var views []string
	if cpu != "" {
		if cpu != viewCPUAssoc && cpu != viewCPUGen {
			return nil, usagef("flows: --cpu %q: use fl_asoc or gen", cpu)
		}
		views = append(views, cpu)
	}
	for _, v := range []struct {
		on   bool
		name string
	}{{qdisc, viewQdisc}, {lat, viewLat}, {vol, viewVol}} {
		if v.on {
			views = append(views, v.name)
		}
	}
	switch len(views) {
	case 0:
		return nil, usagef("flows: choose a view: --cpu, -q, --lat or --vol (see fleutan flows --help)")
	case 1:
		o.view = views[0]
	default:
		return nil, usagef("flows: choose one view, not %s", strings.Join(views, " and "))
	}

	th, err := parseThresholds(thresh)
	if err != nil {
		return nil, usagef("flows: --thresh: %v", err)
	}
	o.thresholds = th
	switch group {
	case "", "proc", "peer":
		o.group = group
	default:
		return nil, usagef("flows: --group %q: use proc or peer", group)
	}
	// Below 100 ms a TCP counter delta is mostly noise and the eBPF CPU
	// meter's period is shorter than a scheduler slice.
	if math.IsNaN(interval) || interval < 0.1 || interval > 86400 {
		return nil, usagef("flows: --interval %v: use seconds from 0.1 to 86400", interval)
	}
	o.interval = time.Duration(interval * float64(time.Second))
	if o.count < 0 {
		return nil, usagef("flows: --count %d: use 0 (until Ctrl-C) or more", o.count)
	}
	switch color {
	case "auto", "always", "never":
		o.color = color
	default:
		return nil, usagef("flows: --color %q: use auto, always or never", color)
	}
	return o, nil
}

// optionalCPU rewrites a --cpu without a value to --cpu=fl_asoc, and
// `--cpu gen` / `--cpu fl_asoc` to the = form.
func optionalCPU(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		switch a {
		case "-c", "--cpu", "-cpu":
			if i+1 < len(args) && (args[i+1] == viewCPUAssoc || args[i+1] == viewCPUGen) {
				out = append(out, a+"="+args[i+1])
				i++
			} else {
				out = append(out, a+"="+viewCPUAssoc)
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

func parseThresholds(s string) ([3]float64, error) {
	var th [3]float64
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return th, fmt.Errorf("%q: give three RTTs in ms, as 10,20,100", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return th, fmt.Errorf("%q: %q is not an RTT in ms", s, p)
		}
		if i > 0 && v < th[i-1] {
			return th, fmt.Errorf("%q: thresholds must not decrease", s)
		}
		th[i] = v
	}
	return th, nil
}
