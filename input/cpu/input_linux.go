package cpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/internal/sockdiag"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// meter measures the CPU time of processes per core.
type meter interface {
	// track sets the processes measured from now on; nil means every
	// process. The eBPF meter always measures every process and ignores it.
	track(pids []int)
	// sample is called every sample interval (sampling only).
	sample()
	// collect returns what the tracked processes did since the previous
	// collect, keyed by pid, and the length of that interval.
	collect() (map[int]*procUsage, time.Duration, error)
	close() error
}

type cpuInput struct {
	cfg   Config
	s     input.Settings
	log   *slog.Logger
	procs *procindex.Index
	infos map[int]*procInfo
	buf   []byte
	// procFS reads exe and cmdline; made on first use.
	procFS *procfs.FS

	// loadBPF loads the eBPF meter; tests make it fail.
	loadBPF func(procRoot string) (meter, error)
	method  string
	meter   meter
	// have is the effective capability set, read at the start of Run;
	// nil when unknown, in which case no capability is blamed.
	have *caps.Set

	// Counters on /stats: input.cpu.*, and the method in use.
	n         input.Counters
	methodVal *pipeline.Text
}

func newInput(c Config, s input.Settings) (input.Input, error) {
	in := &cpuInput{
		cfg:   c,
		s:     s,
		log:   s.Logger,
		infos: map[int]*procInfo{},
		buf:   make([]byte, 4096),
	}
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
}

func loadBPFMeter(procRoot string) (meter, error) {
	m, err := openBPF(procRoot)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// openMeter chooses the method and says in one log line which and why.
func (in *cpuInput) openMeter() (meter, string, error) {
	if in.cfg.Method == MethodSampling {
		in.log.Info("cpu: measuring processes by sampling /proc (method: sampling)", "sample_interval", in.cfg.SampleInterval.D())
		return newSampler(in.s.ProcRoot), MethodSampling, nil
	}
	load := in.loadBPF
	if load == nil {
		load = loadBPFMeter
	}
	m, err := load(in.s.ProcRoot)
	if err == nil {
		in.log.Info("cpu: measuring processes exactly with eBPF on the sched_switch and sched_migrate_task raw tracepoints", "method", in.cfg.Method)
		return m, MethodEBPF, nil
	}
	// A load that fails for want of a capability is said so by name;
	// the kernel's EPERM alone does not tell which one.
	r := caps.EBPF()
	var missing []caps.Cap
	if in.have != nil {
		missing = r.Missing(*in.have)
	}
	if in.cfg.Method == MethodEBPF {
		if len(missing) > 0 {
			return nil, "", fmt.Errorf("cpu: method ebpf needs %s: %w (use method: auto or sampling to fall back to sampling /proc)", caps.Names(missing), err)
		}
		return nil, "", fmt.Errorf("cpu: method ebpf: %w (use method: auto or sampling to fall back to sampling /proc)", err)
	}
	if len(missing) > 0 {
		in.log.Warn(r.Message("cpu", missing, "measuring processes by sampling /proc instead"), "missing", caps.Names(missing), "reason", err.Error(), "sample_interval", in.cfg.SampleInterval.D())
	} else {
		in.log.Warn("cpu: eBPF is not available here, measuring processes by sampling /proc instead", "reason", err.Error(), "sample_interval", in.cfg.SampleInterval.D())
	}
	return newSampler(in.s.ProcRoot), MethodSampling, nil
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

// Run measures until ctx ends. The eBPF meter needs one wake-up per period;
// the sampler one per sample interval, and a period is a whole number of
// samples so that every period ends on a sample.
func (in *cpuInput) Run(ctx context.Context, out pipeline.Publisher) error {
	in.registerCounters()
	in.readCaps()
	m, method, err := in.openMeter()
	if err != nil {
		return err
	}
	in.meter, in.method = m, method
	in.methodVal.Set(method)
	defer m.close()
	in.degradeSelection()
	if in.cfg.Processes == ProcessesNetwork {
		in.procs = procindex.New(procindex.Options{ProcRoot: in.s.ProcRoot, Logger: in.log})
	}

	step, steps := in.cfg.Period.D(), 1
	if method == MethodSampling {
		step = in.cfg.SampleInterval.D()
		steps = max(1, int((in.cfg.Period.D()+step/2)/step))
	}
	sel, err := in.selectProcesses()
	if err != nil {
		in.n.Errors.Add(1)
		in.log.Warn("cpu: selecting network processes failed", "error", err)
	}
	m.track(sel.pids())
	cores, softirqs, coreErr := in.readCores(nil, nil)
	if coreErr != nil {
		in.n.Errors.Add(1)
		in.log.Warn("cpu: reading core statistics failed", "error", coreErr)
	}

	t := time.NewTicker(step)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if method == MethodSampling {
			m.sample()
		}
		if n%steps != 0 {
			continue
		}
		events, next, nextCores, nextSoftirqs := in.period(sel, cores, softirqs)
		sel, cores, softirqs = next, nextCores, nextSoftirqs
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

// period ends a measurement period: it collects the meter, reselects the
// processes for the next period and builds the events.
func (in *cpuInput) period(prevSel selection, prevCores []coreTimes, prevSoftirqs []netSoftirqs) ([]pipeline.Event, selection, []coreTimes, []netSoftirqs) {
	in.registerCounters()
	begin := time.Now()
	usage, took, err := in.meter.collect()
	now := time.Now()
	if err != nil {
		in.n.Errors.Add(1)
		in.log.Warn("cpu: measuring processes failed", "method", in.method, "error", err)
	}
	sel, err := in.selectProcesses()
	if err != nil {
		in.n.Errors.Add(1)
		in.log.Warn("cpu: selecting network processes failed", "error", err)
	}
	in.meter.track(sel.pids())

	var events []pipeline.Event
	cores, softirqs, err := in.readCores(nil, nil)
	if err != nil {
		in.n.Errors.Add(1)
		in.log.Warn("cpu: reading core statistics failed", "error", err)
	}
	hasSoftirqs := len(softirqs) > 0 && len(prevSoftirqs) > 0
	for _, c := range cores {
		p, ok := findCore(prevCores, c.CPU)
		if !ok {
			continue
		}
		var sp, sc netSoftirqs
		if hasSoftirqs {
			sp, _ = findSoftirqs(prevSoftirqs, c.CPU)
			sc, _ = findSoftirqs(softirqs, c.CPU)
		}
		events = append(events, coreEvent(now, took, p, c, sp, sc, hasSoftirqs))
	}

	seen := map[int]bool{}
	for pid, u := range usage {
		flows, selected := sel.flows(pid)
		if !selected {
			flows, selected = prevSel.flows(pid)
		}
		if in.cfg.Processes == ProcessesNetwork && !selected {
			continue
		}
		u.Flows = flows
		s := summarize(u.CoreNs, took)
		if s.TotalNs == 0 || s.Pct < in.cfg.MinPct {
			continue
		}
		info, ok := in.info(pid)
		if !ok {
			continue // exited before we could name it
		}
		seen[pid] = true
		events = processEvents(events, now, took, len(cores), info, u, s, in.method)
	}
	for pid := range in.infos {
		if !seen[pid] && !sel.has(pid) {
			delete(in.infos, pid)
		}
	}
	// event.duration is the period (took); the collection's own time
	// goes beside it.
	us := time.Since(begin).Microseconds()
	for i := range events {
		events[i].Fields["fleutan"].(pipeline.M)["collection"] = pipeline.M{"duration_us": us}
	}
	return events, sel, cores, softirqs
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

// selectProcesses returns the network-active processes: those holding a
// TCP or UDP socket of the agent's network namespace (what the flows input
// attributes flows to). The flow count of a process is the number of
// sockets attributed to it (procindex.Index.Lookup: the lowest pid of the
// holders), so shared sockets count once.
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
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			err := d.Dump(sockdiag.Request{Family: fam, Protocol: proto}, func(s *sockdiag.Socket) error {
				if s.Inode != 0 {
					inodes = append(inodes, s.Inode)
				}
				return nil
			})
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
	return sel, nil
}

// info names a process, reading exe and cmdline again only when the pid
// was reused (a new start time).
func (in *cpuInput) info(pid int) (*procInfo, bool) {
	dir := filepath.Join(in.s.ProcRoot, strconv.Itoa(pid))
	b, err := readInto(filepath.Join(dir, "stat"), &in.buf)
	if err != nil {
		return nil, false
	}
	st, err := parseTaskStat(b, false)
	if err != nil {
		return nil, false
	}
	if p, ok := in.infos[pid]; ok && p.StartTime == st.StartTime {
		return p, true
	}
	st, _ = parseTaskStat(b, true)
	p := &procInfo{PID: pid, PPID: st.PPID, Name: st.Name, StartTime: st.StartTime}
	// procfs reads exe and cmdline: this runs only when a pid is new or
	// reused, and there procfs costs what the own reader did (docs/ARCHITECTURE.md, "/proc
	// readers"). stat above stays with parseTaskStat, which is per period.
	if in.procFS == nil {
		if fs, err := procfs.NewFS(in.s.ProcRoot); err == nil {
			in.procFS = &fs
		}
	}
	if in.procFS != nil {
		if proc, err := in.procFS.Proc(pid); err == nil {
			if exe, err := proc.Executable(); err == nil {
				p.Executable = exe
			}
			if args, err := proc.CmdLine(); err == nil && len(args) > 0 {
				p.Args = args
			}
		}
	}
	in.infos[pid] = p
	return p, true
}

// readCores reads /proc/stat and /proc/softirqs. A kernel without
// /proc/softirqs (before 2.6.31) still gives the time split.
func (in *cpuInput) readCores(cores []coreTimes, sirqs []netSoftirqs) ([]coreTimes, []netSoftirqs, error) {
	var errs []error
	b, err := os.ReadFile(filepath.Join(in.s.ProcRoot, "stat"))
	if err == nil {
		cores, err = parseStat(b, cores[:0])
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("cpu: %w", err))
	}
	b, err = os.ReadFile(filepath.Join(in.s.ProcRoot, "softirqs"))
	if err == nil {
		sirqs, err = parseSoftirqs(b, sirqs[:0])
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("cpu: %w", err))
	}
	return cores, sirqs, errors.Join(errs...)
}

func findCore(cs []coreTimes, cpu int) (coreTimes, bool) {
	for _, c := range cs {
		if c.CPU == cpu {
			return c, true
		}
	}
	return coreTimes{}, false
}

func findSoftirqs(ss []netSoftirqs, cpu int) (netSoftirqs, bool) {
	for _, s := range ss {
		if s.CPU == cpu {
			return s, true
		}
	}
	return netSoftirqs{}, false
}

// readInto reads a small /proc file into *buf, growing it when full.
func readInto(path string, buf *[]byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return readFD(fd, buf)
}

// readFD reads fd to its end into *buf.
func readFD(fd int, buf *[]byte) ([]byte, error) {
	n := 0
	for {
		if n == len(*buf) {
			*buf = append(*buf, make([]byte, len(*buf))...)
		}
		m, err := unix.Read(fd, (*buf)[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return (*buf)[:n], nil
		}
		n += m
	}
}
