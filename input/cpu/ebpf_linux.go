package cpu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// bpfMeter reads the cumulative per-(process, core) on-CPU time and
// per-process migrations that bpf/schedcore.c keeps, and reports the
// differences between two reads.
type bpfMeter struct {
	procRoot string
	objs     schedcoreObjects
	links    []link.Link
	ncpu     int

	prev map[uint32]*bpfCounts
}

type bpfCounts struct {
	core       []uint64
	migrations uint64
}

// openBPF loads and attaches the program; its error says what the kernel
// refused.
func openBPF(procRoot string) (meter, error) {
	m, err := loadBPF(procRoot)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func loadBPF(procRoot string) (m *bpfMeter, err error) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("possible CPUs: %w", err)
	}
	m = &bpfMeter{procRoot: procRoot, ncpu: ncpu}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (64 KiB by
	// default): Debian's 5.10 refused the maps with EPERM. Newer kernels
	// use memory cgroups and this does nothing.
	_ = rlimit.RemoveMemlock()
	if err := loadSchedcoreObjects(&m.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load eBPF program: verifier: %v", ve.Cause)
		}
		return nil, fmt.Errorf("load eBPF program: %w", err)
	}
	defer func() {
		if err != nil {
			_ = m.close()
		}
	}()
	for _, a := range []struct {
		name string
		prog *ebpf.Program
	}{{"sched_switch", m.objs.OnSwitch}, {"sched_migrate_task", m.objs.OnMigrate}} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.name, Program: a.prog})
		if err != nil {
			return nil, fmt.Errorf("attach raw tracepoint %s: %w", a.name, err)
		}
		m.links = append(m.links, l)
	}
	m.prev, _, err = m.read()
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *bpfMeter) close() error {
	var errs []error
	for _, l := range m.links {
		errs = append(errs, l.Close())
	}
	m.links = nil
	errs = append(errs, m.objs.Close())
	return errors.Join(errs...)
}

func (m *bpfMeter) track([]int) {}
func (m *bpfMeter) sample()     {}

func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// read returns the cumulative counts. The maps are read before the
// running slices: a slice that ends in between is then missing from this
// read (and counted by the next one) rather than counted twice, so the
// counts never go back.
func (m *bpfMeter) read() (map[uint32]*bpfCounts, time.Duration, error) {
	out := make(map[uint32]*bpfCounts, len(m.prev)+16)
	var key uint32
	var vals []uint64
	it := m.objs.OncpuNs.Iterate()
	for it.Next(&key, &vals) {
		c := &bpfCounts{core: make([]uint64, m.ncpu)}
		copy(c.core, vals)
		out[key] = c
	}
	if err := it.Err(); err != nil {
		return nil, 0, fmt.Errorf("read oncpu_ns map: %w", err)
	}
	it = m.objs.Migrations.Iterate()
	for it.Next(&key, &vals) {
		c := out[key]
		if c == nil {
			c = &bpfCounts{core: make([]uint64, m.ncpu)}
			out[key] = c
		}
		for _, v := range vals {
			c.migrations += v
		}
	}
	if err := it.Err(); err != nil {
		return nil, 0, fmt.Errorf("read migrations map: %w", err)
	}
	var cur []schedcoreOncpuCur
	if err := m.objs.CurrentTask.Lookup(uint32(0), &cur); err != nil {
		return nil, 0, fmt.Errorf("read current_task map: %w", err)
	}
	now := monotonic()
	for cpu, c := range cur {
		if c.Tgid == 0 || c.Since == 0 || uint64(now) <= c.Since || cpu >= m.ncpu {
			continue
		}
		cc := out[c.Tgid]
		if cc == nil {
			cc = &bpfCounts{core: make([]uint64, m.ncpu)}
			out[c.Tgid] = cc
		}
		cc.core[cpu] += uint64(now) - c.Since
	}
	return out, now, nil
}

// collect reports every process that ran since the previous collect, and
// those it found gone. A
// process first seen now was born (or first scheduled) since, so all its
// counts belong to this interval. Processes that ran nothing and no longer
// exist are removed from the maps, which otherwise only LRU eviction
// would clean.
func (m *bpfMeter) collect() (map[int]*procUsage, []int, time.Duration, error) {
	cur, now, err := m.read()
	if err != nil {
		return nil, nil, 0, err
	}
	var gone []int
	usage := make(map[int]*procUsage)
	for tgid, c := range cur {
		p := m.prev[tgid]
		u := &procUsage{PID: int(tgid), CoreNs: make([]uint64, m.ncpu)}
		var any bool
		for i, v := range c.core {
			if p != nil {
				v = sub(v, p.core[i])
			}
			u.CoreNs[i] = v
			any = any || v != 0
		}
		u.Migrations = c.migrations
		if p != nil {
			u.Migrations = sub(c.migrations, p.migrations)
		}
		if any || u.Migrations != 0 {
			usage[int(tgid)] = u
			continue
		}
		if _, err := os.Stat(filepath.Join(m.procRoot, strconv.FormatUint(uint64(tgid), 10))); errors.Is(err, os.ErrNotExist) {
			_ = m.objs.OncpuNs.Delete(tgid)
			_ = m.objs.Migrations.Delete(tgid)
			delete(cur, tgid)
			gone = append(gone, int(tgid))
		}
	}
	m.prev = cur
	return usage, gone, now, nil
}
