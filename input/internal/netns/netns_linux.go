package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"

	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Self returns the caller's network namespace, read from
// procRoot/self/ns/net ("" means /proc). It names the thread group leader's
// namespace: a goroutine that has setns(2) its locked thread elsewhere is
// not reflected.
func Self(procRoot string) (Namespace, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	p := filepath.Join(procRoot, "self", "ns", "net")
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return Namespace{}, fmt.Errorf("netns: stat %s: %w", p, err)
	}
	return Namespace{Inode: st.Ino, Path: p}, nil
}

// List returns every distinct network namespace bind-mounted under runDir
// ("" means DefaultRunDir) or held by a process under procRoot ("" means
// /proc), deduplicated by inode: the caller's namespace first, then by
// inode. A namespace both named and held by processes is reported once,
// with its name and run-directory path. Entries that vanish or cannot be
// read (processes exiting, permission denied, a stale file left in runDir
// without its bind mount) are skipped: List fails only when the caller's own
// namespace or procRoot cannot be read.
func List(procRoot, runDir string) ([]Namespace, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	if runDir == "" {
		runDir = DefaultRunDir
	}
	self, err := Self(procRoot)
	if err != nil {
		return nil, err
	}
	var selfSt unix.Stat_t
	if err := unix.Stat(self.Path, &selfSt); err != nil {
		return nil, fmt.Errorf("netns: stat %s: %w", self.Path, err)
	}
	// All namespace files live on the one nsfs superblock, so a file in
	// runDir with another st_dev is not (or no longer) a bind mount of a
	// namespace: ip netns leaves such files behind when a delete races.
	nsDev := selfSt.Dev

	byIno := map[uint64]*Namespace{self.Inode: &self}
	pidOf := map[uint64]int{}

	// A missing or unreadable run directory hides names, not namespaces:
	// processes still reveal those below.
	if ents, err := os.ReadDir(runDir); err == nil {
		// ReadDir sorts by name, so the first name of a namespace mounted
		// twice wins, deterministically.
		for _, e := range ents {
			p := filepath.Join(runDir, e.Name())
			var st unix.Stat_t
			if unix.Stat(p, &st) != nil || st.Dev != nsDev {
				continue
			}
			ns, ok := byIno[st.Ino]
			if !ok {
				ns = &Namespace{Inode: st.Ino}
				byIno[st.Ino] = ns
			}
			if ns.Name == "" {
				ns.Name, ns.Path = e.Name(), p
			}
		}
	}

	d, err := os.Open(procRoot)
	if err != nil {
		return nil, fmt.Errorf("netns: open %s: %w", procRoot, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("netns: list %s: %w", procRoot, err)
	}
	dfd := int(d.Fd())
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		var st unix.Stat_t
		// Relative to the open procRoot: one path walk less per process.
		if unix.Fstatat(dfd, name+"/ns/net", &st, 0) != nil || st.Dev != nsDev {
			continue
		}
		ns, ok := byIno[st.Ino]
		if !ok {
			ns = &Namespace{Inode: st.Ino}
			byIno[st.Ino] = ns
		}
		// Prefer the lowest pid: on most hosts the longest-lived holder,
		// and independent of getdents order.
		if ns.Path == "" || (ns.Name == "" && ns != byIno[self.Inode] && pid < pidOf[st.Ino]) {
			ns.Path = filepath.Join(procRoot, name, "ns", "net")
			pidOf[st.Ino] = pid
		}
	}

	out := make([]Namespace, 0, len(byIno))
	for ino, ns := range byIno {
		if ino != self.Inode {
			out = append(out, *ns)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Inode < out[j].Inode })
	return append([]Namespace{*byIno[self.Inode]}, out...), nil
}

// Do runs fn on an OS thread switched into the network namespace of the
// file nsPath (/run/netns/NAME, /proc/PID/ns/net) and switches the thread
// back before returning. Sockets fn creates stay bound to that namespace,
// which is how one netlink socket per namespace is opened without the rest
// of the program ever leaving its own.
//
// If the thread cannot be switched back, it stays locked and the runtime
// retires it when the goroutine ends, so it is never reused in the wrong
// namespace; Do then returns an error even though fn ran, and the caller
// must release what fn created.
func Do(nsPath string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := doLocked(nsPath, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// doLocked switches with github.com/vishvananda/netns: its handles are
// the namespace files opened O_CLOEXEC and its Get names the calling
// thread's namespace, which is the one to come back to on a locked thread.
func doLocked(nsPath string, fn func() error) (restored bool, err error) {
	target, err := vns.GetFromPath(nsPath)
	if err != nil {
		return true, err
	}
	defer target.Close()
	orig, err := vns.Get()
	if err != nil {
		return true, fmt.Errorf("remember current netns: %w", err)
	}
	defer orig.Close()
	if err := vns.Set(target); err != nil {
		return true, fmt.Errorf("setns: %w (is it a network namespace file?)", err)
	}
	ferr := fn()
	if err := vns.Set(orig); err != nil {
		return false, fmt.Errorf("setns back to the original netns: %w", err)
	}
	return true, ferr
}
