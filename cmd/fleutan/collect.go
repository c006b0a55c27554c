package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/rdma"
)

// sampler holds the library collectors a view draws from and the previous
// snapshot of each: an interval is the Diff of two snapshots, so no
// collector keeps hidden state for the tool.
type sampler struct {
	log   *slog.Logger
	flows *flows.Collector
	cpu   *cpu.Collector
	qdisc *qdisc.Collector
	xmit  *qdisc.XmitCounter
	rdma  *rdma.Collector

	// prevFlows stays valid until the second flows Collect after it (the
	// flows collector reuses its buffers), which is all Diff needs.
	prevFlows flows.Snapshot
	prevCPU   cpu.Snapshot
	prevQdisc qdisc.Snapshot
	prevRDMA  rdma.Snapshot
	// pids are the flows' processes the cpu collector tracks.
	pids   map[int]bool
	deltas []flows.FlowDelta
}

// newSampler opens the collectors of view: the flows collector for every
// view but -q, which needs the qdisc collector (with the eBPF transmit
// counter for the flows per queue when the kernel allows it); the --cpu
// views also measure their flows' processes with the cpu collector.
func newSampler(view string, log *slog.Logger) (*sampler, error) {
	s := &sampler{log: log}
	var err error
	switch view {
	case viewQdisc:
		o := qdisc.Options{Logger: log}
		if x, xerr := qdisc.OpenXmitCounter(qdisc.XmitOptions{}); xerr != nil {
			// The queues' own counters do without it.
			log.Warn("qdisc: flows per queue disabled: eBPF is not available", "error", xerr)
		} else {
			s.xmit, o.Xmit = x, x
		}
		s.qdisc, err = qdisc.New(o)
	case viewRDMA:
		s.rdma, err = rdma.New(rdma.Options{Logger: log, NoCounters: true})
		if err == nil {
			s.cpu, err = openCPU(log)
		}
	default:
		s.flows, err = flows.New(flows.Options{Logger: log})
		if err == nil && (view == viewCPUAssoc || view == viewCPUGen) {
			s.cpu, err = openCPU(log)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openCPU measures processes exactly with eBPF where the kernel allows
// it, else by sampling /proc, which it says once, as the cpu input does.
func openCPU(log *slog.Logger) (*cpu.Collector, error) {
	c, err := cpu.New(cpu.Options{Method: cpu.MethodEBPF, Logger: log})
	var ee *cpu.EBPFError
	if !errors.As(err, &ee) {
		return c, err
	}
	log.Warn("cpu: eBPF is not available here, measuring processes by sampling /proc instead", "reason", ee.Err.Error())
	return cpu.New(cpu.Options{Method: cpu.MethodSampling, Logger: log})
}

// Close closes the collectors.
func (s *sampler) Close() {
	if s.flows != nil {
		_ = s.flows.Close()
	}
	if s.cpu != nil {
		_ = s.cpu.Close()
	}
	if s.qdisc != nil {
		_ = s.qdisc.Close()
	}
	if s.rdma != nil {
		_ = s.rdma.Close()
	}
	if s.xmit != nil { // after the collector that uses it
		_ = s.xmit.Close()
	}
}

// sample collects from every collector and returns the interval since the
// previous sample; the first one, the reference of the first interval,
// has no deltas. A collector that fails with nothing to show ends the
// tool; one that returns part of a collection with its error is warned
// about and shown.
func (s *sampler) sample(ctx context.Context) (interval, error) {
	var iv interval
	if s.flows != nil {
		snap, err := s.flows.Collect(ctx)
		if err != nil {
			if len(snap.Flows) == 0 {
				return iv, err
			}
			s.log.Warn(err.Error())
		}
		s.deltas = flows.AppendDiff(s.deltas, s.prevFlows, snap)
		s.prevFlows = snap
		iv.Flows, iv.FlowDeltas = &snap, s.deltas
	}
	if s.rdma != nil {
		snap, err := s.rdma.Collect(ctx)
		if err != nil {
			if snap.Time.IsZero() {
				return iv, err
			}
			s.log.Warn(err.Error())
		}
		d := rdma.Diff(s.prevRDMA, snap)
		s.prevRDMA = snap
		iv.RDMA, iv.RDMADelta = &snap, &d
	}
	if s.cpu != nil {
		// With eBPF a process tracked since the previous collection is
		// credited with all it ran since then: tracking the processes that
		// have flows now, beside those of the interval's start, measures
		// one that opened a socket during the interval. The sampler counts
		// a process only from its Track on, so there it waits for the next
		// interval, as in the cpu input.
		pids := map[int]bool{}
		if iv.Flows != nil {
			for i := range iv.Flows.Flows {
				if p := iv.Flows.Flows[i].Process; p != nil {
					pids[p.PID] = true
				}
			}
		}
		if iv.RDMA != nil {
			for _, q := range iv.RDMA.QPs {
				if q.PID > 0 {
					pids[q.PID] = true
				}
			}
		}
		if s.cpu.Method() == cpu.MethodEBPF {
			s.cpu.Track(pidList(s.pids, pids))
		}
		snap, err := s.cpu.Collect(ctx)
		s.cpu.Track(pidList(pids))
		s.pids = pids
		if err != nil {
			var ce *cpu.CollectError
			if !errors.As(err, &ce) {
				return iv, err
			}
			s.log.Warn(err.Error())
		}
		u := cpu.Diff(s.prevCPU, snap)
		s.prevCPU = snap
		iv.CPU = &u
	}
	if s.qdisc != nil {
		snap, err := s.qdisc.Collect(ctx)
		if err != nil {
			if snap.Time.IsZero() {
				return iv, err
			}
			s.log.Warn(err.Error())
		}
		iv.QdiscDeltas = qdisc.Diff(s.prevQdisc, snap)
		s.prevQdisc = snap
		iv.Qdisc = &snap
	}
	return iv, nil
}

// pidList is the union of the sets, never nil: the cpu collector takes
// nil for every process.
func pidList(sets ...map[int]bool) []int {
	out := []int{}
	seen := map[int]bool{}
	for _, s := range sets {
		for pid := range s {
			if !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// runFlows samples every interval and prints the view (or the interval
// as JSON) until ctx ends or o.count intervals were shown.
func runFlows(ctx context.Context, o *flowsOptions, stdout io.Writer, st Style, log *slog.Logger) error {
	s, err := newSampler(o.view, log)
	if err != nil {
		return err
	}
	defer s.Close()
	// The first sample is the reference for the deltas of the first
	// interval.
	if _, err := s.sample(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ticker := time.NewTicker(o.interval)
	defer ticker.Stop()
	enc := json.NewEncoder(stdout)
	for n := 0; o.count == 0 || n < o.count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		iv, err := s.sample(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if o.json {
			if err := enc.Encode(&iv); err != nil {
				return fmt.Errorf("json: %w", err)
			}
			continue
		}
		fr := buildFrame(&iv)
		text := render(&fr, o, st)
		if n > 0 {
			text = "\n" + text
		}
		if _, err := io.WriteString(stdout, text); err != nil {
			return err
		}
	}
	return nil
}
