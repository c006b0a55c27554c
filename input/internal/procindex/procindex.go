// Package procindex maps socket inodes to the processes holding them, by
// reading the fd tables under /proc incrementally: a period in which no
// socket appears whose owner is unknown reads no fd at all.
//
// Ownership: a socket may be held by several processes (fork, SCM_RIGHTS).
// Lookup reports the lowest pid among them: /proc lists only thread-group
// leaders, so threads never appear as duplicates, and the lowest pid is
// usually the parent that created the socket (a pre-forking server's
// master rather than one of its workers). PIDs reports every holder.
//
// Limits: a process is re-read when its fd count changes, when one of its
// sockets closes, or at a rate-limited full rescan; an exec(2) that keeps
// comm is noticed only then. Sockets no process holds (kernel sockets,
// fds of tasks we may not read) stay unresolved and cost one full rescan
// when they first appear, not one per period.
package procindex

import (
	"log/slog"
)

// Process is a socket owner. Values returned by Lookup are shared and must
// not be modified.
type Process struct {
	PID  int
	PPID int
	Name string // comm, at most 15 bytes (TASK_COMM_LEN)
	// Executable is the target of /proc/PID/exe, "" when denied (kernel
	// threads, other user namespaces) or the process is gone.
	Executable string
	Args       []string // cmdline; nil for kernel threads
	UID        uint32   // real uid
	User       string   // from EtcRoot/etc/passwd, "" when unknown
	// StartTime is field 22 of /proc/PID/stat in clock ticks since boot:
	// with PID it identifies a process across pid reuse.
	StartTime uint64
}

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
	Processes  int // pids listed under ProcRoot
	FDsRead    int // fd links read (readlinkat calls)
	Resolved   int // live inodes with a known owner
	Unresolved int // live inodes without
	FullScans  int // 1 when this Update rescanned every known process
}
