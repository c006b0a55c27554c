package cpu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/process"
)

// meter measures the CPU time of processes per core.
type meter interface {
	// track sets the processes measured from now on; nil means every
	// process. The eBPF meter always measures every process and ignores it.
	track(pids []int)
	// sample is called every sample interval (sampling only).
	sample()
	// collect returns what the tracked processes did since the previous
	// collect, keyed by pid, the pids it found gone, and CLOCK_MONOTONIC
	// at the read.
	collect() (usage map[int]*procUsage, gone []int, at time.Duration, err error)
	close() error
}

// procUsage is what one process did between two collects of a meter.
type procUsage struct {
	PID int
	// CoreNs is the CPU time per core, indexed by CPU number.
	CoreNs     []uint64
	Migrations uint64
}

// Collector measures per-core CPU time: of every core from /proc/stat and
// /proc/softirqs, and of the tracked processes with eBPF or by sampling.
// Its methods are safe for concurrent use.
type Collector struct {
	o      Options
	method string

	mu     sync.Mutex
	meter  meter
	closed bool
	// all: no Track yet, or Track(nil): every process is measured.
	all     bool
	tracked map[int]bool
	acc     map[int]*procAcc
	series  uint64
	buf     []byte
	// procFS reads exe, cmdline and status; made on first use.
	procFS *procfs.FS
	cores  []coreTimes
	sirqs  []netSoftirqs

	// The sampling goroutine: stop ends it, done says it ended.
	stop, done chan struct{}
}

// procAcc is the cumulative count of one process in one series.
type procAcc struct {
	proc       *process.Process
	series     uint64
	coreNs     []uint64
	migrations uint64
}

// New checks o and opens the meter: with MethodEBPF or MethodAuto it loads
// and attaches the eBPF program (auto falls back to sampling when the
// kernel refuses it; Method tells which runs). The sampling method starts
// one goroutine that reads the tracked threads every SampleInterval until
// Close.
func New(o Options) (*Collector, error) {
	return newCollector(o, openBPF)
}

// newCollector is New with the eBPF loader as a parameter, so that tests
// can make it fail.
func newCollector(o Options, loadBPF func(procRoot string) (meter, error)) (*Collector, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	c := &Collector{o: o, all: true, acc: map[int]*procAcc{}, buf: make([]byte, 4096)}
	if o.Method != MethodSampling {
		m, err := loadBPF(o.ProcRoot)
		if err == nil {
			c.meter, c.method = m, MethodEBPF
			return c, nil
		}
		if o.Method == MethodEBPF {
			return nil, &EBPFError{Err: err}
		}
		o.Logger.Debug("cpu: eBPF is not available, sampling /proc", "reason", err.Error())
	}
	c.meter, c.method = newSampler(o.ProcRoot), MethodSampling
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.sampleLoop()
	return c, nil
}

// sampleLoop samples every interval. Collect takes one more sample
// itself, so that a period ends on a sample whenever it is collected.
func (c *Collector) sampleLoop() {
	defer close(c.done)
	t := time.NewTicker(c.o.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		if !c.closed {
			c.meter.sample()
		}
		c.mu.Unlock()
	}
}

// Method is the method in use: MethodEBPF or MethodSampling.
func (c *Collector) Method() string { return c.method }

// Track sets the processes measured from now on, by pid; nil (the
// default) is every process, including those started later. Snapshots
// then hold only tracked processes. A process Track leaves out loses its
// counts: tracked again, it starts a new series. With eBPF a process
// tracked since the previous Collect is credited with everything it ran
// since that Collect (the program sees every process); with sampling,
// from the Track on.
func (c *Collector) Track(pids []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || (pids == nil && c.all) {
		// Every process already: Collect picks up new ones.
		return
	}
	c.all = pids == nil
	c.tracked = nil
	if !c.all {
		c.tracked = make(map[int]bool, len(pids))
		for _, pid := range pids {
			c.tracked[pid] = true
		}
		for pid := range c.acc {
			if !c.tracked[pid] {
				delete(c.acc, pid)
			}
		}
	}
	c.meter.track(pids)
}

// Collect reads the counters. When a part fails (the process meter, or
// /proc/stat and /proc/softirqs) it returns a *CollectError saying which,
// with a snapshot of the rest.
func (c *Collector) Collect(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Snapshot{}, errors.New("cpu: collect after close")
	}
	var ce CollectError
	if c.method == MethodSampling {
		c.meter.sample()
	}
	usage, gone, at, err := c.meter.collect()
	if err != nil {
		ce.Processes = err
		at = monotonic()
	}
	snap := Snapshot{Time: time.Now(), MonotonicNs: uint64(at), Method: c.method}
	for _, pid := range gone {
		delete(c.acc, pid)
	}
	for pid, u := range usage {
		if !c.all && !c.tracked[pid] {
			continue
		}
		var ran bool
		for _, ns := range u.CoreNs {
			ran = ran || ns != 0
		}
		if !ran && u.Migrations == 0 {
			continue
		}
		a, ok := c.account(pid)
		if !ok {
			continue // exited before it could be named
		}
		for len(a.coreNs) < len(u.CoreNs) {
			a.coreNs = append(a.coreNs, 0)
		}
		for core, ns := range u.CoreNs {
			a.coreNs[core] += ns
		}
		a.migrations += u.Migrations
	}
	if c.all {
		// The sampler lists processes when tracking; new ones are picked
		// up here, once a period.
		c.meter.track(nil)
	}
	if err := c.readCores(&snap); err != nil {
		ce.Cores = err
	}
	snap.Processes = make([]ProcessTimes, 0, len(c.acc))
	for _, a := range c.acc {
		snap.Processes = append(snap.Processes, ProcessTimes{Process: a.proc, Series: a.series, CoreNs: slices.Clone(a.coreNs), Migrations: a.migrations})
	}
	slices.SortFunc(snap.Processes, func(a, b ProcessTimes) int { return a.Process.PID - b.Process.PID })
	if ce.Processes != nil || ce.Cores != nil {
		return snap, &ce
	}
	return snap, nil
}

// CollectError is Collect's error when part of a collection failed.
type CollectError struct {
	// Processes is the process meter's error; the snapshot's processes
	// are then as of the previous collection.
	Processes error
	// Cores is the error reading /proc/stat or /proc/softirqs; the
	// snapshot has the cores it could read.
	Cores error
}

func (e *CollectError) Error() string {
	var parts []error
	if e.Processes != nil {
		parts = append(parts, fmt.Errorf("cpu: measuring processes: %w", e.Processes))
	}
	if e.Cores != nil {
		parts = append(parts, e.Cores)
	}
	return errors.Join(parts...).Error()
}

func (e *CollectError) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Processes, e.Cores} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Close stops the meter: it detaches the eBPF program or ends sampling.
func (c *Collector) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	if c.stop != nil {
		close(c.stop)
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meter.close()
}

// account returns the counts of pid's current process, starting a new
// series when the pid is new or was reused (a new start time). It reads
// the stat of every process that ran, as a reused pid shows only there.
func (c *Collector) account(pid int) (*procAcc, bool) {
	dir := filepath.Join(c.o.ProcRoot, strconv.Itoa(pid))
	b, err := readInto(filepath.Join(dir, "stat"), &c.buf)
	if err != nil {
		delete(c.acc, pid)
		return nil, false
	}
	st, err := parseTaskStat(b, false)
	if err != nil {
		delete(c.acc, pid)
		return nil, false
	}
	if a, ok := c.acc[pid]; ok && a.proc.StartTime == st.StartTime {
		return a, true
	}
	if st, err = parseTaskStat(b, true); err != nil {
		delete(c.acc, pid)
		return nil, false
	}
	p := c.identify(pid, st)
	c.series++
	a := &procAcc{proc: p, series: c.series}
	c.acc[pid] = a
	return a, true
}

// identify names a process from its stat, its status (the uid) and its
// exe and cmdline, which procfs reads. It runs only when a pid is new or reused, and
// there procfs costs what the own reader did (docs/ARCHITECTURE.md,
// "/proc readers"); stat stays with parseTaskStat, which is per period.
func (c *Collector) identify(pid int, st taskStat) *process.Process {
	p := &process.Process{PID: pid, PPID: st.PPID, Name: st.Name, StartTime: st.StartTime}
	if c.procFS == nil {
		if fs, err := procfs.NewFS(c.o.ProcRoot); err == nil {
			c.procFS = &fs
		}
	}
	if b, err := readInto(filepath.Join(c.o.ProcRoot, strconv.Itoa(pid), "status"), &c.buf); err == nil {
		if uid, err := procindex.ParseStatusUID(b); err == nil {
			p.UID = uid
		}
	}
	if c.procFS != nil {
		if proc, err := c.procFS.Proc(pid); err == nil {
			if exe, err := proc.Executable(); err == nil {
				p.Executable = exe
			}
			if args, err := proc.CmdLine(); err == nil && len(args) > 0 {
				p.Args = args
			}
		}
	}
	return p
}

// readCores reads /proc/stat and /proc/softirqs into snap. A kernel
// without /proc/softirqs (before 2.6.31) still gives the time split.
func (c *Collector) readCores(snap *Snapshot) error {
	var errs []error
	b, err := os.ReadFile(filepath.Join(c.o.ProcRoot, "stat"))
	if err == nil {
		c.cores, err = parseStat(b, c.cores[:0])
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("cpu: %w", err))
	}
	b, err = os.ReadFile(filepath.Join(c.o.ProcRoot, "softirqs"))
	if err == nil {
		c.sirqs, err = parseSoftirqs(b, c.sirqs[:0])
	}
	if err != nil {
		c.sirqs = c.sirqs[:0]
		if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cpu: %w", err))
		}
	}
	snap.NetSoftirqs = len(c.sirqs) > 0
	snap.Cores = make([]CoreTimes, 0, len(c.cores))
	for _, t := range c.cores {
		ct := CoreTimes{CPU: t.CPU, UserTicks: t.User, NiceTicks: t.Nice, SystemTicks: t.System, IdleTicks: t.Idle,
			IOWaitTicks: t.IOWait, IRQTicks: t.IRQ, SoftIRQTicks: t.SoftIRQ, StealTicks: t.Steal}
		for _, s := range c.sirqs {
			if s.CPU == t.CPU {
				ct.NetRX, ct.NetTX = s.RX, s.TX
				break
			}
		}
		snap.Cores = append(snap.Cores, ct)
	}
	return errors.Join(errs...)
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
