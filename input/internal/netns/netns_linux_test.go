package netns_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"golang.org/x/sys/unix"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func find(list []netns.Namespace, ino uint64) (netns.Namespace, int) {
	n, at := netns.Namespace{}, -1
	for i, ns := range list {
		if ns.Inode == ino {
			if at >= 0 {
				return ns, -2 // duplicate
			}
			n, at = ns, i
		}
	}
	return n, at
}

// startIn starts `sleep 30` through a wrapper that moves it into another
// namespace and waits until the exec'd sleep is there.
func startIn(t *testing.T, self uint64, args ...string) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino != self {
			return cmd, st.Ino
		}
	}
	t.Fatalf("%v never left the caller's namespace", args)
	return nil, 0
}

func TestSelfMatchesProcSelf(t *testing.T) {
	self, err := netns.Self("")
	if err != nil {
		t.Fatal(err)
	}
	if want := inode(t, "/proc/self/ns/net"); self.Inode != want || self.Path != "/proc/self/ns/net" || self.Name != "" {
		t.Errorf("Self() = %+v, want inode %d", self, want)
	}
}

func TestListFindsNamedNamespaces(t *testing.T) {
	a, b := nstest.New(t), nstest.New(t)
	self, err := netns.Self("")
	if err != nil {
		t.Fatal(err)
	}
	list, err := netns.List("", "")
	if err != nil {
		t.Fatal(err)
	}
	if list[0] != self {
		t.Errorf("first = %+v, want the caller's %+v", list[0], self)
	}
	for i := 2; i < len(list); i++ {
		if list[i-1].Inode >= list[i].Inode {
			t.Errorf("not sorted by inode after the first: %+v", list)
		}
	}
	inos := map[uint64]bool{}
	for _, n := range []*nstest.Netns{a, b} {
		ino := inode(t, n.Path())
		got, at := find(list, ino)
		if at < 1 {
			t.Fatalf("%s (inode %d): index %d in %+v", n.Name, ino, at, list)
		}
		if want := (netns.Namespace{Inode: ino, Path: n.Path(), Name: n.Name}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
		inos[ino] = true
	}
	if len(inos) != 2 || inos[self.Inode] {
		t.Errorf("namespaces not distinct: %v, self %d", inos, self.Inode)
	}
}

func TestListNamedNamespaceWithProcessesIsReportedOnceByName(t *testing.T) {
	n := nstest.New(t)
	self, _ := netns.Self("")
	_, ino := startIn(t, self.Inode, "ip", "netns", "exec", n.Name, "sleep", "30")
	_, ino2 := startIn(t, self.Inode, "ip", "netns", "exec", n.Name, "sleep", "30")
	if ino != ino2 || ino != inode(t, n.Path()) {
		t.Fatalf("inodes %d %d, want %d", ino, ino2, inode(t, n.Path()))
	}
	list, err := netns.List("", "")
	if err != nil {
		t.Fatal(err)
	}
	got, at := find(list, ino)
	if at < 1 || got.Name != n.Name || got.Path != n.Path() {
		t.Errorf("got %+v at %d, want name %s", got, at, n.Name)
	}
}

func TestListFindsUnnamedNamespaceThroughItsProcess(t *testing.T) {
	nstest.RequireRoot(t)
	self, _ := netns.Self("")
	// unshare execs sleep in place, so the pid is the holder's.
	cmd, ino := startIn(t, self.Inode, "unshare", "--net", "sleep", "30")
	_, ino2 := startIn(t, self.Inode, "unshare", "--net", "sleep", "30")
	if ino == ino2 {
		t.Fatal("two unshare --net gave one namespace")
	}
	list, err := netns.List("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got, at := find(list, ino)
	want := netns.Namespace{Inode: ino, Path: "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"}
	if at < 1 || got != want {
		t.Fatalf("got %+v at %d, want %+v", got, at, want)
	}
	if _, at := find(list, ino2); at < 1 {
		t.Errorf("second namespace %d missing", ino2)
	}
	// The path must be usable with setns(2): opening it yields the same
	// namespace.
	f, err := os.Open(got.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Ino != ino {
		t.Errorf("fstat %s: ino %d, err %v", got.Path, st.Ino, err)
	}
}

func TestListSkipsStaleRunDirEntries(t *testing.T) {
	nstest.RequireRoot(t)
	self, _ := netns.Self("")
	cmd, ino := startIn(t, self.Inode, "unshare", "--net", "sleep", "30")
	run := t.TempDir()
	for _, name := range []string{"bound", "stale"} {
		if err := os.WriteFile(filepath.Join(run, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
	if err := unix.Mount(src, filepath.Join(run, "bound"), "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", src, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(run, "bound"), unix.MNT_DETACH) })

	list, err := netns.List("", run)
	if err != nil {
		t.Fatal(err)
	}
	got, at := find(list, ino)
	if want := (netns.Namespace{Inode: ino, Path: filepath.Join(run, "bound"), Name: "bound"}); at < 1 || got != want {
		t.Errorf("got %+v at %d, want %+v", got, at, want)
	}
	staleIno := inode(t, filepath.Join(run, "stale"))
	if _, at := find(list, staleIno); at != -1 {
		t.Errorf("stale file (inode %d) listed: %+v", staleIno, list)
	}
}

func TestListFailsWithoutProcRoot(t *testing.T) {
	if _, err := netns.List(filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Error("List on a missing procRoot: no error")
	}
}

func TestDoRunsInsideTheNamespaceAndComesBack(t *testing.T) {
	ns := nstest.New(t)
	var want, inside unix.Stat_t
	if err := unix.Stat(ns.Path(), &want); err != nil {
		t.Fatal(err)
	}
	self, err := netns.Self("")
	if err != nil {
		t.Fatal(err)
	}
	err = netns.Do(ns.Path(), func() error {
		return unix.Stat("/proc/thread-self/ns/net", &inside)
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside.Ino != want.Ino {
		t.Errorf("fn ran in netns %d, want %d", inside.Ino, want.Ino)
	}
	if after, _ := netns.Self(""); after.Inode != self.Inode {
		t.Errorf("caller's namespace changed: %d -> %d", self.Inode, after.Inode)
	}
	if err := netns.Do("/nonexistent/netns", func() error { t.Error("fn ran"); return nil }); err == nil {
		t.Error("Do on a missing path succeeded")
	}
	if err := netns.Do("/proc/self/status", func() error { t.Error("fn ran"); return nil }); err == nil || !strings.Contains(err.Error(), "is it a network namespace file?") {
		t.Errorf("Do on a non-namespace file: %v", err)
	}
}

// TestDoClosesTheNamespaceHandles: the switch opens two namespace files
// per call (vishvananda/netns handles); a collector calls Do for every
// namespace it watches, so a handle left open would leak two files per
// namespace and collection, on success and on failure alike.
func TestDoClosesTheNamespaceHandles(t *testing.T) {
	ns := nstest.New(t)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	const calls = 50
	for range calls {
		if err := netns.Do(ns.Path(), func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := netns.Do("/proc/self/status", func() error { return nil }); err == nil {
			t.Fatal("Do on a non-namespace file succeeded")
		}
	}
	if after := fds(); after != before {
		t.Errorf("%d open files after %d calls of Do, %d before", after, 2*calls, before)
	}
}
