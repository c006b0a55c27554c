package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/fleutan/fleutanbeat/input/paths"
)

// peers are the distinct remote addresses of the flows that have a path
// (not loopback, not unspecified), in address order.
func peers(rows []FlowRow) []netip.Addr {
	var out []netip.Addr
	for _, r := range rows {
		a := r.Remote.Addr()
		if !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// pathFlows are the flows whose peer is dst, in the order of the
// original's listing: protocol, then endpoints.
func pathFlows(rows []FlowRow, dst netip.Addr) []*FlowRow {
	var out []*FlowRow
	for i := range rows {
		if rows[i].Remote.Addr() == dst {
			out = append(out, &rows[i])
		}
	}
	slices.SortFunc(out, func(a, b *FlowRow) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), a.Local.Compare(b.Local), a.Remote.Compare(b.Remote))
	})
	return out
}

// renderPaths draws one report in the view.
func renderPaths(rep *pathsReport, view string, st Style) string {
	var rows []FlowRow
	if rep.Flows != nil {
		rows = flowRows(rep.Flows, nil)
	}
	var b strings.Builder
	if view == viewDelta {
		renderDelta(&b, rows, rep.Paths, st)
	} else {
		renderLoad(&b, rows, rep.Paths, st)
	}
	return b.String()
}

const connector = " <---> "

// loadHop is a hop as the original's --load draws it: |addr|, an ECMP
// set ||a|b||, and a hop that did not answer |*|.
func loadHop(h *paths.Hop) string {
	switch len(h.Addrs) {
	case 0:
		return "|*|"
	case 1:
		return "|" + h.Addrs[0].String() + "|"
	}
	s := make([]string, len(h.Addrs))
	for i, a := range h.Addrs {
		s[i] = a.String()
	}
	return "||" + strings.Join(s, "|") + "||"
}

// renderLoad prints each path, its hops joined by <---> (wrapped at the
// width, a continued line starting with the connector), then the flows
// that use it between two rules of dashes.
func renderLoad(b *strings.Builder, rows []FlowRow, ps []paths.Path, st Style) {
	const rule = "-------"
	for i := range ps {
		p := &ps[i]
		line := ""
		for j := range p.Hops {
			h := loadHop(&p.Hops[j])
			switch {
			case j == 0:
				line = h
			case len(line)+len(connector)+len(h) > st.Width:
				b.WriteString(line + "\n")
				line = strings.TrimLeft(connector, " ") + h
			default:
				line += connector + h
			}
		}
		if len(p.Hops) == 0 {
			line = "|*|"
		}
		b.WriteString(line + "\n" + rule + "\n")
		for _, f := range pathFlows(rows, p.Dst) {
			b.WriteString(flowLine(f) + "\n")
		}
		b.WriteString(rule + "\n")
	}
}

// deltaHop is a hop as a --delta cell: the address, an ECMP set {a, b},
// or * when nothing answered.
func deltaHop(h *paths.Hop) string {
	switch len(h.Addrs) {
	case 0:
		return "*"
	case 1:
		return h.Addrs[0].String()
	}
	s := make([]string, len(h.Addrs))
	for i, a := range h.Addrs {
		s[i] = a.String()
	}
	return "{" + strings.Join(s, ", ") + "}"
}

// perTable is how many paths a --delta table holds, as the original's.
const perTable = 3

// renderDelta lists the flows labelled with their path, then the paths
// side by side, perTable to a table (fewer when the width cannot hold
// them), one hop per row; a hop no other path of the table shares (where
// its path diverges) is coloured.
func renderDelta(b *strings.Builder, rows []FlowRow, ps []paths.Path, st Style) {
	b.WriteString("**>Flows\n")
	for i := range ps {
		for _, f := range pathFlows(rows, ps[i].Dst) {
			fmt.Fprintf(b, "%s        p%d\n", flowLine(f), i)
		}
	}
	b.WriteString("\n..>paths\n")
	for i := 0; i < len(ps); {
		k := min(perTable, len(ps)-i)
		for k > 1 && tableWidth(ps[i:i+k], i) > st.Width {
			k--
		}
		b.WriteString("\n")
		writeTable(b, ps[i:i+k], i, st)
		i += k
	}
}

// columns are the widths of a table's columns: the widest cell or label.
func columns(ps []paths.Path, first int) []int {
	w := make([]int, len(ps))
	for c := range ps {
		w[c] = len(fmt.Sprintf("p%d", first+c))
		for j := range ps[c].Hops {
			w[c] = max(w[c], len(deltaHop(&ps[c].Hops[j])))
		}
	}
	return w
}

func tableWidth(ps []paths.Path, first int) int {
	n := 0
	for i, w := range columns(ps, first) {
		if i > 0 {
			n += 2
		}
		n += w
	}
	return n
}

func writeTable(b *strings.Builder, ps []paths.Path, first int, st Style) {
	w := columns(ps, first)
	rowsN := 0
	for i := range ps {
		rowsN = max(rowsN, len(ps[i].Hops))
	}
	line := func(cells []string, colors []string) {
		var l strings.Builder
		for c, s := range cells {
			if c > 0 {
				l.WriteString("  ")
			}
			if colors != nil && colors[c] != "" {
				l.WriteString(colors[c] + s + colorReset)
			} else {
				l.WriteString(s)
			}
			if c < len(cells)-1 {
				l.WriteString(strings.Repeat(" ", w[c]-len(s)))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	head, dash := make([]string, len(ps)), make([]string, len(ps))
	for c := range ps {
		head[c] = fmt.Sprintf("p%d", first+c)
		dash[c] = strings.Repeat("-", w[c])
	}
	line(head, nil)
	line(dash, nil)
	for r := range rowsN {
		cells, colors := make([]string, len(ps)), make([]string, len(ps))
		for c := range ps {
			if r < len(ps[c].Hops) {
				cells[c] = deltaHop(&ps[c].Hops[r])
				if st.Color && diverges(ps, c, r) {
					colors[c] = colorRed
				}
			}
		}
		line(cells, colors)
	}
}

// diverges says whether path c's hop r is where it goes its own way:
// another path of the table reaches hop r, and none answered it from the
// same address set. A path that ended before r does not count.
func diverges(ps []paths.Path, c, r int) bool {
	others := false
	for o := range ps {
		if o == c || r >= len(ps[o].Hops) {
			continue
		}
		if slices.Equal(ps[o].Hops[r].Addrs, ps[c].Hops[r].Addrs) {
			return false
		}
		others = true
	}
	return others
}
