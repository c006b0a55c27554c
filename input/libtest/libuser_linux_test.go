package libtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// modulePath is the library's module, which libuser requires.
const modulePath = "github.com/fleutan/fleutanbeat"

// libuserModule copies testdata/libuser to a temporary directory as a
// module of its own whose replace points at this checkout, with this
// module's go.sum (a superset of what libuser needs), so that it builds
// offline from the module cache the library's own build filled.
func libuserModule(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []struct{ from, to string }{
		{filepath.Join("testdata", "libuser", "go.mod"), "go.mod"},
		{filepath.Join("testdata", "libuser", "main.go"), "main.go"},
		{filepath.Join(root, "go.sum"), "go.sum"},
	} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd(t, dir, "mod", "edit", "-replace", modulePath+"="+root)
	return dir
}

// goCmd runs the go tool in dir, offline.
func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	c := exec.Command("go", args...)
	c.Dir = dir
	// -mod=mod lets go add libuser's indirect requirements (the library's
	// own dependencies) to the copy's go.mod.
	c.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// libuserBinary builds testdata/libuser. The kernel matrix's guest has no
// go tool: it names the binary it built beforehand.
func libuserBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("FLEUTANBEAT_LIBUSER_BIN"); bin != "" {
		return bin
	}
	dir := libuserModule(t)
	bin := filepath.Join(dir, "libuser")
	goCmd(t, dir, "build", "-o", bin, ".")
	return bin
}

// TestREADMELibraryExampleCompiles builds the README's library example,
// as the body of a function returning an error, in the libuser module:
// the README shows code that works with the library as it is.
func TestREADMELibraryExampleCompiles(t *testing.T) {
	if os.Getenv("FLEUTANBEAT_LIBUSER_BIN") != "" {
		t.Skip("no go tool where FLEUTANBEAT_LIBUSER_BIN names the program (the kernel matrix's guest)")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const section = "## Use the collectors as a Go library\n"
	_, rest, ok := strings.Cut(string(readme), section)
	if !ok {
		t.Fatalf("README has no %q", strings.TrimSpace(section))
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		t.Fatal("README's library section has no Go example")
	}
	body, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatal("README's library example does not end")
	}
	src := `package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
)

func run(ctx context.Context) error {
` + body + `	return nil
}

func main() { fmt.Println(run(context.Background())) }
`
	dir := libuserModule(t)
	if err := os.Mkdir(filepath.Join(dir, "readme"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "readme", "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd(t, dir, "vet", "./readme")
	goCmd(t, dir, "build", "-o", filepath.Join(dir, "readme.bin"), "./readme")
}

// connect opens a TCP connection over the namespace's loopback, held by
// this process: the listener, the client's end and the accepted end. It
// returns the client's and the listener's ports.
func connect(t *testing.T, ns *nstest.Netns) (clientPort, serverPort int) {
	t.Helper()
	lo := [4]byte{127, 0, 0, 1}
	ln := ns.Socket(t, unix.AF_INET, unix.SOCK_STREAM)
	t.Cleanup(func() { unix.Close(ln) })
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: lo}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	serverPort = port(t, ln)
	c := ns.Socket(t, unix.AF_INET, unix.SOCK_STREAM)
	t.Cleanup(func() { unix.Close(c) })
	if err := unix.Connect(c, &unix.SockaddrInet4{Addr: lo, Port: serverPort}); err != nil {
		t.Fatal(err)
	}
	s, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(s) })
	return port(t, c), serverPort
}

func port(t *testing.T, fd int) int {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// onlineCores counts the cpuN lines of /proc/stat, the cores a cpu
// snapshot reports.
func onlineCores(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	cpuN := regexp.MustCompile(`^cpu\d+ `)
	for sc.Scan() {
		if cpuN.MatchString(sc.Text()) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLibraryUserPrintsOneSnapshotOfEachCollector builds libuser, a
// program in a module of its own that uses the public collector packages,
// and runs it inside a namespace with a known connection and a 4-queue
// veth under mq: its one snapshot of each collector must show exactly
// those, and every online core.
func TestLibraryUserPrintsOneSnapshotOfEachCollector(t *testing.T) {
	nstest.RequireRoot(t)
	bin := libuserBinary(t)
	host, peer := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, host, peer, "lu0", 4, "10.99.7.1", "10.99.7.2")
	host.Run(t, "tc", "qdisc", "add", "dev", "lu0", "root", "handle", "1:", "mq")
	cport, sport := connect(t, host)

	c := host.Command(bin)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("libuser: %v\n%s%s", err, out, stderr.String())
	}
	t.Logf("libuser:\n%s%s", out, stderr.String())
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	has := func(want string) bool {
		for _, l := range lines {
			if l == want {
				return true
			}
		}
		return false
	}
	count := func(prefix string) int {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				n++
			}
		}
		return n
	}

	pid := os.Getpid()
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSpace(string(comm))
	for _, want := range []string{
		fmt.Sprintf("flow tcp 127.0.0.1:%d 127.0.0.1:%d outbound established pid %d %s", cport, sport, pid, name),
		fmt.Sprintf("flow tcp 127.0.0.1:%d 127.0.0.1:%d inbound established pid %d %s", sport, cport, pid, name),
		fmt.Sprintf("flow tcp 127.0.0.1:%d 0.0.0.0:0 listening listen pid %d %s", sport, pid, name),
		fmt.Sprintf("cpu %d cores", onlineCores(t)),
		"qdisc lu0 mq 1: root tx_queues 4",
	} {
		if !has(want) {
			t.Errorf("no line %q", want)
		}
	}
	// The namespace has nothing else: its three sockets, and lu0's mq
	// with one child per TX queue (loopback is left out by default).
	if n := count("flow "); n != 3 {
		t.Errorf("%d flows, want the 3 of the test's connection", n)
	}
	if n := count("core "); n != onlineCores(t) {
		t.Errorf("%d core lines, want %d", n, onlineCores(t))
	}
	kind := childKind(t, host)
	for q := range 4 {
		if n := count(fmt.Sprintf("qdisc lu0 %s 0: parent 1:%x tx_queue %d", kind, q+1, q)); n != 1 {
			t.Errorf("tx queue %d: %d child qdiscs, want 1", q, n)
		}
	}
	if n := count("qdisc "); n != 5 {
		t.Errorf("%d qdiscs, want mq and its 4 children", n)
	}
	// mq has a class per TX queue, which the kernel dumps with the root
	// as parent (mq_dump_class).
	for q := range 4 {
		if want := fmt.Sprintf("class lu0 mq 1:%x parent root tx_queue %d", q+1, q); !has(want) {
			t.Errorf("no line %q", want)
		}
	}
	if n := count("class "); n != 4 {
		t.Errorf("%d classes, want mq's 4", n)
	}
}

// childKind is the kind of the qdiscs mq gave lu0's queues
// (net.core.default_qdisc: pfifo_fast, fq_codel, ...).
func childKind(t *testing.T, ns *nstest.Netns) string {
	t.Helper()
	out := ns.Run(t, "tc", "qdisc", "show", "dev", "lu0", "parent", "1:1")
	f := strings.Fields(out)
	if len(f) < 2 || f[0] != "qdisc" {
		t.Fatalf("tc qdisc show: %q", out)
	}
	return f[1]
}
