package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/input/rdma"
)

// viewRDMA is `fleutan rdma`.
const viewRDMA = "rdma"

const rdmaUsage = `Usage: fleutan rdma [options]

Per process with RDMA queue pairs: each queue pair (device and port, type,
local and remote QPN, the RDMA CM endpoints, how far the send and receive
PSNs moved over the interval: packets sent and received in order), then
the percent of one core the process used on each core.

Options:
  -i, --interval SECONDS   sampling interval (default 2)
  -n, --count N            reports to print before exiting (default 1; 0: one
                           per interval until Ctrl-C)
      --json               print each interval as one line of JSON instead:
                           rdma: rdma.Snapshot, rdma_delta: rdma.Diff, cpu:
                           cpu.Diff's cpu.Usage
      --color auto|always|never
                           colours on a terminal only (default auto)
  -h, --help               this help
`

// parseRDMA reads the rdma command line into the options the flows views
// take, with the rdma view.
func parseRDMA(args []string, stdout io.Writer) (*flowsOptions, error) {
	o := &flowsOptions{view: viewRDMA}
	fs := flag.NewFlagSet("rdma", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var rf reportFlags
	rf.register(fs)
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			return nil, usagef("rdma: %v", err)
		}
		rf.help = true
	}
	if rf.help {
		_, _ = io.WriteString(stdout, rdmaUsage)
		return nil, nil
	}
	if fs.NArg() > 0 {
		return nil, usagef("rdma: unexpected argument %q", fs.Arg(0))
	}
	iv, err := rf.check("rdma")
	if err != nil {
		return nil, err
	}
	o.interval, o.count, o.json, o.color = iv, rf.count, rf.json, rf.color
	return o, nil
}

// QPRow is one queue pair of a process over the interval.
type QPRow struct {
	PID           int
	Proc          string
	Device        string
	Port          uint32
	Type          string
	LQPN, RQPN    uint32
	Local, Remote netip.AddrPort // zero without the RDMA CM
	HasDelta      bool
	SQ, RQ        uint32 // PSN moves over the interval
}

// qpRows lists the live queue pairs of processes, by pid and QPN.
func qpRows(d *rdma.Delta) []QPRow {
	var rows []QPRow
	for i := range d.QPs {
		qd := &d.QPs[i]
		q := &qd.QP
		if q.PID == 0 || qd.Final {
			continue
		}
		r := QPRow{PID: q.PID, Proc: "?", Device: q.Device, Port: q.Port, Type: q.Type, LQPN: q.LQPN, RQPN: q.RQPN,
			HasDelta: !qd.New && d.Period > 0, SQ: qd.SQPSN, RQ: qd.RQPSN}
		if q.Process != nil {
			r.Proc = q.Process.Name
		}
		if q.CM != nil {
			r.Local, r.Remote = unmap(q.CM.Src), unmap(q.CM.Dst)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b QPRow) int {
		return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Device, b.Device), cmp.Compare(a.LQPN, b.LQPN))
	})
	return rows
}

// qpLine is a queue pair in the layout of the flows listing: device/port,
// type, QPNs, endpoints, PSN moves.
func qpLine(r *QPRow) string {
	ep := fmt.Sprintf("%-54s", "(no RDMA CM)")
	if r.Local.IsValid() {
		ep = fmt.Sprintf("%20s#%-6d%20s#%-6d", addr(r.Local), r.Local.Port(), addr(r.Remote), r.Remote.Port())
	}
	moves := "sq - rq -"
	if r.HasDelta {
		moves = fmt.Sprintf("sq +%d rq +%d", r.SQ, r.RQ)
	}
	return fmt.Sprintf("%-12s%-4s%8d->%-8d%s %s", r.Device+"/"+strconv.FormatUint(uint64(r.Port), 10), r.Type, r.LQPN, r.RQPN, ep, moves)
}

// renderRDMA is `fleutan rdma`: per process with queue pairs, its queue
// pairs and the percent of one core it used on each core.
func renderRDMA(b *strings.Builder, fr *Frame, st Style) {
	cores := fr.cores()
	for i := 0; i < len(fr.QPs); {
		pid := fr.QPs[i].PID
		fmt.Fprintf(b, "~>%s(%d)\n", fr.QPs[i].Proc, pid)
		for ; i < len(fr.QPs) && fr.QPs[i].PID == pid; i++ {
			b.WriteString(qpLine(&fr.QPs[i]))
			b.WriteByte('\n')
		}
		b.WriteString("___\n\n")
		st.write(b, fr.coreChart(pid, cores))
		b.WriteString("...\n")
	}
	if len(fr.QPs) == 0 {
		b.WriteString("no RDMA queue pairs of a process\n")
	}
}
