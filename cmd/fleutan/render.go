package main

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Style is how a view is drawn: the terminal width in columns and whether
// ANSI colours may be used. Renderers take it as a parameter so that golden
// tests need no terminal.
type Style struct {
	Width int
	Color bool
}

// minBar keeps a bar column visible when labels are wider than the
// terminal: the line then overflows rather than losing the label.
const minBar = 10

// ANSI SGR colours (ECMA-48 8.3.117) of the latency bands.
const (
	colorGreen  = "\x1b[32m"
	colorYellow = "\x1b[33m"
	colorRed    = "\x1b[31m"
	colorBold   = "\x1b[1;31m"
	colorReset  = "\x1b[0m"
)

// bar is one line of a chart.
type bar struct {
	label string
	value float64
	text  string // the value as printed
	color string // ANSI colour of bar and value, "" for none
}

// chart is a titled bar chart in the layout of the original tool (Python
// ascii_graph): the title, a rule of '#' as wide as the terminal, then one
// line per bar: the bar, the value right-aligned, the label.
type chart struct {
	title string
	char  string
	bars  []bar
}

// write appends c to b. Bars are scaled to the largest value; a non-zero
// value always gets at least one character so that small loads stay
// visible next to large ones.
func (st Style) write(b *strings.Builder, c chart) {
	width := max(st.Width, 20)
	if c.title != "" {
		b.WriteString(c.title)
		b.WriteByte('\n')
	}
	b.WriteString(strings.Repeat("#", width))
	b.WriteByte('\n')
	valW, labelW, maxV := 0, 0, 0.0
	for _, x := range c.bars {
		valW = max(valW, len(x.text))
		labelW = max(labelW, utf8.RuneCountInString(x.label))
		if x.value > maxV && !math.IsInf(x.value, 0) {
			maxV = x.value
		}
	}
	barW := max(minBar, width-valW-labelW-4)
	ch := c.char
	if ch == "" {
		ch = "#"
	}
	for _, x := range c.bars {
		n := 0
		if maxV > 0 && x.value > 0 {
			n = max(1, int(math.Round(x.value/maxV*float64(barW))))
		}
		n = min(n, barW)
		color := x.color
		if !st.Color {
			color = ""
		}
		if color != "" {
			b.WriteString(color)
		}
		b.WriteString(strings.Repeat(ch, n))
		b.WriteString(strings.Repeat(" ", barW-n+2+valW-len(x.text)))
		b.WriteString(x.text)
		if color != "" {
			b.WriteString(colorReset)
		}
		if x.label != "" {
			b.WriteString("  ")
			b.WriteString(x.label)
		}
		b.WriteByte('\n')
	}
}

// human prints a quantity with two decimals and an SI suffix (K, M, G, T)
// from 1000 on, as the original tool printed byte loads ("1.00K").
func human(v float64) string {
	const units = "KMGTPE"
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if math.Abs(v) < 1000 {
		return fmt.Sprintf("%.2f", v)
	}
	i := -1
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.2f%c", v, units[i])
}

// flowLabel is a flow as the original's charts label it:
// "%20s#%-6s%20s#%-6s" of the local and remote endpoints.
func flowLabel(f *FlowRow) string {
	return strings.TrimRight(fmt.Sprintf("%20s#%-6d%20s#%-6d", addr(f.Local), f.Local.Port(), addr(f.Remote), f.Remote.Port()), " ")
}

// flowLine is a flow as the original's process listing prints it:
// "%-10s%20s#%-20s%20s#%s" of protocol, local and remote endpoints.
func flowLine(f *FlowRow) string {
	return fmt.Sprintf("%-10s%20s#%-20d%20s#%d", f.Proto, addr(f.Local), f.Local.Port(), addr(f.Remote), f.Remote.Port())
}

// addr prints a missing address (a packet without a peer, such as ICMPv6
// neighbour discovery counted per queue) as ss(8) prints a wildcard.
func addr(ap netip.AddrPort) string {
	if !ap.Addr().IsValid() {
		return "*"
	}
	return ap.Addr().String()
}
