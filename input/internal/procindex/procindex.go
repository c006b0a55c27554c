// Package procindex maps socket inodes to the processes holding them, by
// reading the fd tables under /proc incrementally: a period in which no
// process changed its fd table reads one fd link per socket that several
// processes share and no other, and one in which a few did reads about as
// many links as they have new fds and fds that are not live sockets.
//
// Ownership follows ss(8) -p, which lists every process whose
// /proc/PID/fd holds the socket: Lookup reports the lowest pid among them,
// PIDs every one. /proc lists only thread-group leaders, so threads never
// appear as duplicates (a thread that unshared its fd table is not seen,
// by ss either), and the lowest pid is usually the parent that created the
// socket (a pre-forking server's master rather than one of its workers).
//
// Exactness: after an Update, a live socket whose holder is alive and
// readable resolves to the same lowest pid that ss -p would show, also
// when a process reused the fd number of a closed file for it at an
// unchanged fd count (Update says how). Limits: an exec(2) that keeps comm
// and the fd count is noticed at the next read of that process; a socket
// moved by dup2(2) over a trusted fd while a copy stays elsewhere is found
// at the rate-limited full scan. Before Linux 6.2 the size of /proc/PID/fd
// is not its fd count: changed fd tables are then found only through
// closed sockets, Hint and the sweep, and a refresh lists every fd number. Sockets no readable process holds
// (kernel sockets, fds in flight in SCM_RIGHTS, fds of processes we may
// not read) stay unresolved, are counted by reason in Stats, and cost one
// search when they first appear, not one per period.
package procindex

import (
	"log/slog"

	"github.com/fleutan/fleutanbeat/input/process"
)

// Process is a socket owner, the library's public process model. Values
// returned by Lookup are shared and must not be modified.
type Process = process.Process

// Options configure an Index. The zero value reads the host's /proc and
// /etc/passwd.
type Options struct {
	ProcRoot string // "" means /proc
	EtcRoot  string // "" means /: users come from EtcRoot/etc/passwd
	Logger   *slog.Logger
	// FullScanInterval is the least number of Updates between two full
	// rescans of every fd table; 0 means DefaultFullScanInterval.
	FullScanInterval int
}

// DefaultFullScanInterval bounds the cost of sockets whose owner is not
// found by the cheap steps: at most one full rescan every so many Updates.
const DefaultFullScanInterval = 6

// Stats describe one Update.
type Stats struct {
	Processes int // pids listed under ProcRoot
	FDsRead   int // fd links read (readlinkat calls)
	Read      int // fd tables read whole (new processes, full scans)
	Refreshed int // fd tables of which only the fds that may have changed were read
	Relisted  int // refreshes that had to list every fd number again
	Sweeps    int // 1 when unknown sockets made every fd table be refreshed
	FullScans int // 1 when this Update read every fd table whole
	Resolved  int // live inodes with a known owner
	// Unresolved live inodes, by reason: Exited (every known holder has
	// exited), Unreadable (some fd table could not be read, the owner may
	// be there) and NoOwner (no readable process holds it: a kernel
	// socket, one in flight, or its owner exited before it was found).
	Unresolved                  int
	Exited, Unreadable, NoOwner int
}
