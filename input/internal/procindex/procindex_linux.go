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

// Index maps socket inodes to processes. Update, Lookup and PIDs may be
// called from different goroutines.
type Index struct {
	procRoot  string
	passwd    string
	log       *slog.Logger
	fullEvery uint64

	mu       sync.RWMutex
	gen      uint64 // Update number
	lastFull uint64
	pids     map[int]*pidState
	// holders maps every socket inode seen in a scanned fd table to the
	// pids that held it then. Inodes leave it when they leave the live
	// set or their holders are rescanned or gone.
	holders  map[uint32]holders
	live     map[uint32]struct{}
	prevLive map[uint32]struct{}
	// orphans are live inodes that a full rescan could not resolve; they
	// no longer trigger rescans.
	orphans map[uint32]struct{}
	pending []uint32
	owners  []int

	users       map[uint32]string
	passwdMtime time.Time
	passwdGen   uint64

	dirBuf  []byte
	fileBuf []byte
	linkBuf [64]byte
	stats   Stats
}

// holders is a small set of pids; most sockets have exactly one holder, so
// the first is stored inline to spare an allocation per socket.
type holders struct {
	first int
	rest  []int
}

func (h holders) min() int {
	m := h.first
	for _, p := range h.rest {
		m = min(m, p)
	}
	return m
}

type pidState struct {
	stat    procStat
	listed  uint64 // gen of the last listing that showed the pid
	scanGen uint64 // gen of the last fd scan, 0 = never
	ownGen  uint64 // gen in which it was found holding a live socket
	fdSize  int64  // open fds at the last scan: st_size of PID/fd (Linux >= 6.2), else its entries
	dirty   bool   // one of its sockets closed since the last scan
	inodes  []uint32
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
		pids:      map[int]*pidState{},
		holders:   map[uint32]holders{},
		live:      map[uint32]struct{}{},
		prevLive:  map[uint32]struct{}{},
		orphans:   map[uint32]struct{}{},
		dirBuf:    make([]byte, 32<<10),
		fileBuf:   make([]byte, 4096),
	}
}

// Lookup returns the owner of a socket inode given to the last Update.
func (x *Index) Lookup(inode uint32) (*Process, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	h, ok := x.holders[inode]
	if !ok {
		return nil, false
	}
	st := x.pids[h.min()]
	if st == nil || st.proc == nil {
		return nil, false
	}
	return st.proc, true
}

// PIDs returns, sorted, every process that held at least one of the live
// sockets of the last Update.
func (x *Index) PIDs() []int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]int(nil), x.owners...)
}

// Update makes as many of the live socket inodes resolvable as it can,
// cheapest step first: nothing when all are known; else the fd tables of
// new processes; else of processes whose fd count changed or that closed a
// socket; else, at most once per FullScanInterval Updates, all of them.
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
	if err := x.list(procfd); err != nil {
		return Stats{}, err
	}

	x.prevLive, x.live = x.live, x.prevLive
	clear(x.live)
	for _, ino := range live {
		x.live[ino] = struct{}{}
	}
	for ino := range x.prevLive {
		if _, ok := x.live[ino]; ok {
			continue
		}
		// A closed socket: its holders probably opened another in its
		// place, perhaps keeping their fd count.
		if h, ok := x.holders[ino]; ok {
			x.markDirty(h.first)
			for _, p := range h.rest {
				x.markDirty(p)
			}
			delete(x.holders, ino)
		}
	}
	for ino := range x.orphans {
		if _, ok := x.live[ino]; !ok {
			delete(x.orphans, ino)
		}
	}

	x.pending = x.pending[:0]
	for ino := range x.live {
		if _, ok := x.holders[ino]; !ok {
			if _, orphan := x.orphans[ino]; !orphan {
				x.pending = append(x.pending, ino)
			}
		}
	}
	if len(x.pending) > 0 {
		x.scanWhere(procfd, func(_ int, st *pidState) bool { return st.scanGen == 0 })
	}
	if x.filterPending() > 0 {
		x.scanWhere(procfd, func(pid int, st *pidState) bool {
			return st.scanGen != x.gen && x.fdTableChanged(procfd, pid, st)
		})
	}
	if x.filterPending() > 0 && x.gen-x.lastFull >= x.fullEvery {
		if n := x.scanWhere(procfd, func(_ int, st *pidState) bool { return st.scanGen != x.gen }); n > 0 {
			x.stats.FullScans = 1
			x.lastFull = x.gen
		}
	}
	if x.filterPending() > 0 && (x.stats.FullScans > 0 || x.allScanned()) {
		for _, ino := range x.pending {
			x.orphans[ino] = struct{}{}
		}
		x.log.Debug("procindex: sockets without a readable owner", "count", len(x.pending))
	}

	x.resolve(procfd)
	return x.stats, nil
}

func (x *Index) markDirty(pid int) {
	if st := x.pids[pid]; st != nil {
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

func (x *Index) allScanned() bool {
	for _, st := range x.pids {
		if st.scanGen != x.gen {
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
			st = &pidState{}
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

func (x *Index) forget(pid int, st *pidState) {
	x.dropHeld(pid, st)
	delete(x.pids, pid)
}

// dropHeld removes pid from the holders of the sockets of its last scan.
func (x *Index) dropHeld(pid int, st *pidState) {
	for _, ino := range st.inodes {
		h, ok := x.holders[ino]
		if !ok {
			continue
		}
		switch {
		case h.first == pid && len(h.rest) == 0:
			delete(x.holders, ino)
			continue
		case h.first == pid:
			h.first, h.rest = h.rest[len(h.rest)-1], h.rest[:len(h.rest)-1]
		default:
			for i, p := range h.rest {
				if p == pid {
					h.rest[i] = h.rest[len(h.rest)-1]
					h.rest = h.rest[:len(h.rest)-1]
					break
				}
			}
		}
		x.holders[ino] = h
	}
	st.inodes = st.inodes[:0]
}

func (x *Index) addHeld(pid int, ino uint32) {
	h, ok := x.holders[ino]
	if !ok {
		x.holders[ino] = holders{first: pid}
		return
	}
	if h.first == pid {
		return
	}
	for _, p := range h.rest {
		if p == pid {
			return
		}
	}
	h.rest = append(h.rest, pid)
	x.holders[ino] = h
}

// scanWhere rescans the fd tables of the processes selected by want and
// returns how many it scanned. It does not stop once nothing is pending:
// every selected holder of a socket must be known for the lowest-pid rule
// and PIDs to be deterministic.
func (x *Index) scanWhere(procfd int, want func(int, *pidState) bool) int {
	n := 0
	for pid, st := range x.pids {
		if want(pid, st) {
			x.scan(procfd, pid, st)
			n++
		}
	}
	return n
}

// fdTableChanged reports whether a scanned process may hold sockets its
// last scan did not see: one of them closed, or its fd count changed.
// Before Linux 6.2 the size of /proc/PID/fd is 0 and fdCount counts the
// entries instead.
func (x *Index) fdTableChanged(procfd, pid int, st *pidState) bool {
	if st.dirty {
		return true
	}
	return x.fdCount(procfd, pid) != st.fdSize
}

// fdCount is the number of open fds of the process, -1 when it cannot be
// read: the size of /proc/PID/fd (Linux >= 6.2; stat needs no permission
// on the directory itself, so it works even where reading the fds is
// denied). Older kernels report size 0 (Debian's 5.10 and 6.1 in the
// kernel matrix), so there the entries are counted, without reading the
// links.
func (x *Index) fdCount(procfd, pid int) int64 {
	var s unix.Stat_t
	var b [24]byte
	path := string(pidPath(b[:0], pid, "/fd"))
	if unix.Fstatat(procfd, path, &s, 0) != nil {
		return -1
	}
	if s.Size > 0 {
		return s.Size
	}
	dfd, err := unix.Openat(procfd, path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return s.Size // denied: a size that does not change, as before
	}
	defer unix.Close(dfd)
	return countEntries(dfd, x.dirBuf)
}

// countEntries counts the entries of a directory other than . and ..; -1
// when it cannot be read.
func countEntries(dfd int, buf []byte) int64 {
	var n int64
	err := readDirentsRaw(dfd, buf, func(name []byte, _ *byte) {
		if name[0] != '.' {
			n++
		}
	})
	if err != nil {
		return -1
	}
	return n
}

// scan rereads a process's stat and fd table. A process that is gone is
// forgotten; one whose fd table is unreadable keeps no sockets.
func (x *Index) scan(procfd, pid int, st *pidState) {
	var pb [24]byte
	ps, err := x.readStat(procfd, pid)
	if err != nil {
		x.forget(pid, st)
		return
	}
	ps.PID = pid
	if ps.StartTime != st.stat.StartTime || ps.Comm != st.stat.Comm {
		// A reused pid or an exec: the details are another process's.
		st.proc = nil
	}
	st.stat = ps
	x.dropHeld(pid, st)
	st.scanGen, st.dirty, st.fdSize = x.gen, false, -1

	dfd, err := unix.Openat(procfd, string(pidPath(pb[:0], pid, "/fd")), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			x.forget(pid, st)
			return
		}
		// Denied: retry only when its fd count changes.
		st.fdSize = x.fdCount(procfd, pid)
		return
	}
	defer unix.Close(dfd)
	var s unix.Stat_t
	if unix.Fstat(dfd, &s) == nil {
		st.fdSize = s.Size
	}
	var entries int64
	_ = readDirentsRaw(dfd, x.dirBuf, func(name []byte, cname *byte) {
		if name[0] == '.' {
			return
		}
		entries++
		x.stats.FDsRead++
		n, err := readlinkat(dfd, cname, x.linkBuf[:])
		if err != nil {
			return // the fd was closed since getdents
		}
		if ino, ok := parseSocketLink(x.linkBuf[:n]); ok {
			st.inodes = append(st.inodes, ino)
			x.addHeld(pid, ino)
		}
	})
	if st.fdSize == 0 {
		st.fdSize = entries // what fdCount counts on kernels before 6.2
	}
}

// resolve counts the live inodes, records every holder for PIDs and loads
// the details of the chosen owners.
func (x *Index) resolve(procfd int) {
	x.owners = x.owners[:0]
	for ino := range x.live {
		h, ok := x.holders[ino]
		if !ok {
			x.stats.Unresolved++
			continue
		}
		x.stats.Resolved++
		x.markOwner(h.first)
		for _, p := range h.rest {
			x.markOwner(p)
		}
		if st := x.pids[h.min()]; st != nil && st.proc == nil {
			st.proc = x.details(procfd, st.stat)
		}
	}
	slices.Sort(x.owners)
}

func (x *Index) markOwner(pid int) {
	if st := x.pids[pid]; st != nil && st.ownGen != x.gen {
		st.ownGen = x.gen
		x.owners = append(x.owners, pid)
	}
}

// details reads what stat did not give. A process gone meanwhile keeps
// what was read.
func (x *Index) details(procfd int, ps procStat) *Process {
	p := &Process{PID: ps.PID, PPID: ps.PPID, Name: ps.Comm, StartTime: ps.StartTime}
	var pb [32]byte
	if b, err := x.readFile(procfd, pidPath(pb[:0], ps.PID, "/status")); err == nil {
		if uid, err := parseStatusUID(b); err == nil {
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

func readDirents(fd int, buf []byte, fn func(name []byte)) error {
	return readDirentsRaw(fd, buf, func(name []byte, _ *byte) { fn(name) })
}

// readDirentsRaw walks struct linux_dirent64 records (getdents64(2)):
// d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated.
// It passes each name also as a C string pointer into buf so that
// readlinkat needs no copy.
func readDirentsRaw(fd int, buf []byte, fn func(name []byte, cname *byte)) error {
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
				fn(rec[:end], &rec[0])
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
