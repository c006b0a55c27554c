package procindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Index maps socket inodes to processes. Update, Lookup, PIDs and Hint may
// be called from different goroutines.
type Index struct {
	procRoot  string
	passwd    string
	log       *slog.Logger
	fullEvery uint64

	// hints are pids named by Hint since the last Update; a lock of their
	// own so that Hint never waits for an Update.
	hintMu sync.Mutex
	hints  map[int]struct{}
	taken  map[int]struct{}

	mu        sync.RWMutex
	gen       uint64 // Update number
	lastFull  uint64
	countMode countMode
	pids      map[int]*pidState
	// holders maps every socket inode seen in a read fd table to the
	// (pid, fd) pairs that held it then. A pair leaves when a later read
	// of that process no longer finds it there, or the process is gone.
	holders map[uint32]holders
	// shared are the inodes of holders with more than one pair: the only
	// sockets whose owner can change while they stay live and known.
	shared   map[uint32]struct{}
	live     map[uint32]struct{}
	prevLive map[uint32]struct{}
	// orphans are live inodes that a whole read of every fd table could
	// not resolve; they no longer make the index search.
	orphans map[uint32]struct{}
	// exited are live inodes whose every known holder has exited.
	exited  map[uint32]struct{}
	pending []uint32
	owners  []int

	users       map[uint32]string
	passwdMtime time.Time
	passwdGen   uint64

	dirBuf  []byte
	fileBuf []byte
	linkBuf [64]byte
	names   []int32
	stats   Stats
}

// countMode says how the number of open fds of a process is known.
type countMode uint8

const (
	countUnknown countMode = iota
	// countSize: st_size of /proc/PID/fd is the number of open fds
	// (proc_fd_getattr, Linux >= 6.2): one stat per process.
	countSize
	// countEntries: ProcRoot is not procfs (a fixture tree): count the
	// directory's entries, which is what st_size means on procfs.
	countEntries
	// countNone: procfs before Linux 6.2 reports 0; only closed sockets,
	// hints and the searches below find reused fds.
	countNone
)

type holder struct {
	pid, fd int32
}

// holders is a small set of (pid, fd) pairs; most sockets have exactly one
// holder, so the first is stored inline to spare an allocation per socket.
type holders struct {
	first holder
	rest  []holder
}

// min is the holder with the lowest pid: the owner Lookup reports.
func (h holders) min() holder {
	m := h.first
	for _, p := range h.rest {
		if p.pid < m.pid {
			m = p
		}
	}
	return m
}

// fdEntry is one open fd; ino is 0 when it is not a socket.
type fdEntry struct {
	fd  int32
	ino uint32
}

type pidState struct {
	stat    procStat
	listed  uint64 // gen of the last listing that showed the pid
	readGen uint64 // gen of the last read of its fd table, 0 = never
	fullGen uint64 // gen of the last read of every fd in it
	ownGen  uint64 // gen in which it was found holding a live socket
	fdCount int64  // open fds at the last read, -1 when unknown
	dirty   bool   // a live socket it held closed, or Hint named it
	denied  bool   // its fd table could not be read at the last attempt
	fds     []fdEntry
	proc    *Process
}

// New returns an empty Index; the first Update reads every fd table.
func New(opts Options) *Index {
	procRoot := opts.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	etc := opts.EtcRoot
	if etc == "" {
		etc = "/"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	every := opts.FullScanInterval
	if every <= 0 {
		every = DefaultFullScanInterval
	}
	return &Index{
		procRoot:  procRoot,
		passwd:    filepath.Join(etc, "etc", "passwd"),
		log:       log,
		fullEvery: uint64(every),
		hints:     map[int]struct{}{},
		taken:     map[int]struct{}{},
		pids:      map[int]*pidState{},
		holders:   map[uint32]holders{},
		shared:    map[uint32]struct{}{},
		live:      map[uint32]struct{}{},
		prevLive:  map[uint32]struct{}{},
		orphans:   map[uint32]struct{}{},
		exited:    map[uint32]struct{}{},
		dirBuf:    make([]byte, 32<<10),
		fileBuf:   make([]byte, 4096),
	}
}

// Hint says that pid may hold a socket the index does not know yet: the
// next Update rereads the fds of its table that may have changed, even
// when its fd count did not. It never blocks on an Update in progress.
func (x *Index) Hint(pid int) {
	x.hintMu.Lock()
	x.hints[pid] = struct{}{}
	x.hintMu.Unlock()
}

// Lookup returns the owner of a socket inode given to the last Update.
func (x *Index) Lookup(inode uint32) (*Process, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	h, ok := x.holders[inode]
	if !ok {
		return nil, false
	}
	st := x.pids[int(h.min().pid)]
	if st == nil || st.proc == nil {
		return nil, false
	}
	return st.proc, true
}

// Known reports whether the last Update found a holder of the socket
// inode: one map lookup, for callers that only need to know whether a
// socket is new to the index.
func (x *Index) Known(inode uint32) bool {
	x.mu.RLock()
	_, ok := x.holders[inode]
	x.mu.RUnlock()
	return ok
}

// PIDs returns, sorted, every process that held at least one of the live
// sockets of the last Update.
func (x *Index) PIDs() []int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]int(nil), x.owners...)
}

// Update makes every live socket inode whose holder is alive and readable
// resolvable, reading as few fd links as it can:
//
//  1. the fd table of each new process, whole;
//  2. of each known process that closed a live socket, was named by Hint,
//     or whose fd count changed, only the fds that may have changed
//     (refresh, below);
//  3. for each socket with several holders, the fd of the lowest-pid one,
//     which must still hold it (else that process is refreshed);
//  4. if live inodes remain unknown, a refresh of every other process:
//     this finds a socket opened on the fd number of a closed file at an
//     unchanged fd count;
//  5. if some still remain, at most once per FullScanInterval Updates,
//     every fd of every process; what that does not find is an orphan
//     and searched no more.
//
// A refresh rereads the fds that are not sockets, those whose socket is no
// longer live or has other holders, and new fd numbers above the highest
// known one, and trusts the rest: a live socket that only this process
// held at that fd is still there, since closing the fd would have
// released it. The trust is checked: when the fds found do not add up to
// the process's fd count, every fd number is listed again (getdents).
//
// Processes that vanish or deny access are skipped; only an unreadable
// ProcRoot is an error.
func (x *Index) Update(live []uint32) (Stats, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	x.stats = Stats{}

	procfd, err := unix.Open(x.procRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("procindex: open %s: %w", x.procRoot, err)
	}
	defer unix.Close(procfd)
	if x.countMode == countUnknown {
		x.countMode = detectCountMode(procfd)
	}
	if err := x.list(procfd); err != nil {
		return Stats{}, err
	}
	x.takeHints()

	x.prevLive, x.live = x.live, x.prevLive
	clear(x.live)
	for _, ino := range live {
		x.live[ino] = struct{}{}
	}
	for ino := range x.prevLive {
		if _, ok := x.live[ino]; ok {
			continue
		}
		// A closed socket: its holders probably opened another on the
		// same fd number, perhaps keeping their fd count.
		if h, ok := x.holders[ino]; ok {
			x.markDirty(h.first.pid)
			for _, p := range h.rest {
				x.markDirty(p.pid)
			}
		}
	}
	for _, set := range []map[uint32]struct{}{x.orphans, x.exited} {
		for ino := range set {
			if _, ok := x.live[ino]; !ok {
				delete(set, ino)
			}
		}
	}

	for pid, st := range x.pids {
		if st.readGen == 0 {
			x.read(procfd, pid, st, false)
		}
	}
	for pid, st := range x.pids {
		if st.readGen != x.gen && (st.dirty || x.countChanged(procfd, pid, st)) {
			x.read(procfd, pid, st, true)
		}
	}
	x.verifyShared(procfd)

	x.pending = x.pending[:0]
	for ino := range x.live {
		if _, ok := x.holders[ino]; !ok {
			if _, orphan := x.orphans[ino]; !orphan {
				x.pending = append(x.pending, ino)
			}
		}
	}
	if len(x.pending) > 0 {
		for pid, st := range x.pids {
			if st.readGen != x.gen && !st.denied {
				x.stats.Sweeps = 1
				x.read(procfd, pid, st, true)
			}
		}
	}
	if x.filterPending() > 0 && x.gen-x.lastFull >= x.fullEvery {
		for pid, st := range x.pids {
			if st.fullGen != x.gen {
				x.stats.FullScans = 1
				x.lastFull = x.gen
				x.read(procfd, pid, st, false)
			}
		}
	}
	if x.filterPending() > 0 && (x.stats.FullScans > 0 || x.allReadWhole()) {
		for _, ino := range x.pending {
			x.orphans[ino] = struct{}{}
		}
		x.log.Debug("procindex: sockets without a readable owner", "count", len(x.pending))
	}

	x.resolve(procfd)
	return x.stats, nil
}

func (x *Index) takeHints() {
	x.hintMu.Lock()
	x.hints, x.taken = x.taken, x.hints
	x.hintMu.Unlock()
	for pid := range x.taken {
		x.markDirty(int32(pid))
	}
	clear(x.taken)
}

func (x *Index) markDirty(pid int32) {
	if st := x.pids[int(pid)]; st != nil {
		st.dirty = true
	}
}

// filterPending drops resolved inodes from x.pending and returns how many
// remain.
func (x *Index) filterPending() int {
	p := x.pending[:0]
	for _, ino := range x.pending {
		if _, ok := x.holders[ino]; !ok {
			p = append(p, ino)
		}
	}
	x.pending = p
	return len(p)
}

func (x *Index) allReadWhole() bool {
	for _, st := range x.pids {
		if st.fullGen != x.gen {
			return false
		}
	}
	return true
}

// list reads the pids under ProcRoot with getdents into a reused buffer,
// adds new ones and forgets those that are gone.
func (x *Index) list(procfd int) error {
	err := readDirents(procfd, x.dirBuf, func(name []byte) {
		pid, ok := atoi(name)
		if !ok {
			return
		}
		st := x.pids[pid]
		if st == nil {
			st = &pidState{fdCount: -1}
			x.pids[pid] = st
		}
		st.listed = x.gen
		x.stats.Processes++
	})
	if err != nil {
		return fmt.Errorf("procindex: list %s: %w", x.procRoot, err)
	}
	for pid, st := range x.pids {
		if st.listed != x.gen {
			x.forget(pid, st)
		}
	}
	return nil
}

// forget drops a process that is gone. A live socket it was the last
// known holder of is counted as exited until it closes or is found again.
func (x *Index) forget(pid int, st *pidState) {
	for _, e := range st.fds {
		if e.ino == 0 {
			continue
		}
		x.unhold(e.ino, holder{int32(pid), e.fd})
		if _, held := x.holders[e.ino]; !held {
			if _, ok := x.live[e.ino]; ok {
				x.exited[e.ino] = struct{}{}
			}
		}
	}
	delete(x.pids, pid)
}

func (x *Index) hold(ino uint32, p holder) {
	h, ok := x.holders[ino]
	if !ok {
		x.holders[ino] = holders{first: p}
		return
	}
	if h.first == p || slices.Contains(h.rest, p) {
		return
	}
	h.rest = append(h.rest, p)
	x.holders[ino] = h
	x.shared[ino] = struct{}{}
}

func (x *Index) unhold(ino uint32, p holder) {
	h, ok := x.holders[ino]
	if !ok {
		return
	}
	switch i := slices.Index(h.rest, p); {
	case h.first == p && len(h.rest) == 0:
		delete(x.holders, ino)
		return
	case h.first == p:
		h.first, h.rest = h.rest[len(h.rest)-1], h.rest[:len(h.rest)-1]
	case i >= 0:
		h.rest[i] = h.rest[len(h.rest)-1]
		h.rest = h.rest[:len(h.rest)-1]
	default:
		return
	}
	if len(h.rest) == 0 {
		delete(x.shared, ino)
	}
	x.holders[ino] = h
}

// trusted reports whether a refresh may skip rereading fd entry e of pid:
// a live socket that only this fd held at the last read.
func (x *Index) trusted(pid int32, e fdEntry) bool {
	if e.ino == 0 {
		return false
	}
	if _, ok := x.live[e.ino]; !ok {
		return false
	}
	h, ok := x.holders[e.ino]
	return ok && len(h.rest) == 0 && h.first == holder{pid, e.fd}
}

// countChanged reports whether the number of open fds of a read process
// differs from that of its last read.
func (x *Index) countChanged(procfd, pid int, st *pidState) bool {
	if x.countMode == countNone {
		return false
	}
	return x.fdCount(procfd, pid) != st.fdCount
}

// fdCount is the number of open fds of pid, -1 when it cannot be read.
// Stat needs no permission on the directory itself, so it works even where
// reading the fds is denied.
func (x *Index) fdCount(procfd, pid int) int64 {
	var b [24]byte
	name := string(pidPath(b[:0], pid, "/fd"))
	if x.countMode == countEntries {
		dfd, err := unix.Openat(procfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1
		}
		defer unix.Close(dfd)
		return x.countEntries(dfd)
	}
	var s unix.Stat_t
	if unix.Fstatat(procfd, name, &s, 0) != nil {
		return -1
	}
	return s.Size
}

func (x *Index) countEntries(dfd int) int64 {
	var n int64
	if _, err := unix.Seek(dfd, 0, 0); err != nil {
		return -1
	}
	if readDirents(dfd, x.dirBuf, func(name []byte) {
		if name[0] != '.' {
			n++
		}
	}) != nil {
		return -1
	}
	return n
}

// dirCount is fdCount on an open fd directory.
func (x *Index) dirCount(dfd int) int64 {
	switch x.countMode {
	case countEntries:
		return x.countEntries(dfd)
	case countSize:
		var s unix.Stat_t
		if unix.Fstat(dfd, &s) != nil {
			return -1
		}
		return s.Size
	}
	return -1
}

// read rereads a process's stat and fd table: every fd, or with refresh
// only those that may have changed (see Update). A process that is gone
// is forgotten; one whose fd table is unreadable keeps no sockets.
func (x *Index) read(procfd, pid int, st *pidState, refresh bool) {
	ps, err := x.readStat(procfd, pid)
	if err != nil {
		x.forget(pid, st)
		return
	}
	ps.PID = pid
	if ps.StartTime != st.stat.StartTime {
		// A reused pid: nothing known about the old process holds.
		refresh = false
		st.proc = nil
	} else if ps.Comm != st.stat.Comm {
		st.proc = nil // an exec: the details are another program's
	}
	st.stat = ps
	st.readGen, st.dirty = x.gen, false

	var pb [24]byte
	dfd, err := unix.Openat(procfd, string(pidPath(pb[:0], pid, "/fd")), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			x.forget(pid, st)
			return
		}
		// Denied: retried when its fd count changes or at a full scan.
		x.dropFDs(pid, st)
		st.denied, st.fullGen = true, x.gen
		st.fdCount = x.fdCount(procfd, pid)
		return
	}
	defer unix.Close(dfd)
	st.denied = false
	count := x.dirCount(dfd)
	if refresh && count >= 0 {
		x.stats.Refreshed++
		consistent, complete := x.probe(dfd, int32(pid), st, count)
		if consistent && complete {
			st.fdCount = count
			return
		}
		// Not trusted any more: an fd may hide behind a trusted one.
		refresh = consistent
	}
	if refresh {
		x.stats.Relisted++
	} else {
		x.stats.Read++
		st.fullGen = x.gen
	}
	x.relist(dfd, int32(pid), st, refresh)
	st.fdCount = count
}

// detectCountMode tells procfs from a fixture tree, and on procfs whether
// the size of PID/fd counts fds: this process holds procfd open, so its
// own count is at least one where the kernel counts.
func detectCountMode(procfd int) countMode {
	var fs unix.Statfs_t
	if unix.Fstatfs(procfd, &fs) != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		return countEntries
	}
	var st unix.Stat_t
	if unix.Fstatat(procfd, "self/fd", &st, 0) != nil || st.Size == 0 {
		return countNone
	}
	return countSize
}

func (x *Index) dropFDs(pid int, st *pidState) {
	for _, e := range st.fds {
		if e.ino != 0 {
			x.unhold(e.ino, holder{int32(pid), e.fd})
		}
	}
	st.fds = st.fds[:0]
}

// probe rereads the untrusted fds of st.fds and the fd numbers just above
// them, in place. complete is false when the fds found do not add up to
// count (an fd number elsewhere is new); consistent is false when a live
// socket turned up on another fd than the one it was known on, so that
// dup2(2) may have replaced a trusted fd.
func (x *Index) probe(dfd int, pid int32, st *pidState, count int64) (consistent, complete bool) {
	var known int64
	consistent = true
	next := int32(0)
	out := st.fds[:0]
	for _, e := range st.fds {
		next = e.fd + 1
		if x.trusted(pid, e) {
			out = append(out, e)
			known++
			continue
		}
		ino, ok := x.readFD(dfd, e.fd)
		if e.ino != 0 && ino != e.ino {
			x.unhold(e.ino, holder{pid, e.fd})
		}
		if !ok {
			continue // closed
		}
		if ino != 0 {
			if x.heldElsewhere(ino, holder{pid, e.fd}) {
				consistent = false
			}
			x.hold(ino, holder{pid, e.fd})
		}
		out = append(out, fdEntry{e.fd, ino})
		known++
	}
	// New fds: the lowest free number is taken first, so once the closed
	// numbers are reused they follow the highest one.
	for misses := 0; known < count && misses < 8; next++ {
		ino, ok := x.readFD(dfd, next)
		if !ok {
			misses++
			continue
		}
		if ino != 0 {
			if x.heldElsewhere(ino, holder{pid, next}) {
				consistent = false
			}
			x.hold(ino, holder{pid, next})
		}
		out = append(out, fdEntry{next, ino})
		known++
	}
	st.fds = out
	return consistent, known == count
}

// heldElsewhere reports whether a live socket found at p is known on
// another fd of the same process.
func (x *Index) heldElsewhere(ino uint32, p holder) bool {
	if _, ok := x.live[ino]; !ok {
		return false
	}
	h, ok := x.holders[ino]
	if !ok {
		return false
	}
	if h.first.pid == p.pid && h.first.fd != p.fd {
		return true
	}
	for _, q := range h.rest {
		if q.pid == p.pid && q.fd != p.fd {
			return true
		}
	}
	return false
}

// relist lists every fd number (getdents) and reads each one, or with
// trust only the untrusted ones and the new numbers.
func (x *Index) relist(dfd int, pid int32, st *pidState, trust bool) {
	x.names = x.names[:0]
	if _, err := unix.Seek(dfd, 0, 0); err == nil {
		_ = readDirents(dfd, x.dirBuf, func(name []byte) {
			if fd, ok := atoi(name); ok || (len(name) == 1 && name[0] == '0') {
				x.names = append(x.names, int32(fd))
			}
		})
	}
	// procfs lists fds in order already; a fixture tree may not.
	slices.Sort(x.names)
	old := st.fds
	fds := make([]fdEntry, 0, len(x.names))
	i := 0
	for _, fd := range x.names {
		for i < len(old) && old[i].fd < fd {
			if old[i].ino != 0 {
				x.unhold(old[i].ino, holder{pid, old[i].fd})
			}
			i++
		}
		var prev fdEntry
		if i < len(old) && old[i].fd == fd {
			prev = old[i]
			i++
			if trust && x.trusted(pid, prev) {
				fds = append(fds, prev)
				continue
			}
		}
		ino, ok := x.readFD(dfd, fd)
		if prev.ino != 0 && ino != prev.ino {
			x.unhold(prev.ino, holder{pid, fd})
		}
		if !ok {
			continue // closed since getdents
		}
		if ino != 0 {
			x.hold(ino, holder{pid, fd})
		}
		fds = append(fds, fdEntry{fd, ino})
	}
	for ; i < len(old); i++ {
		if old[i].ino != 0 {
			x.unhold(old[i].ino, holder{pid, old[i].fd})
		}
	}
	st.fds = fds
}

// readFD reads the link of one fd: the socket inode (0 for anything else)
// and false when the fd is not open.
func (x *Index) readFD(dfd int, fd int32) (uint32, bool) {
	x.stats.FDsRead++
	var nb [12]byte
	name := strconv.AppendInt(nb[:0], int64(fd), 10)
	name = append(name, 0)
	n, err := readlinkat(dfd, &name[0], x.linkBuf[:])
	if err != nil {
		return 0, false
	}
	ino, _ := parseSocketLink(x.linkBuf[:n])
	return ino, true
}

// verifyShared checks, for each live socket with several holders, that
// the lowest-pid one still holds it at the known fd: a process that
// closed a shared socket leaves no other trace (the socket stays live,
// and another fd may keep its fd count).
func (x *Index) verifyShared(procfd int) {
	for ino := range x.shared {
		if _, ok := x.live[ino]; !ok {
			continue
		}
		for range 8 {
			h, ok := x.holders[ino]
			if !ok || len(h.rest) == 0 {
				break
			}
			m := h.min()
			st := x.pids[int(m.pid)]
			if st == nil || st.readGen == x.gen {
				break
			}
			if got, ok := x.readPidFD(procfd, m); ok && got == ino {
				break
			}
			x.read(procfd, int(m.pid), st, true)
		}
	}
}

func (x *Index) readPidFD(procfd int, p holder) (uint32, bool) {
	var b [40]byte
	name := pidPath(b[:0], int(p.pid), "/fd/")
	name = strconv.AppendInt(name, int64(p.fd), 10)
	name = append(name, 0)
	x.stats.FDsRead++
	n, err := readlinkat(procfd, &name[0], x.linkBuf[:])
	if err != nil {
		return 0, false
	}
	return parseSocketLink(x.linkBuf[:n])
}

// resolve counts the live inodes, records every holder for PIDs, loads
// the details of the chosen owners and says why the others have none.
func (x *Index) resolve(procfd int) {
	denied := false
	for _, st := range x.pids {
		denied = denied || st.denied
	}
	x.owners = x.owners[:0]
	for ino := range x.live {
		h, ok := x.holders[ino]
		if !ok {
			x.stats.Unresolved++
			switch _, gone := x.exited[ino]; {
			case gone:
				x.stats.Exited++
			case denied:
				x.stats.Unreadable++
			default:
				x.stats.NoOwner++
			}
			continue
		}
		x.stats.Resolved++
		x.markOwner(h.first.pid)
		for _, p := range h.rest {
			x.markOwner(p.pid)
		}
		if st := x.pids[int(h.min().pid)]; st != nil && st.proc == nil {
			st.proc = x.details(procfd, st.stat)
		}
	}
	slices.Sort(x.owners)
}

func (x *Index) markOwner(pid int32) {
	if st := x.pids[int(pid)]; st != nil && st.ownGen != x.gen {
		st.ownGen = x.gen
		x.owners = append(x.owners, int(pid))
	}
}

// details reads what stat did not give. A process gone meanwhile keeps
// what was read.
func (x *Index) details(procfd int, ps procStat) *Process {
	p := &Process{PID: ps.PID, PPID: ps.PPID, Name: ps.Comm, StartTime: ps.StartTime}
	var pb [32]byte
	if b, err := x.readFile(procfd, pidPath(pb[:0], ps.PID, "/status")); err == nil {
		if uid, err := ParseStatusUID(b); err == nil {
			p.UID = uid
			p.User = x.userName(uid)
		}
	}
	if b, err := x.readFile(procfd, pidPath(pb[:0], ps.PID, "/cmdline")); err == nil {
		p.Args = parseCmdline(b)
	}
	if n, err := unix.Readlinkat(procfd, string(pidPath(pb[:0], ps.PID, "/exe")), x.fileBuf); err == nil {
		p.Executable = string(x.fileBuf[:n])
	}
	return p
}

func (x *Index) readStat(procfd, pid int) (procStat, error) {
	var pb [32]byte
	b, err := x.readFile(procfd, pidPath(pb[:0], pid, "/stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// readFile reads a small /proc file into the reused buffer, growing it for
// long command lines. The result is valid until the next call.
func (x *Index) readFile(procfd int, name []byte) ([]byte, error) {
	fd, err := unix.Openat(procfd, string(name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(x.fileBuf) {
			if len(x.fileBuf) >= 1<<20 {
				return x.fileBuf[:n], nil // ARG_MAX-sized cmdline: enough
			}
			x.fileBuf = append(x.fileBuf, make([]byte, len(x.fileBuf))...)
		}
		m, err := unix.Read(fd, x.fileBuf[n:])
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil, err
		}
		if m == 0 {
			return x.fileBuf[:n], nil
		}
		n += m
	}
}

// userName maps a uid with EtcRoot/etc/passwd, reparsed when its mtime
// changes and checked at most once per Update.
func (x *Index) userName(uid uint32) string {
	if x.passwdGen != x.gen {
		x.passwdGen = x.gen
		fi, err := os.Stat(x.passwd)
		switch {
		case err != nil:
			x.users = nil
		case x.users == nil || !fi.ModTime().Equal(x.passwdMtime):
			if f, err := os.Open(x.passwd); err == nil {
				users, err := parsePasswd(f)
				_ = f.Close()
				if err != nil {
					x.log.Warn("procindex: reading users", "path", x.passwd, "error", err)
				}
				x.users, x.passwdMtime = users, fi.ModTime()
			}
		}
	}
	return x.users[uid]
}

// pidPath appends "PID"+suffix to b.
func pidPath(b []byte, pid int, suffix string) []byte {
	b = strconv.AppendInt(b, int64(pid), 10)
	return append(b, suffix...)
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

// readDirents walks struct linux_dirent64 records (getdents64(2)):
// d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated.
func readDirents(fd int, buf []byte, fn func(name []byte)) error {
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		if n <= 0 {
			return nil
		}
		for off := 0; off+19 < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen < 20 || off+reclen > n {
				return fmt.Errorf("getdents: bad record length %d", reclen)
			}
			rec := buf[off+19 : off+reclen]
			if end := bytes.IndexByte(rec, 0); end > 0 {
				fn(rec[:end])
			}
			off += reclen
		}
	}
}

// readlinkat is readlinkat(2) on a NUL-terminated name, sparing the string
// conversion unix.Readlinkat needs: it runs once per fd.
func readlinkat(dirfd int, cname *byte, buf []byte) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(cname)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
