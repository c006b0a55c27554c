package procindex

import "golang.org/x/sys/unix"

// Process returns the details of a process known by its pid rather than by
// a socket inode (the tgid the eBPF tracker saw); false when it is gone or
// cannot be read. A pid that the index holds is answered from memory when
// its comm still matches.
func (x *Index) Process(pid int, comm string) (*Process, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if st := x.pids[pid]; st != nil && st.proc != nil && st.proc.Name == comm {
		return st.proc, true
	}
	procfd, err := unix.Open(x.procRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(procfd)
	ps, err := x.readStat(procfd, pid)
	if err != nil {
		return nil, false
	}
	ps.PID = pid
	if comm != "" && ps.Comm != comm {
		// The pid was reused, or the process exec'd since: the details
		// would be another program's.
		return nil, false
	}
	return x.details(procfd, ps), true
}
