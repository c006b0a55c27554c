//go:build linux

// Package qdisctest is the UDP sender helper of the qdisc tests: the test
// binary re-executed in a test namespace, pinned to a CPU, so that tests
// know the pid and comm of every socket owner. The library's and the
// adapter's tests both use it.
package qdisctest

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

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// Env switches the test binary into a UDP sender, so tests know the
// pid and comm of every socket owner: FLEUTANBEAT_QDISC_HELPER=send with
// args DST:PORT COUNT SIZE sends COUNT datagrams of SIZE bytes on one
// connected socket, prints "sent LOCALADDR", and holds the socket until
// stdin closes.
const Env = "FLEUTANBEAT_QDISC_HELPER"

// Main is the TestMain of a package that uses the senders: it runs one
// when the binary was started as one, else the tests.
func Main(m *testing.M) {
	if os.Getenv(Env) == "send" {
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

// Sender is a running helper process; Local is its socket's address.
type Sender struct {
	Cmd   *exec.Cmd
	stdin io.WriteCloser
	Local string
}

// SendSpec describes one sender: Count datagrams of Size bytes to Dst
// from CPU.
type SendSpec struct {
	CPU         int
	Dst         string
	Count, Size int
}

// StartSenders runs the senders at once, each pinned to its cpu inside
// ns, and waits until all have sent everything.
func StartSenders(t *testing.T, ns *nstest.Netns, specs ...SendSpec) []*Sender {
	t.Helper()
	out := make([]*Sender, len(specs))
	lines := make([]*bufio.Reader, len(specs))
	for i, sp := range specs {
		out[i], lines[i] = spawnSender(t, ns, sp.CPU, sp.Dst, sp.Count, sp.Size)
	}
	for i, r := range lines {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "sent ") {
			t.Fatalf("sender on cpu %d: %q %v", specs[i].CPU, line, err)
		}
		out[i].Local = strings.TrimSpace(strings.TrimPrefix(line, "sent "))
	}
	return out
}

func spawnSender(t *testing.T, ns *nstest.Netns, cpu int, dst string, count, size int) (*Sender, *bufio.Reader) {
	t.Helper()
	cmd := ns.Command("taskset", "-c", strconv.Itoa(cpu), os.Args[0], "-test.run=^$", dst, strconv.Itoa(count), strconv.Itoa(size))
	// GORACE: a race-enabled helper otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), Env+"=send", "GORACE=atexit_sleep_ms=0")
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
	s := &Sender{Cmd: cmd, stdin: stdin}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	return s, bufio.NewReader(stdout)
}

// Namespaces returns a namespace lister restricted to the test's own.
func Namespaces(t testing.TB, nss ...*nstest.Netns) func() ([]flows.Namespace, error) {
	t.Helper()
	var out []flows.Namespace
	all, err := netns.List("", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nss {
		found := false
		for _, a := range all {
			if a.Name == n.Name {
				out = append(out, flows.Namespace{Inode: a.Inode, Name: a.Name, Path: a.Path})
				found = true
			}
		}
		if !found {
			t.Fatalf("namespace %s not listed", n.Name)
		}
	}
	return func() ([]flows.Namespace, error) { return out, nil }
}

// SendUDP sends count datagrams of size bytes to dst from a socket created
// inside ns by the test process itself (a socket belongs to the namespace
// it was created in), for tests that need traffic but no known owner.
func SendUDP(t *testing.T, ns *nstest.Netns, dst string, count, size int) {
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

// DefaultQdisc is the kind mq gives its queues (net.core.default_qdisc, a
// global setting): pfifo_fast unless the kernel was built otherwise, as
// Debian's 6.12 is (fq_codel).
func DefaultQdisc(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/default_qdisc")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// UDPFrame is what a qdisc counts for a UDP datagram of n payload bytes
// over IPv4 on Ethernet: the frame with its headers.
func UDPFrame(n int) uint64 { return uint64(14 + 20 + 8 + n) }
