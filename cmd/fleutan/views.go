package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Views of `fleutan flows`.
const (
	viewCPUAssoc = "fl_asoc" // --cpu, --cpu fl_asoc
	viewCPUGen   = "gen"     // --cpu gen
	viewQdisc    = "qdisc"   // -q
	viewLat      = "lat"     // --lat
	viewVol      = "vol"     // --vol
)

// Bar characters of the original's views.
const (
	charCPU   = "*"
	charQueue = "█"
	charBDP   = "-"
	charRX    = "|"
	charTX    = "*"
	charLat   = "█"
)

// render draws one interval's frame in the selected view.
func render(fr *Frame, o *flowsOptions, st Style) string {
	var b strings.Builder
	switch o.view {
	case viewCPUAssoc:
		renderCPUAssoc(&b, fr, st)
	case viewCPUGen:
		renderCPUGen(&b, fr, st)
	case viewQdisc:
		renderQdisc(&b, fr, st)
	case viewLat:
		renderLat(&b, fr, o.thresholds, o.group, st)
	case viewVol:
		renderVol(&b, fr, o.group, st)
	case viewRDMA:
		renderRDMA(&b, fr, st)
	}
	return b.String()
}

// procFlows groups the flows that have a process by pid, in pid order,
// each process's flows sorted by protocol and endpoints.
func procFlows(fr *Frame) (pids []int, byPID map[int][]*FlowRow) {
	byPID = map[int][]*FlowRow{}
	for i := range fr.Flows {
		f := &fr.Flows[i]
		if f.PID == 0 {
			continue
		}
		if _, ok := byPID[f.PID]; !ok {
			pids = append(pids, f.PID)
		}
		byPID[f.PID] = append(byPID[f.PID], f)
	}
	slices.Sort(pids)
	for _, fs := range byPID {
		slices.SortFunc(fs, compareFlows)
	}
	return pids, byPID
}

func compareFlows(a, b *FlowRow) int {
	return cmp.Or(cmp.Compare(a.Proto, b.Proto), a.Local.Compare(b.Local), a.Remote.Compare(b.Remote))
}

func (fr *Frame) cores() int {
	n := fr.Cores
	for _, p := range fr.Procs {
		for c := range p.Pct {
			n = max(n, c+1)
		}
	}
	return n
}

func (fr *Frame) proc(pid int) *ProcCores {
	for i := range fr.Procs {
		if fr.Procs[i].PID == pid {
			return &fr.Procs[i]
		}
	}
	return nil
}

// renderCPUAssoc is `--cpu fl_asoc`: per process with flows, its flows and
// the percent of one core it used on each core over the interval.
func renderCPUAssoc(b *strings.Builder, fr *Frame, st Style) {
	pids, byPID := procFlows(fr)
	cores := fr.cores()
	for _, pid := range pids {
		fs := byPID[pid]
		fmt.Fprintf(b, "~>%s(%d)\n", fs[0].Proc, pid)
		for _, f := range fs {
			b.WriteString(flowLine(f))
			b.WriteByte('\n')
		}
		b.WriteString("___\n\n")
		st.write(b, fr.coreChart(pid, cores))
		b.WriteString("...\n")
	}
	if len(pids) == 0 {
		b.WriteString("no flows with a known process\n")
	}
}

// genLoads are the weights of `--cpu gen`, in the order shown.
var genLoads = []struct {
	name string
	of   func(*FlowRow) float64
}{
	{"segs_in", func(f *FlowRow) float64 { return f.SegsIn }},
	{"segs_out", func(f *FlowRow) float64 { return f.SegsOut }},
	{"bdp", func(f *FlowRow) float64 { return f.BDP }},
	{"rx_bytes", func(f *FlowRow) float64 { return f.BytesIn }},
	{"tx_bytes", func(f *FlowRow) float64 { return f.BytesOut }},
}

// renderCPUGen is `--cpu gen`: each process's flow load (segments and
// bytes over the interval, bandwidth-delay product now) spread over the
// cores in proportion to where the process ran, summed per core. The
// original weighted by the share of samples on each core; the share of
// CPU time is the exact form of that.
func renderCPUGen(b *strings.Builder, fr *Frame, st Style) {
	pids, byPID := procFlows(fr)
	cores := fr.cores()
	b.WriteString("flow processing load distribution:\n")
	for _, l := range genLoads {
		perCore := make([]float64, cores)
		for _, pid := range pids {
			p := fr.proc(pid)
			if p == nil {
				continue
			}
			load := 0.0
			for _, f := range byPID[pid] {
				load += l.of(f)
			}
			for core, share := range p.Share {
				if core < cores {
					perCore[core] += share * load
				}
			}
		}
		c := chart{title: "#>" + l.name, char: charCPU}
		for core, v := range perCore {
			c.bars = append(c.bars, bar{label: strconv.Itoa(core), value: v, text: human(v)})
		}
		st.write(b, c)
	}
}

// renderQdisc is `-q`: bytes per TX queue, then per queue its flows sorted
// by bytes (ascending, the largest last as in the original).
func renderQdisc(b *strings.Builder, fr *Frame, st Style) {
	var devs []string
	for _, q := range fr.Queues {
		if len(devs) == 0 || devs[len(devs)-1] != q.Device {
			devs = append(devs, q.Device)
		}
	}
	if len(devs) == 0 {
		b.WriteString("no transmit queues with traffic\n")
		return
	}
	for _, dev := range devs {
		c := chart{title: "qdisc queues #> load (bytes) per qu (" + dev + ")", char: charQueue}
		var queues []int
		for _, q := range fr.Queues {
			if q.Device == dev {
				c.bars = append(c.bars, bar{label: strconv.Itoa(q.Queue), value: q.Bytes, text: human(q.Bytes)})
				queues = append(queues, q.Queue)
			}
		}
		st.write(b, c)
		for _, q := range queues {
			var fs []*QueueFlow
			for i := range fr.QueueFlows {
				f := &fr.QueueFlows[i]
				if f.Device == dev && f.Queue == q {
					fs = append(fs, f)
				}
			}
			if len(fs) == 0 {
				continue
			}
			slices.SortStableFunc(fs, func(a, b *QueueFlow) int {
				if a.Other != b.Other {
					if a.Other {
						return 1
					}
					return -1
				}
				return cmp.Or(cmp.Compare(a.Bytes, b.Bytes), a.Local.Compare(b.Local), a.Remote.Compare(b.Remote))
			})
			b.WriteString("---- flowing volumes per qu ##> " + strconv.Itoa(q) + "\n")
			fc := chart{char: charQueue}
			for _, f := range fs {
				label := ""
				if f.Other {
					label = "(other: packets without a socket)"
					if f.OtherFlows > 0 {
						label = fmt.Sprintf("(other: %d more flows, packets without a socket)", f.OtherFlows)
					}
				} else {
					label = flowLabel(&FlowRow{Local: f.Local, Remote: f.Remote})
				}
				fc.bars = append(fc.bars, bar{label: label, value: f.Bytes, text: human(f.Bytes)})
			}
			st.write(b, fc)
		}
	}
}

// tcpFlows are the flows with TCP information, in a stable order.
func tcpFlows(fr *Frame) []*FlowRow {
	var out []*FlowRow
	for i := range fr.Flows {
		if fr.Flows[i].HasTCP {
			out = append(out, &fr.Flows[i])
		}
	}
	slices.SortFunc(out, compareFlows)
	return out
}

// group splits flows by process ("proc") or remote address ("peer"); one
// unlabelled group without a grouping.
func group(fs []*FlowRow, by string) (labels []string, groups [][]*FlowRow) {
	if by == "" {
		return []string{""}, [][]*FlowRow{fs}
	}
	type key struct {
		pid  int
		peer string
	}
	var keys []key
	byKey := map[key][]*FlowRow{}
	for _, f := range fs {
		k := key{pid: f.PID}
		if by == "peer" {
			k = key{peer: f.Remote.Addr().String()}
		}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], f)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.pid, b.pid), cmp.Compare(a.peer, b.peer)) })
	for _, k := range keys {
		label := "dst>>" + k.peer
		if by == "proc" {
			name := byKey[k][0].Proc
			if k.pid == 0 {
				name = "?"
			}
			label = fmt.Sprintf("proc>>%s (%d)", name, k.pid)
		}
		labels = append(labels, label)
		groups = append(groups, byKey[k])
	}
	return labels, groups
}

// writeGroups draws one chart per group, values sorted ascending.
func writeGroups(b *strings.Builder, st Style, fs []*FlowRow, by, char string, value func(*FlowRow) float64, text func(float64) string, color func(float64) string) {
	labels, groups := group(fs, by)
	for i, g := range groups {
		c := chart{title: labels[i], char: char}
		for _, f := range g {
			v := value(f)
			x := bar{label: flowLabel(f), value: v, text: text(v)}
			if color != nil {
				x.color = color(v)
			}
			c.bars = append(c.bars, x)
		}
		slices.SortStableFunc(c.bars, func(a, b bar) int { return cmp.Compare(a.value, b.value) })
		st.write(b, c)
		b.WriteString("\n---\n")
	}
}

// threeDecimals prints an RTT in ms to the microsecond the kernel gives.
func threeDecimals(v float64) string { return fmt.Sprintf("%.3f", v) }

// renderLat is `--lat`: the RTT histogram in ten equal ranges, then the
// RTT of every flow, coloured by the thresholds.
func renderLat(b *strings.Builder, fr *Frame, th [3]float64, by string, st Style) {
	fs := tcpFlows(fr)
	fmt.Fprintf(b, "**TCP FLOWS: (NUM %d)\n", len(fs))
	b.WriteString("*latency distribution [rtt-range]\n")
	rtts := make([]float64, len(fs))
	for i, f := range fs {
		rtts[i] = f.RTTms
	}
	c := chart{char: charLat}
	bins := histogram(rtts, 10)
	// Enough decimals that neighbouring edges differ (RTTs on a LAN are
	// microseconds), at least the original's two.
	prec := 2
	if len(bins) > 0 {
		if w := bins[0].hi - bins[0].lo; w > 0 {
			prec = min(6, max(2, int(math.Ceil(-math.Log10(w)))+1))
		}
	}
	for _, r := range bins {
		c.bars = append(c.bars, bar{label: fmt.Sprintf("[%.*f-%.*f]", prec, r.lo, prec, r.hi), value: float64(r.n), text: strconv.Itoa(r.n)})
	}
	st.write(b, c)
	b.WriteString("\n---\n")
	fmt.Fprintf(b, "*latency per flow in rtt(ms) (green <= %g, yellow <= %g, red <= %g, bold red above)\n", th[0], th[1], th[2])
	writeGroups(b, st, fs, by, charLat, func(f *FlowRow) float64 { return f.RTTms }, threeDecimals, func(v float64) string {
		switch {
		case v <= th[0]:
			return colorGreen
		case v <= th[1]:
			return colorYellow
		case v <= th[2]:
			return colorRed
		}
		return colorBold
	})
}

type bin struct {
	lo, hi float64
	n      int
}

// histogram counts values in n equal ranges from the smallest to the
// largest value (numpy.histogram's default, which the original used): the
// last range includes its upper edge; equal values get a range of one
// around them.
func histogram(vs []float64, n int) []bin {
	if len(vs) == 0 {
		return nil
	}
	lo, hi := slices.Min(vs), slices.Max(vs)
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	w := (hi - lo) / float64(n)
	bins := make([]bin, n)
	for i := range bins {
		bins[i].lo, bins[i].hi = lo+float64(i)*w, lo+float64(i+1)*w
	}
	bins[n-1].hi = hi
	for _, v := range vs {
		i := int(math.Floor((v - lo) / w))
		bins[min(max(i, 0), n-1)].n++
	}
	return bins
}

// renderVol is `--vol`: the bandwidth-delay product of every flow, then
// what each flow received and sent over the interval.
func renderVol(b *strings.Builder, fr *Frame, by string, st Style) {
	fs := tcpFlows(fr)
	b.WriteString("**TCP FLOWS:ebdp (estimated bandwidth-delay-product, bytes)\n")
	writeGroups(b, st, fs, by, charBDP, func(f *FlowRow) float64 { return f.BDP }, human, nil)
	b.WriteString("**TCP FLOWS: transceive stats\n")
	for _, dir := range []struct {
		name, char  string
		segs, bytes func(*FlowRow) float64
		segsName    string
	}{
		{"RX", charRX, func(f *FlowRow) float64 { return f.SegsIn }, func(f *FlowRow) float64 { return f.BytesIn }, "segs_in"},
		{"TX", charTX, func(f *FlowRow) float64 { return f.SegsOut }, func(f *FlowRow) float64 { return f.BytesOut }, "segs_out"},
	} {
		b.WriteString(">>" + dir.name + "\n")
		for _, m := range []struct {
			name string
			of   func(*FlowRow) float64
		}{{dir.segsName, dir.segs}, {"bytes", dir.bytes}} {
			c := chart{title: "##" + m.name, char: dir.char}
			for _, f := range fs {
				v := m.of(f)
				c.bars = append(c.bars, bar{label: flowLabel(f), value: v, text: human(v)})
			}
			slices.SortStableFunc(c.bars, func(a, b bar) int { return cmp.Compare(a.value, b.value) })
			st.write(b, c)
		}
		b.WriteString("\n---\n")
	}
}

// coreChart is a process's percent of one core on each core, the chart
// under its flows or queue pairs in the --cpu and rdma views.
func (fr *Frame) coreChart(pid, cores int) chart {
	p := fr.proc(pid)
	c := chart{char: charCPU}
	for core := range cores {
		v := 0.0
		if p != nil {
			v = p.Pct[core]
		}
		c.bars = append(c.bars, bar{label: strconv.Itoa(core), value: v, text: fmt.Sprintf("%.2f", v)})
	}
	return c
}
