package cpu

import (
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of the times in /proc/PID/stat: USER_HZ, which the
// kernel fixes at 100 for user space on every architecture Go supports
// (include/asm-generic/param.h; sysconf(_SC_CLK_TCK) returns it).
const userHZ = 100

const nsPerTick = uint64(time.Second / userHZ)

// sampler estimates per-core CPU time from periodic reads of every thread's
// stat: the CPU time a thread used since the previous sample is credited to
// the core it last ran on. A thread that moves and comes back between two
// samples is credited to one core: the error shrinks with the interval.
type sampler struct {
	procRoot string
	procs    map[int]*sampledProc
	gen      uint32
	buf      []byte
	dirBuf   []byte
	path     []byte
	all      bool
	// held counts the stat files kept open, at most maxHeld: re-reading an
	// open /proc file with pread at offset 0 regenerates it (seq_read_iter
	// restarts at position 0) and costs a quarter of an
	// open+read+close, whose path walk dominates.
	held, maxHeld int
	// useSchedstat: /proc/PID/task/TID/schedstat shows sum_exec_runtime
	// (CONFIG_SCHED_INFO; "0 0 0" without). It is cheap to generate, so
	// stat, the only file with the last-run core, is read only for threads
	// whose runtime moved; and runtime weighs in nanoseconds rather than
	// USER_HZ ticks.
	useSchedstat bool
}

type sampledProc struct {
	taskFD  int // /proc/PID/task, O_DIRECTORY
	statFD  int // /proc/PID/stat, -1 when not held
	nthr    int // num_threads at the last listing
	dirty   bool
	threads map[int]*sampledThread
	coreNs  []uint64
	gone    bool
}

type sampledThread struct {
	statFD  int    // -1 when not held
	schedFD int    // schedstat, -1 when not held
	runtime uint64 // ns, from schedstat
	ticks   uint64
	cpu     int
	migBase uint64 // se.nr_migrations at the end of the previous period
	gen     uint32
}

func newSampler(procRoot string) *sampler {
	s := &sampler{
		procRoot: procRoot,
		procs:    map[int]*sampledProc{},
		buf:      make([]byte, 4096),
		dirBuf:   make([]byte, 16<<10),
		maxHeld:  heldBudget(),
	}
	s.useSchedstat = schedstatWorks(procRoot)
	return s
}

// schedstatWorks tells whether the sampling thread's own schedstat shows
// runtime: it has run, so zero means the kernel does not report it.
func schedstatWorks(procRoot string) bool {
	b, err := os.ReadFile(filepath.Join(procRoot, "thread-self", "schedstat"))
	if err != nil {
		return false
	}
	v, err := parseSchedstatRuntime(b)
	return err == nil && v > 0
}

// heldBudget keeps a quarter of the open-file limit for held stat files,
// leaving the rest to the other inputs and outputs.
func heldBudget() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 256
	}
	return int(min(rl.Cur/4, 1<<16))
}

// track starts measuring new pids (their current state is the baseline)
// and stops measuring the others. nil means every process, listed now.
func (s *sampler) track(pids []int) {
	s.all = pids == nil
	if s.all {
		pids = s.listPIDs()
	}
	keep := make(map[int]bool, len(pids))
	for _, pid := range pids {
		keep[pid] = true
		if _, ok := s.procs[pid]; ok {
			continue
		}
		fd, err := unix.Open(filepath.Join(s.procRoot, strconv.Itoa(pid), "task"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // exited
		}
		p := &sampledProc{taskFD: fd, statFD: -1, threads: map[int]*sampledThread{}}
		if s.held < s.maxHeld {
			if sfd, err := unix.Open(filepath.Join(s.procRoot, strconv.Itoa(pid), "stat"), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
				p.statFD = sfd
				s.held++
			}
		}
		s.procs[pid] = p
		s.sampleProc(p, true)
		s.readMigrations(p, true)
	}
	for pid, p := range s.procs {
		if !keep[pid] {
			s.drop(pid, p)
		}
	}
}

func (s *sampler) listPIDs() []int {
	ents, err := os.ReadDir(s.procRoot)
	if err != nil {
		return nil
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (s *sampler) sample() {
	for _, p := range s.procs {
		if !p.gone {
			s.sampleProc(p, false)
		}
	}
}

// sampleProc reads the stat of every thread of p. On the baseline read
// nothing is credited; afterwards a thread not seen before started since
// the previous sample, so all of its CPU time is new.
func (s *sampler) sampleProc(p *sampledProc, baseline bool) {
	s.gen++
	each := func(tid int) {
		t := p.threads[tid]
		if t == nil {
			t = &sampledThread{statFD: -1, schedFD: -1}
			p.threads[tid] = t
		}
		if s.useSchedstat {
			s.sampleRuntime(p, tid, t, baseline)
			return
		}
		b, err := s.readStat(p.taskFD, tid, t)
		if err != nil {
			return // the thread exited; dropped below
		}
		st, err := parseTaskStat(b, false)
		if err != nil {
			return
		}
		if t.gen == 0 && baseline {
			t.ticks = st.Ticks
		}
		if d := sub(st.Ticks, t.ticks); d > 0 {
			for st.Processor >= len(p.coreNs) {
				p.coreNs = append(p.coreNs, 0)
			}
			p.coreNs[st.Processor] += d * nsPerTick
		}
		t.ticks, t.cpu, t.gen = st.Ticks, st.Processor, s.gen
	}
	var ok bool
	switch known, err := s.sameThreads(p); {
	case err != nil:
		ok = false
	case known:
		ok = true
		for tid := range p.threads {
			each(tid)
		}
	default:
		ok = s.eachThread(p.taskFD, each)
	}
	if !ok {
		p.gone = true
		return
	}
	for tid, t := range p.threads {
		if t.gen != s.gen {
			s.closeThread(t)
			delete(p.threads, tid)
			p.dirty = true
		}
	}
}

// sameThreads tells whether the known threads are still all of p's, so
// the task directory need not be listed: listing costs as much as reading
// the threads (proc_task_readdir instantiates a dentry per thread). The
// thread count alone would miss one thread exiting and another starting
// between two samples; the exit is seen as a failed read (dirty), which
// lists the directory at the next sample.
func (s *sampler) sameThreads(p *sampledProc) (bool, error) {
	if p.statFD < 0 {
		return false, nil
	}
	n, err := unix.Pread(p.statFD, s.buf, 0)
	if err != nil {
		return false, err // ESRCH: the process exited
	}
	st, err := parseTaskStat(s.buf[:n], false)
	if err != nil {
		return false, nil
	}
	same := !p.dirty && st.NumThreads == p.nthr && len(p.threads) == p.nthr
	if !same {
		p.nthr, p.dirty = st.NumThreads, false
	}
	return same, nil
}

// sampleRuntime credits the runtime a thread used since the previous
// sample to the core it last ran on, reading stat only when it ran.
func (s *sampler) sampleRuntime(p *sampledProc, tid int, t *sampledThread, baseline bool) {
	first := t.gen == 0
	rt, err := s.readRuntime(p.taskFD, tid, t)
	if err != nil {
		return
	}
	if first && baseline {
		t.runtime, t.gen = rt, s.gen
		return
	}
	d := sub(rt, t.runtime)
	if d > 0 {
		b, err := s.readStat(p.taskFD, tid, t)
		if err != nil {
			return
		}
		st, err := parseTaskStat(b, false)
		if err != nil {
			return
		}
		for st.Processor >= len(p.coreNs) {
			p.coreNs = append(p.coreNs, 0)
		}
		p.coreNs[st.Processor] += d
		t.cpu = st.Processor
	}
	t.runtime, t.gen = rt, s.gen
}

// readRuntime reads sum_exec_runtime through the held schedstat fd,
// holding one when the budget allows; a failed read on a held fd means a
// new thread under a reused tid, whose counts all start now.
func (s *sampler) readRuntime(taskFD, tid int, t *sampledThread) (uint64, error) {
	if t.schedFD >= 0 {
		n, err := unix.Pread(t.schedFD, s.buf, 0)
		if err == nil {
			return parseSchedstatRuntime(s.buf[:n])
		}
		_ = unix.Close(t.schedFD)
		t.schedFD = -1
		s.held--
		s.closeStat(t)
		t.runtime, t.ticks, t.migBase = 0, 0, 0
	}
	var b []byte
	if s.held >= s.maxHeld {
		var err error
		if b, err = s.readAt(taskFD, tid, "schedstat"); err != nil {
			return 0, err
		}
	} else {
		fd, err := s.openAt(taskFD, tid, "schedstat")
		if err != nil {
			return 0, err
		}
		t.schedFD = fd
		s.held++
		if b, err = readFD(fd, &s.buf); err != nil {
			return 0, err
		}
	}
	return parseSchedstatRuntime(b)
}

// readStat reads the thread's stat through its held fd, holding one when
// the budget allows. A held fd of an exited thread answers ESRCH, also
// when its tid was reused: the fd pins the old struct pid, not the number.
func (s *sampler) readStat(taskFD, tid int, t *sampledThread) ([]byte, error) {
	if t.statFD >= 0 {
		n, err := unix.Pread(t.statFD, s.buf, 0)
		if err == nil && n < len(s.buf) {
			return s.buf[:n], nil
		}
		s.closeStat(t)
		if err == nil { // longer than the buffer: grow it on the slow path
			return s.readAt(taskFD, tid, "stat")
		}
		// Exited, or a new thread under a reused tid: then all of
		// its time and migrations are new.
		t.ticks, t.migBase = 0, 0
	}
	if s.held >= s.maxHeld {
		return s.readAt(taskFD, tid, "stat")
	}
	fd, err := s.openAt(taskFD, tid, "stat")
	if err != nil {
		return nil, err
	}
	t.statFD = fd
	s.held++
	b, err := readFD(fd, &s.buf)
	if err != nil {
		s.closeStat(t)
	}
	return b, err
}

// closeThread releases a vanished thread's fds.
func (s *sampler) closeThread(t *sampledThread) {
	s.closeStat(t)
	if t.schedFD >= 0 {
		_ = unix.Close(t.schedFD)
		t.schedFD = -1
		s.held--
	}
}

func (s *sampler) closeStat(t *sampledThread) {
	if t.statFD >= 0 {
		_ = unix.Close(t.statFD)
		t.statFD = -1
		s.held--
	}
}

func (s *sampler) drop(pid int, p *sampledProc) {
	for _, t := range p.threads {
		s.closeThread(t)
	}
	if p.statFD >= 0 {
		_ = unix.Close(p.statFD)
		s.held--
	}
	_ = unix.Close(p.taskFD)
	delete(s.procs, pid)
}

// readMigrations reads se.nr_migrations of every known thread. It is read
// once per period, not per sample: the counter is cumulative and the sched
// file is long.
func (s *sampler) readMigrations(p *sampledProc, baseline bool) uint64 {
	var total uint64
	for tid, t := range p.threads {
		b, err := s.readAt(p.taskFD, tid, "sched")
		if err != nil {
			continue
		}
		n, err := parseSchedMigrations(b)
		if err != nil {
			continue
		}
		if !baseline {
			total += sub(n, t.migBase)
		}
		t.migBase = n
	}
	return total
}

// collect reports every tracked process, and those found gone, with the
// time of the read: what was credited since the previous collect belongs
// to the time since then.
func (s *sampler) collect() (map[int]*procUsage, []int, time.Duration, error) {
	now := monotonic()
	usage := make(map[int]*procUsage, len(s.procs))
	var gone []int
	for pid, p := range s.procs {
		if p.gone {
			gone = append(gone, pid)
			continue
		}
		u := &procUsage{PID: pid, CoreNs: p.coreNs, Migrations: s.readMigrations(p, false)}
		p.coreNs = make([]uint64, len(p.coreNs))
		usage[pid] = u
	}
	if s.all {
		// New processes are picked up by the next track.
		for pid, p := range s.procs {
			if p.gone {
				s.drop(pid, p)
			}
		}
	}
	return usage, gone, now, nil
}

func (s *sampler) close() error {
	for pid, p := range s.procs {
		s.drop(pid, p)
	}
	return nil
}

// readAt reads TID/name under a task directory.
func (s *sampler) readAt(dirFD, tid int, name string) ([]byte, error) {
	fd, err := s.openAt(dirFD, tid, name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return readFD(fd, &s.buf)
}

func (s *sampler) openAt(dirFD, tid int, name string) (int, error) {
	s.path = strconv.AppendInt(s.path[:0], int64(tid), 10)
	s.path = append(s.path, '/')
	s.path = append(s.path, name...)
	s.path = append(s.path, 0)
	return openat(dirFD, s.path)
}

// openat takes a NUL-terminated path, so the hot loop does not allocate
// the C string unix.Openat would.
func openat(dirFD int, path []byte) (int, error) {
	for {
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirFD), uintptr(unsafe.Pointer(&path[0])), uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

// eachThread calls fn with every tid listed in the task directory; it
// reports false when the process is gone.
func (s *sampler) eachThread(dirFD int, fn func(tid int)) bool {
	if _, err := unix.Seek(dirFD, 0, 0); err != nil {
		return false
	}
	listed := false
	for {
		n, err := unix.Getdents(dirFD, s.dirBuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false
		}
		if n == 0 {
			return listed
		}
		b := s.dirBuf[:n]
		for len(b) >= 19 {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8,
			// name (include/linux/dirent.h).
			reclen := int(*(*uint16)(unsafe.Pointer(&b[16])))
			if reclen < 19 || reclen > len(b) {
				return listed
			}
			name := b[19:reclen]
			tid := 0
			for _, c := range name {
				if c == 0 {
					break
				}
				if c < '0' || c > '9' {
					tid = -1
					break
				}
				tid = tid*10 + int(c-'0')
			}
			if tid > 0 {
				listed = true
				fn(tid)
			}
			b = b[reclen:]
		}
	}
}
