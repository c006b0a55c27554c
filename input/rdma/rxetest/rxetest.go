//go:build linux

// Package rxetest builds the soft-RoCE scenario the rdma tests share: a
// veth pair from the test's network namespace to a namespace it creates,
// an rxe device on each end, and rping (rdmacm-utils) running between a
// server and a client over the first device.
//
// The traffic runs in the test's own namespace because on Debian's 6.1
// rping between two namespaces, or between two processes inside one that
// is not the initial one, ends in RDMA_CM_EVENT_UNREACHABLE (-110) with
// no packet sent by the rxe device; the kernel sources point at RoCE
// route resolution done in the initial namespace (dev_addr.net =
// &init_net in roce_resolve_route_from_path) and rxe's UDP socket living
// there. On 6.12 the client waits without a word instead, no packet sent,
// and `rdma system set netns exclusive` leaves the rxe devices in the
// initial namespace (`rdma dev set ... netns` is not supported by rxe);
// see docs/ARCHITECTURE.md. So
// the scenario runs only inside the kernel matrix's guest
// (FLEUTANBEAT_KERNEL_MATRIX=1), a VM without a network interface, and
// skips elsewhere, as it does without RDMA or rping (failing where
// FLEUTANBEAT_REQUIRE_KERNEL=1).
package rxetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// Addresses of the two ends: A (the test's namespace, rping's) and B.
const (
	AddrA = "10.77.0.1"
	AddrB = "10.77.0.2"
)

// Scenario is the namespace and devices.
type Scenario struct {
	B            *nstest.Netns
	DevA, DevB   string // rxe device names
	VethA, VethB string
}

// Available skips or fails t when the kernel has no RDMA netlink or rping
// is missing.
func Available(t testing.TB) {
	t.Helper()
	nstest.RequireRoot(t)
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_RDMA)
	if err != nil {
		nstest.RequireKernel(t, "RDMA netlink (CONFIG_INFINIBAND, rdma_rxe): "+err.Error())
	}
	unix.Close(fd)
	if _, err := exec.LookPath("rping"); err != nil {
		nstest.RequireKernel(t, "rping (rdmacm-utils) for soft-RoCE traffic")
	}
	if os.Getenv("FLEUTANBEAT_KERNEL_MATRIX") != "1" {
		t.Skip("soft-RoCE traffic runs in the initial network namespace: only inside the kernel matrix's guest (FLEUTANBEAT_KERNEL_MATRIX=1)")
	}
}

// New creates namespace B, the veth pair from the test's namespace to B
// and an rxe device on each end.
func New(t testing.TB) *Scenario {
	t.Helper()
	Available(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	s := &Scenario{B: nstest.New(t), DevA: "rxa" + sfx, DevB: "rxb" + sfx, VethA: "va" + sfx, VethB: "vb" + sfx}
	nstest.Cmd(t, "ip", "link", "add", s.VethA, "type", "veth", "peer", "name", s.VethB, "netns", s.B.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", s.VethA).Run() })
	nstest.Cmd(t, "ip", "addr", "add", AddrA+"/24", "dev", s.VethA)
	s.B.Run(t, "ip", "addr", "add", AddrB+"/24", "dev", s.VethB)
	nstest.Cmd(t, "ip", "link", "set", s.VethA, "up")
	s.B.Run(t, "ip", "link", "set", s.VethB, "up")
	if err := vnl.RdmaLinkAdd(s.DevA, "rxe", s.VethA); err != nil {
		t.Fatalf("rdma link add %s type rxe netdev %s: %v", s.DevA, s.VethA, err)
	}
	t.Cleanup(func() { _ = vnl.RdmaLinkDel(s.DevA) })
	// The kernel finds the netdev in the namespace of the netlink socket
	// that asks.
	err := netns.Do(s.B.Path(), func() error { return vnl.RdmaLinkAdd(s.DevB, "rxe", s.VethB) })
	if err != nil {
		t.Fatalf("rdma link add %s type rxe netdev %s in %s: %v", s.DevB, s.VethB, s.B.Name, err)
	}
	t.Cleanup(func() { _ = vnl.RdmaLinkDel(s.DevB) })
	return s
}

// Rping is one rping process with its output lines counted.
type Rping struct {
	Cmd *exec.Cmd
	mu  sync.Mutex
	// lines counts the "ping data" lines it printed.
	lines int
	out   []string
	done  chan struct{}
}

// Lines is how many pings the process reported so far.
func (r *Rping) Lines() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines
}

// Output is what it printed.
func (r *Rping) Output() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.out...)
}

// Signal sends sig to the process.
func (r *Rping) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := r.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to rping %d: %v", sig, r.Cmd.Process.Pid, err)
	}
}

// StartRping starts rping with args and -v in the test's namespace. Its
// output goes to a pseudo terminal, so that it prints each ping as it
// happens rather than when a pipe's buffer fills.
func StartRping(t testing.TB, args ...string) *Rping {
	t.Helper()
	ptm, pts, err := openPTY()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	cmd := exec.Command("rping", append([]string{"-v"}, args...)...)
	cmd.Stdout, cmd.Stderr = pts, pts
	if err := cmd.Start(); err != nil {
		t.Fatalf("rping %v: %v", args, err)
	}
	pts.Close()
	r := &Rping{Cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(ptm)
		for sc.Scan() {
			r.mu.Lock()
			line := sc.Text()
			if len(r.out) < 50 {
				r.out = append(r.out, line)
			}
			if len(line) >= 9 && containsPing(line) {
				r.lines++
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		ptm.Close()
		<-r.done
	})
	return r
}

func containsPing(s string) bool {
	for i := 0; i+9 <= len(s); i++ {
		if s[i:i+9] == "ping data" {
			return true
		}
	}
	return false
}

// WaitLines waits until r printed at least n pings.
func (r *Rping) WaitLines(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for r.Lines() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("rping %v printed %d pings in %s, want %d; output: %q", r.Cmd.Args, r.Lines(), timeout, n, r.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stopped waits until the kernel shows the process stopped (state T).
func (r *Rping) Stopped(t testing.TB) {
	t.Helper()
	for i := 0; i < 500; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(r.Cmd.Process.Pid) + "/stat")
		if err == nil {
			if st, ok := statState(b); ok && (st == 'T' || st == 't') {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("rping %d did not stop", r.Cmd.Process.Pid)
}

func statState(b []byte) (byte, bool) {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2], true
		}
	}
	return 0, false
}

// Wait waits for the process to exit, up to timeout.
func (r *Rping) Wait(timeout time.Duration) error {
	select {
	case <-r.done:
		return nil
	case <-time.After(timeout):
		return errors.New("rping still running")
	}
}

func openPTY() (*os.File, *os.File, error) {
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(ptm.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		ptm.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		ptm.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		return nil, nil, err
	}
	return ptm, pts, nil
}
