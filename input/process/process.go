// Package process is the process model the collectors share: the flows
// collector names the owner of each socket with it, the cpu collector the
// process it measured, the qdisc collector the process behind a queue's
// top flows. It is part of the public library (see input/flows).
//
// Stable: the fields below and their meaning. New fields may be added.
package process

// Process is one process as /proc showed it. Values a collector returns
// may be shared between its flows or samples: do not modify them.
type Process struct {
	PID  int `json:"pid"`
	PPID int `json:"ppid,omitempty"`
	// Name is comm: at most 15 bytes (TASK_COMM_LEN).
	Name string `json:"name"`
	// Executable is the target of /proc/PID/exe; "" when it could not be
	// read (kernel threads, other user namespaces, a process that is gone).
	Executable string `json:"executable,omitempty"`
	// Args is /proc/PID/cmdline split at NUL; nil for kernel threads.
	Args []string `json:"args,omitempty"`
	// UID is the real uid, User its name from /etc/passwd ("" unknown).
	UID  uint32 `json:"uid"`
	User string `json:"user,omitempty"`
	// StartTime is field 22 of /proc/PID/stat, in clock ticks since boot:
	// with PID it tells a process apart from a later one that reuses the
	// pid.
	StartTime uint64 `json:"start_time_ticks,omitempty"`
}
