package procindex

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the child process: with childEnv set it opens
// that many UDP sockets, optionally drops to childUIDEnv, prints their
// inodes and then obeys stdin ("open", "replace") until EOF.
const (
	childEnv    = "FBT_PROCINDEX_CHILD_SOCKETS"
	childUIDEnv = "FBT_PROCINDEX_CHILD_UID"
)

func TestMain(m *testing.M) {
	if n := os.Getenv(childEnv); n != "" {
		os.Exit(runChild(n))
	}
	os.Exit(m.Run())
}

func openSocket() (int, uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, 0, err
	}
	return fd, uint32(st.Ino), nil
}

func runChild(count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		return 2
	}
	var fds []int
	var inos []string
	for range n {
		fd, ino, err := openSocket()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fds = append(fds, fd)
		inos = append(inos, strconv.FormatUint(uint64(ino), 10))
	}
	if u := os.Getenv(childUIDEnv); u != "" {
		uid, _ := strconv.Atoi(u)
		if err := unix.Setuid(uid); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println(strings.Join(inos, " "))
	in := bufio.NewScanner(os.Stdin)
	file := -1
	for in.Scan() {
		switch in.Text() {
		case "file":
			// A file on the lowest free fd number, for "filetosocket".
			if file, err = unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Println(file)
			continue
		case "filetosocket":
			// The socket takes the file's fd number: the fd count stays.
			_ = unix.Close(file)
			fd, ino, err := openSocket()
			if err != nil || fd != file {
				fmt.Fprintln(os.Stderr, "socket on fd", fd, "not", file, err)
				return 1
			}
			fds = append(fds, fd)
			fmt.Println(ino)
			continue
		}
		if in.Text() == "replace" && len(fds) > 0 {
			// Same fd count, and usually the same fd number.
			_ = unix.Close(fds[len(fds)-1])
			fds = fds[:len(fds)-1]
		}
		fd, ino, err := openSocket()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fds = append(fds, fd)
		fmt.Println(ino)
	}
	return 0
}

type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	inodes []uint32
}

func startChild(t testing.TB, sockets int, uid int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(sockets))
	if uid >= 0 {
		cmd.Env = append(cmd.Env, childUIDEnv+"="+strconv.Itoa(uid))
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	c.out.Buffer(nil, 1<<20)
	t.Cleanup(func() { c.exit() })
	c.inodes = c.readInodes(t)
	if len(c.inodes) != sockets {
		t.Fatalf("child printed %d inodes, want %d", len(c.inodes), sockets)
	}
	return c
}

func (c *child) readInodes(t testing.TB) []uint32 {
	t.Helper()
	if !c.out.Scan() {
		t.Fatalf("child: no output: %v", c.out.Err())
	}
	var inos []uint32
	for _, f := range strings.Fields(c.out.Text()) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, uint32(n))
	}
	return inos
}

// do sends a command and returns the new socket's inode.
func (c *child) do(t testing.TB, command string) uint32 {
	t.Helper()
	if _, err := fmt.Fprintln(c.stdin, command); err != nil {
		t.Fatal(err)
	}
	return c.readInodes(t)[0]
}

func (c *child) exit() {
	_ = c.stdin.Close()
	_ = c.cmd.Wait()
}

func selfComm(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestLiveUpdateFollowsChildren(t *testing.T) {
	nstest.RequireRoot(t)
	fd, own, err := openSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	c := startChild(t, 3, 65534)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	live := append([]uint32{own}, c.inodes...)

	// No full rescan can happen here: whatever is found, the cheap steps
	// found.
	x := New(Options{FullScanInterval: 1000})
	stats, err := x.Update(live)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Resolved != 4 || stats.Unresolved != 0 || stats.FullScans != 0 || stats.FDsRead == 0 {
		t.Errorf("first Update: %+v", stats)
	}
	self, ok := x.Lookup(own)
	if !ok {
		t.Fatal("own socket not found")
	}
	if self.PID != os.Getpid() || self.PPID != os.Getppid() || self.Name != selfComm(t) ||
		!reflect.DeepEqual(self.Args, os.Args) || self.UID != 0 || self.User != "root" || self.Executable != exe || self.StartTime == 0 {
		t.Errorf("own socket: %+v", self)
	}
	for _, ino := range c.inodes {
		p, ok := x.Lookup(ino)
		if !ok {
			t.Fatalf("child socket %d not found", ino)
		}
		if p.PID != c.cmd.Process.Pid || p.PPID != os.Getpid() || p.Name != selfComm(t) ||
			!reflect.DeepEqual(p.Args, []string{os.Args[0], "-test.run=^$"}) || p.UID != 65534 || p.User != "nobody" {
			t.Errorf("child socket %d: %+v", ino, p)
		}
	}
	if got, want := x.PIDs(), []int{os.Getpid(), c.cmd.Process.Pid}; !reflect.DeepEqual(got, want) {
		t.Errorf("PIDs() = %v, want %v", got, want)
	}

	stats, err = x.Update(live)
	if err != nil {
		t.Fatal(err)
	}
	// Other processes of the machine may change their fd tables and be
	// refreshed; nothing makes the index search.
	if stats.Resolved != 4 || stats.Sweeps != 0 || stats.FullScans != 0 {
		t.Errorf("Update without change: %+v, want no search", stats)
	}

	// A new socket in a known process: found through its fd count, or,
	// before Linux 6.2 where /proc/PID/fd has no size, by one sweep;
	// never by a full scan.
	sweeps := 0
	if x.countMode == countNone {
		sweeps = 1
	}
	ino := c.do(t, "open")
	live = append(live, ino)
	stats, err = x.Update(live)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := x.Lookup(ino); !ok || p.PID != c.cmd.Process.Pid || stats.FullScans != 0 || stats.Sweeps != sweeps || stats.Unresolved != 0 {
		t.Errorf("opened socket: %+v, %v, %+v (want %d sweeps)", p, ok, stats, sweeps)
	}

	// A socket replaced keeps the fd count: found because the process
	// closed one of its sockets.
	replaced := live[len(live)-1]
	ino = c.do(t, "replace")
	live = append(live[:len(live)-1], ino)
	stats, err = x.Update(live)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := x.Lookup(ino); !ok || p.PID != c.cmd.Process.Pid || stats.FullScans != 0 || stats.Sweeps != 0 || stats.Unresolved != 0 {
		t.Errorf("replaced socket: %+v, %v, %+v", p, ok, stats)
	}
	if _, ok := x.Lookup(replaced); ok {
		t.Errorf("closed socket %d still resolves", replaced)
	}

	// The child exits: forgotten.
	pid := c.cmd.Process.Pid
	c.exit()
	stats, err = x.Update([]uint32{own})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Resolved != 1 || stats.Unresolved != 0 {
		t.Errorf("after child exit: %+v", stats)
	}
	if got := x.PIDs(); !reflect.DeepEqual(got, []int{os.Getpid()}) {
		t.Errorf("PIDs() = %v, want only the test process", got)
	}
	if _, ok := x.pids[pid]; ok {
		t.Errorf("exited child %d still indexed", pid)
	}
	for _, ino := range c.inodes {
		if _, ok := x.Lookup(ino); ok {
			t.Errorf("socket %d of the exited child still resolves", ino)
		}
	}
}

// A process closes a file and opens a socket on its fd number: same fd
// count, no socket closed. The very next Update finds it, without a full
// rescan (the interval is out of reach).
func TestLiveSocketOnReusedFileFD(t *testing.T) {
	nstest.RequireRoot(t)
	c := startChild(t, 1, -1)
	x := New(Options{FullScanInterval: 1000})
	c.do(t, "file")
	if _, err := x.Update(c.inodes); err != nil {
		t.Fatal(err)
	}
	ino := c.do(t, "filetosocket")
	stats, err := x.Update(append(c.inodes, ino))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := x.Lookup(ino); !ok || p.PID != c.cmd.Process.Pid {
		t.Errorf("socket on a reused fd: %+v, %v; stats %+v", p, ok, stats)
	}
	if stats.FullScans != 0 || stats.Unresolved != 0 {
		t.Errorf("stats %+v, want no full rescan and nothing unresolved", stats)
	}
}

// An inode no process holds must not cause a search every period: sweeps
// until the full rescan after FullScanInterval Updates, then nothing.
func TestLiveOrphanInodeIsRateLimited(t *testing.T) {
	nstest.RequireRoot(t)
	fd, own, err := openSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const orphan = 0xfffffff0 // far above any inode get_next_ino gives out

	x := New(Options{FullScanInterval: 3})
	var full, sweeps []int
	for _, live := range [][]uint32{{own}, {own, orphan}, {own, orphan}, {own, orphan}, {own, orphan}} {
		stats, err := x.Update(live)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Resolved != 1 || stats.Unresolved != len(live)-1 {
			t.Errorf("%+v", stats)
		}
		full = append(full, stats.FullScans)
		sweeps = append(sweeps, stats.Sweeps)
	}
	// Update 1 reads everything; 2 sweeps and is too soon for a full
	// rescan; 3 sweeps, rescans everything and makes the inode an orphan;
	// 4 and 5 leave it alone.
	if want := []int{0, 0, 1, 0, 0}; !slices.Equal(full, want) {
		t.Errorf("full scans per Update = %v, want %v", full, want)
	}
	if want := []int{0, 1, 1, 0, 0}; !slices.Equal(sweeps, want) {
		t.Errorf("sweeps per Update = %v, want %v", sweeps, want)
	}
	stats, err := x.Update([]uint32{own, orphan})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sweeps != 0 || stats.FullScans != 0 {
		t.Errorf("orphan still searched: %+v", stats)
	}
}

func TestLiveUsersComeFromEtcRoot(t *testing.T) {
	nstest.RequireRoot(t)
	etc := t.TempDir()
	if err := os.Mkdir(etc+"/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(etc+"/etc/passwd", []byte("fbtnobody:x:65534:65534::/:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, 1, 65534)
	x := New(Options{EtcRoot: etc})
	if _, err := x.Update(c.inodes); err != nil {
		t.Fatal(err)
	}
	if p, ok := x.Lookup(c.inodes[0]); !ok || p.User != "fbtnobody" || p.UID != 65534 {
		t.Errorf("got %+v, %v; want user fbtnobody", p, ok)
	}
}

func benchChildren(b *testing.B) []uint32 {
	nstest.RequireRoot(b)
	const children, perChild = 8, 500 // 4,000 sockets
	var live []uint32
	for range children {
		live = append(live, startChild(b, perChild, -1).inodes...)
	}
	return live
}

func BenchmarkUpdateSteadyState(b *testing.B) {
	live := benchChildren(b)
	x := New(Options{})
	if s, err := x.Update(live); err != nil || s.Resolved != len(live) {
		b.Fatal(s, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Update(live); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFullScan(b *testing.B) {
	live := benchChildren(b)
	b.ReportAllocs()
	var s Stats
	for b.Loop() {
		var err error
		if s, err = New(Options{}).Update(live); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.FDsRead), "fds/op")
	b.ReportMetric(float64(s.Processes), "procs/op")
}

// BenchmarkUpdateReplacedSockets: in every Update each of 8 processes
// holding 500 sockets has replaced one on the same fd number (same fd
// count), so the index refreshes them; the cost is that of the steady
// state of a host whose long-lived processes open new connections.
func BenchmarkUpdateReplacedSockets(b *testing.B) {
	nstest.RequireRoot(b)
	var children []*child
	var live []uint32
	for range 8 {
		c := startChild(b, 500, -1)
		children = append(children, c)
		live = append(live, c.inodes...)
	}
	x := New(Options{})
	if s, err := x.Update(live); err != nil || s.Resolved != len(live) {
		b.Fatal(s, err)
	}
	b.ReportAllocs()
	var fds, sweeps int
	for b.Loop() {
		b.StopTimer()
		for i, c := range children {
			ino := c.do(b, "replace")
			// replace closes the child's last socket: keep live in step.
			j := (i+1)*500 - 1
			live[j] = ino
		}
		b.StartTimer()
		s, err := x.Update(live)
		if err != nil || s.Resolved != len(live) {
			b.Fatal(s, err)
		}
		fds += s.FDsRead
		sweeps += s.Sweeps
	}
	b.ReportMetric(float64(fds)/float64(b.N), "fds/op")
	b.ReportMetric(float64(sweeps)/float64(b.N), "sweeps/op")
}

// TestLiveCountModeFollowsKernel: on procfs the index counts a process's
// fds by the size of /proc/PID/fd from Linux 6.2 (proc_fd_getattr) and
// knows that before it the size is always 0; the kernel matrix boots
// kernels on both sides of that line.
func TestLiveCountModeFollowsKernel(t *testing.T) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", release, err)
	}
	want := countNone
	if major > 6 || major == 6 && minor >= 2 {
		want = countSize
	}
	x := New(Options{ProcRoot: "/proc"})
	if _, err := x.Update(nil); err != nil {
		t.Fatal(err)
	}
	if x.countMode != want {
		t.Errorf("on Linux %s the fd count mode is %d, want %d (%d: size of /proc/PID/fd, %d: no size)", release, x.countMode, want, countSize, countNone)
	}
}
