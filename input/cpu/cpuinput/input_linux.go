package cpuinput

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
	"github.com/fleutan/fleutanbeat/input/internal/kernsup"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/internal/sockdiag"
	"github.com/fleutan/fleutanbeat/input/rdma"
	"github.com/fleutan/fleutanbeat/pipeline"
)

type cpuInput struct {
	cfg   Config
	s     input.Settings
	log   *slog.Logger
	procs *procindex.Index

	// newCollector builds the collector (cpu.New); tests make the eBPF
	// method fail.
	newCollector func(cpu.Options) (*cpu.Collector, error)
	coll         *cpu.Collector
	method       string
	// have is the effective capability set, read at the start of Run;
	// nil when unknown, in which case no capability is blamed.
	have *caps.Set

	// prev and sel are the previous period's end: its snapshot and its
	// selection of processes.
	prev cpu.Snapshot
	sel  selection
	// beforeCollect and afterCollect, when set, run right before and
	// right after each Collect: tests read the ground truth there, which
	// brackets the moment the collector read its counters.
	beforeCollect, afterCollect func()

	// rdma finds the processes with RDMA queue pairs, network-active as
	// much as those with sockets. nil until the kernel's RDMA netlink
	// opens: most kernels have none, and asking again each period costs
	// one failing socket(2).
	rdma *rdma.Collector

	// Counters on /stats: input.cpu.*, and the method in use.
	n         input.Counters
	methodVal *pipeline.Text
	// kernel logs each missing kernel feature once and counts its
	// failures (input.cpu.kernel_unsupported).
	kernel *kernsup.Reporter
}

func newInput(c Config, s input.Settings) (input.Input, error) {
	in := &cpuInput{cfg: c, s: s, log: s.Logger}
	in.registerCounters()
	return in, nil
}

// registerCounters sets up the counters once; an input built without
// newInput (tests) gets them at its first use.
func (in *cpuInput) registerCounters() {
	if in.methodVal != nil {
		return
	}
	m := in.s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	in.n = input.NewCounters(m, "cpu")
	in.methodVal = m.Text("input.cpu.method")
	in.kernel = kernsup.NewReporter(in.log, "cpu", m.Counter("input.cpu.kernel_unsupported"))
}

// openCollector chooses the method and says in one log line which and why.
// It tries eBPF itself rather than passing method auto to the collector,
// so that a refusal can be put down to a missing capability.
func (in *cpuInput) openCollector() (*cpu.Collector, string, error) {
	newColl := in.newCollector
	if newColl == nil {
		newColl = cpu.New
	}
	opts := cpu.Options{ProcRoot: in.s.ProcRoot, SampleInterval: in.cfg.SampleInterval.D(), Logger: in.log}
	if in.cfg.Method == MethodSampling {
		in.log.Info("cpu: measuring processes by sampling /proc (method: sampling)", "sample_interval", in.cfg.SampleInterval.D())
		opts.Method = cpu.MethodSampling
		c, err := newColl(opts)
		return c, MethodSampling, err
	}
	opts.Method = cpu.MethodEBPF
	c, err := newColl(opts)
	if err == nil {
		in.log.Info("cpu: measuring processes exactly with eBPF on the sched_switch and sched_migrate_task raw tracepoints", "method", in.cfg.Method)
		return c, MethodEBPF, nil
	}
	var ee *cpu.EBPFError
	if !errors.As(err, &ee) {
		return nil, "", err
	}
	reason := ee.Err
	// A load that fails for want of a capability is said so by name;
	// the kernel's EPERM alone does not tell which one.
	r := caps.EBPF()
	var missing []caps.Cap
	if in.have != nil {
		missing = r.Missing(*in.have)
	}
	if in.cfg.Method == MethodEBPF {
		if len(missing) > 0 {
			return nil, "", fmt.Errorf("cpu: method ebpf needs %s: %w (use method: auto or sampling to fall back to sampling /proc)", caps.Names(missing), reason)
		}
		return nil, "", fmt.Errorf("cpu: method ebpf: %w (use method: auto or sampling to fall back to sampling /proc)", reason)
	}
	if len(missing) > 0 {
		in.log.Warn(r.Message("cpu", missing, "measuring processes by sampling /proc instead"), "missing", caps.Names(missing), "reason", reason.Error(), "sample_interval", in.cfg.SampleInterval.D())
	} else {
		in.log.Warn("cpu: eBPF is not available here, measuring processes by sampling /proc instead", "reason", reason.Error(), kernsup.HintAttr(reason), "sample_interval", in.cfg.SampleInterval.D())
	}
	opts.Method = cpu.MethodSampling
	c, err = newColl(opts)
	return c, MethodSampling, err
}

// readCaps fills in.have; capabilities that cannot be read stay unknown,
// so that no log line blames a capability without evidence.
func (in *cpuInput) readCaps() {
	have, err := caps.Effective(in.s.ProcRoot)
	if err != nil {
		in.log.Debug("cpu: capabilities unknown", "error", err)
		return
	}
	in.have = &have
}

// degradeSelection says once what a missing capability costs the choice
// of network processes.
func (in *cpuInput) degradeSelection() {
	if in.cfg.Processes != ProcessesNetwork || in.have == nil {
		return
	}
	r := caps.ProcessAttribution()
	if m := r.Missing(*in.have); len(m) > 0 {
		in.log.Warn(r.Message("cpu", m, "network processes of other users are not found and not reported"), "missing", caps.Names(m))
	}
}

// Run measures until ctx ends: a collection at the start, the reference
// of the first period, then one at the end of every period. The collector
// samples in between when it samples.
func (in *cpuInput) Run(ctx context.Context, out pipeline.Publisher) error {
	in.registerCounters()
	in.readCaps()
	c, method, err := in.openCollector()
	if err != nil {
		return err
	}
	in.coll, in.method = c, method
	in.methodVal.Set(method)
	defer c.Close()
	defer func() {
		if in.rdma != nil {
			_ = in.rdma.Close()
		}
	}()
	in.degradeSelection()
	if in.cfg.Processes == ProcessesNetwork {
		in.procs = procindex.New(procindex.Options{ProcRoot: in.s.ProcRoot, Logger: in.log})
	}
	in.begin(ctx)

	t := time.NewTicker(in.cfg.Period.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		events := in.period(ctx)
		if len(events) > 0 {
			if err := out.Publish(ctx, events...); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			in.n.Events.Add(int64(len(events)))
		}
		in.n.Collections.Add(1)
	}
}

// begin selects the processes and takes the reference collection.
func (in *cpuInput) begin(ctx context.Context) {
	in.registerCounters()
	sel, err := in.selectProcesses()
	if err = in.kernel.Filter(err); err != nil {
		in.n.Errors.Add(1)
		in.log.Warn("cpu: selecting network processes failed", "error", err)
	}
	in.sel = sel
	in.coll.Track(sel.pids())
	in.prev = in.collect(ctx)
}

// collect takes a snapshot, logs and counts what failed, and hands the
// snapshot to the query API when it is on.
func (in *cpuInput) collect(ctx context.Context) cpu.Snapshot {
	if in.beforeCollect != nil {
		in.beforeCollect()
	}
	snap, err := in.coll.Collect(ctx)
	if in.afterCollect != nil {
		in.afterCollect()
	}
	var ce *cpu.CollectError
	switch {
	case err != nil && ctx.Err() != nil:
		return cpu.Snapshot{} // stopping: nothing failed
	case errors.As(err, &ce):
		if ce.Processes != nil {
			in.n.Errors.Add(1)
			in.log.Warn("cpu: measuring processes failed", "method", in.method, "error", ce.Processes)
		}
		if ce.Cores != nil {
			in.n.Errors.Add(1)
			in.log.Warn("cpu: reading core statistics failed", "error", ce.Cores)
		}
	case err != nil:
		in.n.Errors.Add(1)
		in.log.Warn("cpu: measuring processes failed", "method", in.method, "error", err)
	}
	// A snapshot shares nothing with the collector: no copy is needed.
	if in.s.Latest != nil && !snap.Time.IsZero() {
		in.s.Latest.Set("cpu", input.Collection{Time: snap.Time, Snapshot: snap})
	}
	return snap
}

// period ends a measurement period: it reselects the processes, collects,
// and builds the events from the difference to the previous collection.
// With eBPF the new selection is tracked before the collection (with the
// previous one, which the period measured), so that a process that became
// network-active during the period is reported for it, as the program saw
// it all along; the sampler measures a process only from its Track on, so
// there it is tracked after. After the collection only the new selection
// stays tracked.
func (in *cpuInput) period(ctx context.Context) []pipeline.Event {
	in.registerCounters()
	begin := time.Now()
	prevSel := in.sel
	sel, err := in.selectProcesses()
	if err = in.kernel.Filter(err); err != nil {
		in.n.Errors.Add(1)
		in.log.Warn("cpu: selecting network processes failed", "error", err)
	}
	if in.method == MethodEBPF {
		in.coll.Track(prevSel.union(sel).pids())
	}
	snap := in.collect(ctx)
	in.coll.Track(sel.pids())
	if snap.Time.IsZero() {
		return nil
	}
	u := cpu.Diff(in.prev, snap)
	in.prev, in.sel = snap, sel
	in.shareCores(&u)

	var events []pipeline.Event
	for _, c := range u.Cores {
		events = append(events, coreEvent(u.Time, u.Period, c))
	}
	for i := range u.Processes {
		p := &u.Processes[i]
		flows, selected := sel.flows(p.Process.PID)
		if !selected {
			flows, selected = prevSel.flows(p.Process.PID)
		}
		if in.cfg.Processes == ProcessesNetwork && !selected {
			continue
		}
		if p.Pct < in.cfg.MinPct {
			continue
		}
		events = processEvents(events, u.Time, u.Period, len(snap.Cores) > 0, p, flows, u.Method)
	}
	// event.duration is the period; the collection's own time goes
	// beside it.
	us := time.Since(begin).Microseconds()
	for i := range events {
		events[i].Fields["fleutan"].(pipeline.M)["collection"] = pipeline.M{"duration_us": us}
	}
	return events
}

// shareCores hands each measured process's core distribution to the
// flows input's rollups (input.Settings.Cores), when the agent shares one.
func (in *cpuInput) shareCores(u *cpu.Usage) {
	if in.s.Cores == nil {
		return
	}
	m := make(map[input.ProcessKey]input.CoreUse, len(u.Processes))
	for i := range u.Processes {
		p := &u.Processes[i]
		if p.TotalNs == 0 {
			continue
		}
		c := input.CoreUse{Pct: p.Pct, DominantCore: p.DominantCore, Spread: p.Spread, Cores: make([]input.CoreShare, len(p.Cores))}
		for j, pc := range p.Cores {
			c.Cores[j] = input.CoreShare{CPU: pc.CPU, Pct: pc.Pct}
		}
		m[input.ProcessKey{PID: p.Process.PID, StartTime: p.Process.StartTime}] = c
	}
	in.s.Cores.Set(u.Time, u.Period, m)
}

// selection is the processes of a period with their flow counts; nil
// means every process.
type selection map[int]int

func (s selection) pids() []int {
	if s == nil {
		return nil
	}
	out := make([]int, 0, len(s))
	for pid := range s {
		out = append(out, pid)
	}
	return out
}

func (s selection) flows(pid int) (int, bool) {
	n, ok := s[pid]
	return n, ok
}

func (s selection) has(pid int) bool {
	_, ok := s[pid]
	return ok
}

// union is both selections; nil (every process) when either is.
func (s selection) union(o selection) selection {
	if s == nil || o == nil {
		return nil
	}
	u := make(selection, len(s)+len(o))
	for pid, n := range s {
		u[pid] = n
	}
	for pid, n := range o {
		u[pid] = n
	}
	return u
}

// selectProcesses returns the network-active processes: those holding a
// TCP or UDP socket of the agent's network namespace (what the flows input
// attributes flows to), and those owning an RDMA queue pair (what the rdma
// input reports), whose traffic bypasses the sockets. The flow count of a process is the number of
// sockets attributed to it (procindex.Index.Lookup: the lowest pid of the
// holders), so shared sockets count once. It is the one place that knows
// how network processes are found.
func (in *cpuInput) selectProcesses() (selection, error) {
	if in.cfg.Processes == ProcessesAll {
		return nil, nil
	}
	sel := selection{}
	d, err := sockdiag.Open()
	if err != nil {
		return sel, fmt.Errorf("cpu: %w", err)
	}
	defer d.Close()
	var inodes []uint32
	// Dumps the kernel has no handler for (a *_diag module missing) fail
	// alike every period: the processes of the other kinds are selected,
	// and the caller's kernsup.Reporter explains these once.
	var unsupported []error
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			err := d.Dump(sockdiag.Request{Family: fam, Protocol: proto}, func(s *sockdiag.Socket) error {
				if s.Inode != 0 {
					inodes = append(inodes, s.Inode)
				}
				return nil
			})
			if _, ok := sockdiag.Unsupported(err); ok {
				unsupported = append(unsupported, fmt.Errorf("cpu: sock_diag dump: %w", err))
				continue
			}
			if err != nil {
				return sel, fmt.Errorf("cpu: sock_diag dump: %w", err)
			}
		}
	}
	if _, err := in.procs.Update(inodes); err != nil {
		return sel, fmt.Errorf("cpu: socket owners: %w", err)
	}
	for _, pid := range in.procs.PIDs() {
		sel[pid] = 0
	}
	for _, ino := range inodes {
		if p, ok := in.procs.Lookup(ino); ok {
			if _, held := sel[p.PID]; held {
				sel[p.PID]++
			}
		}
	}
	owners, err := in.rdmaOwners()
	for pid := range owners {
		if _, ok := sel[pid]; !ok {
			sel[pid] = 0
		}
	}
	return sel, errors.Join(append(unsupported, err)...)
}

// rdmaOwners returns the pids owning RDMA queue pairs; none where the
// kernel has no RDMA.
func (in *cpuInput) rdmaOwners() (map[int]int, error) {
	if in.rdma == nil {
		c, err := rdma.New(rdma.Options{ProcRoot: in.s.ProcRoot, NoCounters: true, Logger: in.log})
		if errors.Is(err, rdma.ErrNotSupported) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cpu: %w", err)
		}
		in.rdma = c
	}
	owners, err := in.rdma.QueuePairOwners(context.Background())
	if err != nil {
		return owners, fmt.Errorf("cpu: queue pair owners: %w", err)
	}
	return owners, nil
}
