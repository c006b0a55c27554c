package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/paths"
)

// pathsOptions are the flags of `fleutan paths`.
type pathsOptions struct {
	view     string // viewLoad or viewDelta
	dsts     []netip.Addr
	method   paths.Method
	rate     float64
	maxTTL   int
	interval time.Duration
	count    int
	json     bool
	color    string
}

// Views of `fleutan paths`.
const (
	viewLoad  = "load"
	viewDelta = "delta"
)

const pathsUsage = `Usage: fleutan paths VIEW [options]

Views (exactly one):
  -l, --load               trace every distinct peer of the host's flows and
                           print each path, its hops joined by <--->, with
                           the flows that use it; an ECMP hop (several
                           addresses answered one TTL) is ||a|b||
  -d, --delta              the flows labelled by their path (p0, p1, ...),
                           then the paths side by side, three to a table,
                           the hops where they diverge coloured; an ECMP
                           hop is {a, b}

Options:
      --dsts A [B ...]     trace these addresses instead of the flows' peers
  -m, --method udp|icmp|tcp
                           probes (default udp, which needs no privilege;
                           icmp and tcp need CAP_NET_RAW and fall back to udp
                           without it, saying so); tcp probes go to each
                           peer's flow port
      --rate N             probe packets per second over all peers (default 20)
      --max-ttl N          last TTL probed (default 30)
  -i, --interval SECONDS   time between reports (default 2)
  -n, --count N            reports to print before exiting (default 1; 0: one
                           per interval until Ctrl-C)
      --json               print each report as one line of JSON instead: the
                           flows collector's snapshot (flows: flows.Snapshot)
                           and the traces (paths: []paths.Path)
      --color auto|always|never
                           colours on a terminal only (default auto)
  -h, --help               this help
`

// parsePaths reads the paths command line. --dsts takes every argument up
// to the next flag, which the flag package cannot express: they are
// taken out first.
func parsePaths(args []string, stdout io.Writer) (*pathsOptions, error) {
	o := &pathsOptions{}
	var rest []string
	var dsts []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--dsts" || args[i] == "-dsts" {
			j := i + 1
			for ; j < len(args) && !strings.HasPrefix(args[j], "-"); j++ {
				dsts = append(dsts, args[j])
			}
			if j == i+1 {
				return nil, usagef("paths: --dsts needs at least one address")
			}
			i = j - 1
			continue
		}
		rest = append(rest, args[i])
	}
	fs := flag.NewFlagSet("paths", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var load, delta bool
	var method string
	var rf reportFlags
	for _, n := range []string{"l", "load"} {
		fs.BoolVar(&load, n, false, "")
	}
	for _, n := range []string{"d", "delta"} {
		fs.BoolVar(&delta, n, false, "")
	}
	for _, n := range []string{"m", "method"} {
		fs.StringVar(&method, n, string(paths.MethodUDP), "")
	}
	fs.Float64Var(&o.rate, "rate", 20, "")
	fs.IntVar(&o.maxTTL, "max-ttl", 30, "")
	rf.register(fs)
	if err := fs.Parse(rest); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			return nil, usagef("paths: %v", err)
		}
		rf.help = true
	}
	if rf.help {
		_, _ = io.WriteString(stdout, pathsUsage)
		return nil, nil
	}
	if fs.NArg() > 0 {
		return nil, usagef("paths: unexpected argument %q", fs.Arg(0))
	}
	switch {
	case load && delta:
		return nil, usagef("paths: choose one view, not --load and --delta")
	case load:
		o.view = viewLoad
	case delta:
		o.view = viewDelta
	default:
		return nil, usagef("paths: choose a view: --load or --delta (see fleutan paths --help)")
	}
	for _, d := range dsts {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, usagef("paths: --dsts %q is not an IP address", d)
		}
		o.dsts = append(o.dsts, a.Unmap())
	}
	m, err := paths.ParseMethod(method)
	if err != nil {
		return nil, usagef("paths: --method %q: use udp, icmp or tcp", method)
	}
	o.method = m
	if math.IsNaN(o.rate) || o.rate <= 0 || o.rate > 10000 {
		return nil, usagef("paths: --rate %v: use 1 to 10000 packets per second", o.rate)
	}
	if o.maxTTL < 1 || o.maxTTL > 255 {
		return nil, usagef("paths: --max-ttl %d: use 1 to 255", o.maxTTL)
	}
	iv, err := rf.check("paths")
	if err != nil {
		return nil, err
	}
	o.interval, o.count, o.json, o.color = iv, rf.count, rf.json, rf.color
	return o, nil
}

// pathsReport is one report as the libraries give it, and as --json
// prints it: the flows snapshot and the traces, one per peer.
type pathsReport struct {
	Flows *flows.Snapshot `json:"flows"`
	Paths []paths.Path    `json:"paths"`
}

// runPaths collects the flows, traces their peers (or --dsts) and prints
// the view, o.count times, o.interval apart.
func runPaths(ctx context.Context, o *pathsOptions, stdout io.Writer, st Style, log *slog.Logger) error {
	fc, err := flows.New(flows.Options{Logger: log})
	if err != nil {
		return err
	}
	defer fc.Close()
	prober, err := paths.New(paths.Options{Method: o.method, Rate: o.rate, MaxTTL: o.maxTTL, Logger: log})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for n := 0; o.count == 0 || n < o.count; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(o.interval):
			}
		}
		snap, err := fc.Collect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if len(snap.Flows) == 0 {
				return err
			}
			log.Warn(err.Error())
		}
		rep := pathsReport{Flows: &snap}
		for _, t := range peerTargets(&snap, o.dsts) {
			p, err := prober.Trace(ctx, t)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				log.Warn(err.Error())
				continue
			}
			rep.Paths = append(rep.Paths, p)
		}
		if o.json {
			if err := enc.Encode(&rep); err != nil {
				return fmt.Errorf("json: %w", err)
			}
			continue
		}
		text := renderPaths(&rep, o.view, st)
		if n > 0 {
			text = "\n" + text
		}
		if _, err := io.WriteString(stdout, text); err != nil {
			return err
		}
	}
	return nil
}

// peerTargets are the addresses to trace: dsts when given, else every
// distinct peer of the connected flows (loopback and unspecified ones
// have no path), in address order. A TCP probe goes to the port of the
// peer's first flow.
func peerTargets(s *flows.Snapshot, dsts []netip.Addr) []paths.Target {
	rows := flowRows(s, nil)
	port := map[netip.Addr]uint16{}
	for _, r := range rows {
		if _, ok := port[r.Remote.Addr()]; !ok {
			port[r.Remote.Addr()] = r.Remote.Port()
		}
	}
	if dsts == nil {
		dsts = peers(rows)
	}
	out := make([]paths.Target, 0, len(dsts))
	for _, d := range dsts {
		p := port[d]
		if p == 0 {
			p = 80
		}
		out = append(out, paths.Target{Dst: d, Port: p})
	}
	return out
}
