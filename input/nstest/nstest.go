// Package nstest gives kernel tests their own network namespaces. Tests that
// need root skip without it, unless FLEUTANBEAT_REQUIRE_ROOT=1 (set by
// .ci/run) turns the skip into a failure.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// RequireRoot skips t when not root, or fails it when root is required.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("FLEUTANBEAT_REQUIRE_ROOT") == "1" {
		t.Fatal("test needs root and FLEUTANBEAT_REQUIRE_ROOT=1 is set")
	}
	t.Skip("test needs root (set FLEUTANBEAT_REQUIRE_ROOT=1 to make this a failure)")
}

// Netns is a named network namespace under /run/netns, deleted when the test
// ends.
type Netns struct {
	Name string
}

// New creates a namespace with its loopback up.
func New(t testing.TB) *Netns {
	t.Helper()
	RequireRoot(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := &Netns{Name: "fbt-" + hex.EncodeToString(b[:])}
	Cmd(t, "ip", "netns", "add", n.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.Name).Run() })
	n.Run(t, "ip", "link", "set", "lo", "up")
	return n
}

// Path is the bind-mounted namespace file, usable with setns(2).
func (n *Netns) Path() string { return "/run/netns/" + n.Name }

// Run runs a command inside the namespace and fails the test if it fails.
func (n *Netns) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Cmd(t, append([]string{"ip", "netns", "exec", n.Name}, args...)...)
}

// Command returns an unstarted command that runs inside the namespace.
func (n *Netns) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

// Cmd runs a command on the host and fails the test if it fails.
func Cmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// VethPair creates dev (numtxqueues txq, in a) and its peer dev+"p" (in b,
// which may be a itself), with IPv6 off so nothing but the test's traffic
// crosses it, addr on dev and a permanent neighbour for peerAddr with a MAC
// nobody owns: the peer drops the frames (PACKET_OTHERHOST) without
// answering, so no ARP goes out and no ICMP comes back.
func VethPair(t testing.TB, a, b *Netns, dev string, txq int, addr, peerAddr string) {
	t.Helper()
	for _, n := range []*Netns{a, b} {
		n.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	a.Run(t, "ip", "link", "add", dev, "numtxqueues", strconv.Itoa(txq), "type", "veth", "peer", "name", dev+"p", "netns", b.Name)
	a.Run(t, "ip", "addr", "add", addr+"/24", "dev", dev)
	a.Run(t, "ip", "link", "set", dev, "up")
	b.Run(t, "ip", "link", "set", dev+"p", "up")
	a.Run(t, "ip", "neigh", "add", peerAddr, "lladdr", "02:00:00:00:00:02", "dev", dev, "nud", "permanent")
}

// RequireKernel skips t because the running kernel lacks feature (a module
// or attach point the host may not have, e.g. "sch_cake"), or fails it
// when FLEUTANBEAT_REQUIRE_KERNEL=1: the kernel matrix sets it inside
// Debian's kernels, which have every such feature.
func RequireKernel(t testing.TB, feature string) {
	t.Helper()
	if os.Getenv("FLEUTANBEAT_REQUIRE_KERNEL") == "1" {
		t.Fatalf("kernel lacks %s and FLEUTANBEAT_REQUIRE_KERNEL=1 is set", feature)
	}
	t.Skipf("kernel lacks %s (set FLEUTANBEAT_REQUIRE_KERNEL=1 to make this a failure)", feature)
}

// KernelAtLeast tells whether the running kernel's release is at least
// major.minor, for tests whose expectation changes with the kernel (a
// helper a newer kernel added): the kernel matrix boots older kernels.
func KernelAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(string(b), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", b, err)
	}
	return ma > major || ma == major && mi >= minor
}
