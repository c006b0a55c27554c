package qdisc

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// helperEnv switches the test binary into a UDP sender, so tests know the
// pid and comm of every socket owner: FLEUTANBEAT_QDISC_HELPER=send with
// args DST:PORT COUNT SIZE sends COUNT datagrams of SIZE bytes on one
// connected socket, prints "sent LOCALADDR", and holds the socket until
// stdin closes.
const helperEnv = "FLEUTANBEAT_QDISC_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "send" {
		os.Exit(runSender(os.Args[len(os.Args)-3:], os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

func runSender(args []string, in io.Reader, out io.Writer) int {
	count, err1 := strconv.Atoi(args[1])
	size, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		fmt.Fprintln(out, "err bad arguments")
		return 2
	}
	c, err := net.Dial("udp", args[0])
	if err != nil {
		fmt.Fprintln(out, "err", err)
		return 1
	}
	buf := make([]byte, size)
	for range count {
		if _, err := c.Write(buf); err != nil {
			fmt.Fprintln(out, "err", err)
			return 1
		}
	}
	fmt.Fprintln(out, "sent", c.LocalAddr())
	_, _ = io.Copy(io.Discard, in)
	c.Close()
	return 0
}

// sender is a running helper process.
type sender struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	local string
}

// sendSpec describes one sender.
type sendSpec struct {
	cpu         int
	dst         string
	count, size int
}

// startSenders runs the senders at once, each pinned to its cpu inside
// ns, and waits until all have sent everything.
func startSenders(t *testing.T, ns *nstest.Netns, specs ...sendSpec) []*sender {
	t.Helper()
	out := make([]*sender, len(specs))
	lines := make([]*bufio.Reader, len(specs))
	for i, sp := range specs {
		out[i], lines[i] = spawnSender(t, ns, sp.cpu, sp.dst, sp.count, sp.size)
	}
	for i, r := range lines {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "sent ") {
			t.Fatalf("sender on cpu %d: %q %v", specs[i].cpu, line, err)
		}
		out[i].local = strings.TrimSpace(strings.TrimPrefix(line, "sent "))
	}
	return out
}

func spawnSender(t *testing.T, ns *nstest.Netns, cpu int, dst string, count, size int) (*sender, *bufio.Reader) {
	t.Helper()
	cmd := ns.Command("taskset", "-c", strconv.Itoa(cpu), os.Args[0], "-test.run=^$", dst, strconv.Itoa(count), strconv.Itoa(size))
	// GORACE: a race-enabled helper otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), helperEnv+"=send", "GORACE=atexit_sleep_ms=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sender{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	return s, bufio.NewReader(stdout)
}

// testNamespaces returns a namespace lister restricted to the test's own.
func testNamespaces(t testing.TB, nss ...*nstest.Netns) func() ([]netns.Namespace, error) {
	t.Helper()
	var out []netns.Namespace
	all, err := netns.List("", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nss {
		found := false
		for _, a := range all {
			if a.Name == n.Name {
				out = append(out, a)
				found = true
			}
		}
		if !found {
			t.Fatalf("namespace %s not listed", n.Name)
		}
	}
	return func() ([]netns.Namespace, error) { return out, nil }
}

// sendUDP sends count datagrams of size bytes to dst from a socket created
// inside ns by the test process itself (a socket belongs to the namespace
// it was created in), for tests that need traffic but no known owner.
func sendUDP(t *testing.T, ns *nstest.Netns, dst string, count, size int) {
	t.Helper()
	ap, err := netip.ParseAddrPort(dst)
	if err != nil {
		t.Fatal(err)
	}
	fd := ns.Socket(t, unix.AF_INET, unix.SOCK_DGRAM)
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	for range count {
		if _, err := unix.Write(fd, buf); err != nil {
			t.Fatal(err)
		}
	}
}

// defaultQdisc is the kind mq gives its queues (net.core.default_qdisc, a
// global setting): pfifo_fast unless the kernel was built otherwise, as
// Debian's 6.12 is (fq_codel).
func defaultQdisc(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/default_qdisc")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
