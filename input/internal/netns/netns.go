// Package netns finds the network namespaces of the host: those named by
// ip-netns(8) bind mounts under /run/netns and those only held by a process
// (/proc/PID/ns/net), so collectors can enter each one with setns(2).
package netns

// DefaultRunDir is where ip-netns(8) bind-mounts named namespaces.
const DefaultRunDir = "/run/netns"

// Namespace is one network namespace.
type Namespace struct {
	// Inode is st_ino of the nsfs file: the namespace's identity, the same
	// number the kernel shows in "net:[N]" links.
	Inode uint64
	// Path is a file setns(2) accepts: DefaultRunDir/NAME for a named
	// namespace, else ProcRoot/PID/ns/net of a process inside it (or
	// ProcRoot/self/ns/net for the caller's own). A /proc path is only
	// valid while that process lives.
	Path string
	// Name is the ip-netns name when the namespace is bind-mounted under
	// the run directory, else "".
	Name string
}
