package procindex

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

type fakeProc struct {
	pid      int
	stat     string // "" = no stat file: vanished before it was read
	uid      int
	cmdline  string
	exe      string
	fds      map[int]string // fd -> link target
	noFDsDir bool           // vanished between reading stat and its fds
}

func buildProc(t *testing.T, procs []fakeProc) (procRoot, etcRoot string) {
	t.Helper()
	root := t.TempDir()
	procRoot, etcRoot = filepath.Join(root, "proc"), filepath.Join(root, "etcroot")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(etcRoot, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(etcRoot, "etc", "passwd"), []byte("alice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644))
	must(os.MkdirAll(filepath.Join(procRoot, "self"), 0o755)) // not a pid: ignored
	for _, p := range procs {
		dir := filepath.Join(procRoot, strconv.Itoa(p.pid))
		must(os.MkdirAll(dir, 0o755))
		if p.stat != "" {
			must(os.WriteFile(filepath.Join(dir, "stat"), []byte(p.stat), 0o644))
		}
		must(os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\tx\nUid:\t"+strconv.Itoa(p.uid)+"\t0\t0\t0\n"), 0o644))
		must(os.WriteFile(filepath.Join(dir, "cmdline"), []byte(p.cmdline), 0o644))
		if p.exe != "" {
			must(os.Symlink(p.exe, filepath.Join(dir, "exe")))
		}
		if p.noFDsDir {
			continue
		}
		must(os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
		for fd, target := range p.fds {
			must(os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(fd))))
		}
	}
	return procRoot, etcRoot
}

func TestUpdateOnFakeProcTree(t *testing.T) {
	procRoot, etcRoot := buildProc(t, []fakeProc{
		{pid: 100, stat: "100 (server) S 1 100 100 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0\n", uid: 1000,
			cmdline: "server\x00--port\x008080\x00", exe: "/usr/bin/server",
			fds: map[int]string{0: "/dev/null", 3: "socket:[123]", 4: "socket:[456]"}},
		// A forked worker sharing socket 456.
		{pid: 200, stat: "200 (server) S 100 100 100 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5100 0 0\n", uid: 1000,
			cmdline: "server\x00--worker\x00", exe: "/usr/bin/server",
			fds: map[int]string{5: "socket:[456]", 6: "pipe:[9]"}},
		{pid: 300, stat: "300 (gone) S 1 300 300 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5200 0 0\n", noFDsDir: true},
		{pid: 400, stat: "", noFDsDir: true},
	})
	x := New(Options{ProcRoot: procRoot, EtcRoot: etcRoot, FullScanInterval: 1})

	stats, err := x.Update([]uint32{123, 456, 789})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Processes: 4, FDsRead: 5, Resolved: 2, Unresolved: 1}); stats != want {
		t.Errorf("first Update: %+v, want %+v", stats, want)
	}
	want := &Process{PID: 100, PPID: 1, Name: "server", Executable: "/usr/bin/server",
		Args: []string{"server", "--port", "8080"}, UID: 1000, User: "alice", StartTime: 5000}
	for _, ino := range []uint32{123, 456} {
		if got, ok := x.Lookup(ino); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%d) = %+v, %v; want %+v", ino, got, ok, want)
		}
	}
	if _, ok := x.Lookup(789); ok {
		t.Error("Lookup(789) found an owner no process has")
	}
	if got := x.PIDs(); !reflect.DeepEqual(got, []int{100, 200}) {
		t.Errorf("PIDs() = %v, want [100 200]", got)
	}

	// 300 and 400 stay listed here, unlike in /proc, but are not read
	// again: nothing is pending. 789 was unresolved after every process was read, so it
	// is an orphan and costs nothing more.
	stats, err = x.Update([]uint32{123, 456, 789})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Processes: 4, FDsRead: 0, Resolved: 2, Unresolved: 1}); stats != want {
		t.Errorf("steady Update: %+v, want %+v", stats, want)
	}

	// The worker opens a socket. Directory sizes on a disk file system do
	// not count entries, so the rate-limited full rescan finds it here; on
	// tmpfs (TMPDIR in the kernel matrix's guest) they do, like /proc's
	// since Linux 6.2, and the fd count finds it.
	fdDir := filepath.Join(procRoot, "200", "fd")
	before, err := os.Stat(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("socket:[999]", filepath.Join(fdDir, "7")); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	wantFull := 1
	if after.Size() != before.Size() {
		wantFull = 0
	}
	stats, err = x.Update([]uint32{123, 456, 999})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Resolved != 3 || stats.Unresolved != 0 || stats.FullScans != wantFull {
		t.Errorf("after a new socket: %+v, want 3 resolved and %d full scans", stats, wantFull)
	}
	if got, ok := x.Lookup(999); !ok || got.PID != 200 || got.PPID != 100 || !reflect.DeepEqual(got.Args, []string{"server", "--worker"}) {
		t.Errorf("Lookup(999) = %+v, %v", got, ok)
	}

	// The server exits: the worker becomes the owner of the shared socket.
	if err := os.RemoveAll(filepath.Join(procRoot, "100")); err != nil {
		t.Fatal(err)
	}
	stats, err = x.Update([]uint32{456, 999})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Processes: 3, Resolved: 2}); stats != want {
		t.Errorf("after exit: %+v, want %+v", stats, want)
	}
	if got, ok := x.Lookup(456); !ok || got.PID != 200 {
		t.Errorf("Lookup(456) = %+v, %v; want pid 200", got, ok)
	}
	if _, ok := x.Lookup(123); ok {
		t.Error("Lookup(123) still finds the exited server")
	}
	if got := x.PIDs(); !reflect.DeepEqual(got, []int{200}) {
		t.Errorf("PIDs() = %v, want [200]", got)
	}
}

func TestUpdateFailsOnMissingProcRoot(t *testing.T) {
	x := New(Options{ProcRoot: filepath.Join(t.TempDir(), "missing")})
	if _, err := x.Update(nil); err == nil {
		t.Error("no error")
	}
}
