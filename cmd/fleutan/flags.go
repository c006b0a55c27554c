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

// reportFlags are the options every command's views share: how often and
// how many reports, JSON, colour and help.
type reportFlags struct {
	interval   float64
	count      int
	json, help bool
	color      string
}

// register adds -i/--interval, -n/--count, -h/--help, --json and --color.
func (r *reportFlags) register(fs *flag.FlagSet) {
	for _, n := range []string{"i", "interval"} {
		fs.Float64Var(&r.interval, n, 2, "")
	}
	for _, n := range []string{"n", "count"} {
		fs.IntVar(&r.count, n, 1, "")
	}
	for _, n := range []string{"h", "help"} {
		fs.BoolVar(&r.help, n, false, "")
	}
	fs.BoolVar(&r.json, "json", false, "")
	fs.StringVar(&r.color, "color", "auto", "")
}

// check validates them; a bad one is a usage error naming the command.
func (r *reportFlags) check(cmd string) (time.Duration, error) {
	// Below 100 ms a TCP counter delta is mostly noise and the eBPF CPU
	// meter's period is shorter than a scheduler slice.
	if math.IsNaN(r.interval) || r.interval < 0.1 || r.interval > 86400 {
		return 0, usagef("%s: --interval %v: use seconds from 0.1 to 86400", cmd, r.interval)
	}
	if r.count < 0 {
		return 0, usagef("%s: --count %d: use 1 or more reports, or 0 (until Ctrl-C)", cmd, r.count)
	}
	switch r.color {
	case "auto", "always", "never":
	default:
		return 0, usagef("%s: --color %q: use auto, always or never", cmd, r.color)
	}
	return time.Duration(r.interval * float64(time.Second)), nil
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
  -n, --count N            reports to print before exiting (default 1: sample
                           one interval, print one report, exit, as the
                           original did; 0: one per interval until Ctrl-C)
      --json               print each interval as one line of JSON instead:
                           the view's collectors' snapshots and Diff results
                           in the library's types (flows: flows.Snapshot,
                           flow_deltas: flows.Diff, same order; cpu: cpu.Diff's
                           cpu.Usage; qdisc: qdisc.Snapshot, qdisc_deltas:
                           qdisc.Diff, same order)
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
	var cpu, thresh, group string
	var qdisc, lat, vol bool
	var rf reportFlags
	typed := &viewFlags{}
	cpuOn := false
	for _, n := range []string{"c", "cpu"} {
		fs.Var(&cpuFlag{v: &cpu, on: &cpuOn, name: n, typed: typed}, n, "")
	}
	for _, v := range []struct {
		on    *bool
		names []string
	}{{&qdisc, []string{"q", "qdisc"}}, {&lat, []string{"l", "lat"}}, {&vol, []string{"v", "vol"}}} {
		for _, n := range v.names {
			fs.Var(&boolViewFlag{on: v.on, name: n, typed: typed}, n, "")
		}
	}
	for _, n := range []string{"t", "thresh"} {
		fs.StringVar(&thresh, n, "10,20,100", "")
	}
	for _, n := range []string{"g", "group"} {
		fs.StringVar(&group, n, "", "")
	}
	rf.register(fs)

	if err := fs.Parse(optionalCPU(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			rf.help = true
		} else {
			return nil, usagef("flows: %v", err)
		}
	}
	if rf.help {
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
		return nil, usagef("flows: choose one view, not %s", strings.Join(typed.names(), " and "))
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
	iv, err := rf.check("flows")
	if err != nil {
		return nil, err
	}
	o.interval, o.count, o.json, o.color = iv, rf.count, rf.json, rf.color
	return o, nil
}

// viewFlags records the view flags as the user gave them, in order, so that
// "choose one view" names what was typed (--cpu, -l) rather than views.
type viewFlags struct {
	order []typedView
}

type typedView struct {
	on   *bool // the view's state: a view turned off again is not named
	flag string
}

// note records flag name for the view whose state is on; a view given
// under both its names is named once, as first typed.
func (v *viewFlags) note(on *bool, name string) {
	for _, t := range v.order {
		if t.on == on {
			return
		}
	}
	flag := "--" + name
	if len(name) == 1 {
		flag = "-" + name
	}
	v.order = append(v.order, typedView{on, flag})
}

// names lists the flags of the views that are on, as typed.
func (v *viewFlags) names() []string {
	var out []string
	for _, t := range v.order {
		if *t.on {
			out = append(out, t.flag)
		}
	}
	return out
}

// cpuFlag is -c/--cpu: a string flag that notes its spelling.
type cpuFlag struct {
	v     *string
	on    *bool
	name  string
	typed *viewFlags
}

func (f *cpuFlag) String() string {
	if f == nil || f.v == nil {
		return ""
	}
	return *f.v
}

func (f *cpuFlag) Set(s string) error {
	*f.v = s
	*f.on = s != ""
	f.typed.note(f.on, f.name)
	return nil
}

// boolViewFlag is -q, -l or -v under one of its names: a boolean flag
// that notes its spelling when set.
type boolViewFlag struct {
	on    *bool
	name  string
	typed *viewFlags
}

func (f *boolViewFlag) String() string {
	if f == nil || f.on == nil {
		return "false"
	}
	return strconv.FormatBool(*f.on)
}

func (f *boolViewFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.on = v
	if v {
		f.typed.note(f.on, f.name)
	}
	return nil
}

func (f *boolViewFlag) IsBoolFlag() bool { return true }

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
