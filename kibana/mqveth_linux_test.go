package kibana

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mqTraffic makes the data of the TX queue visualizations exist: a named
// network namespace (ip-netns(8), so the qdisc input finds it with
// namespaces: all) holding a veth with four TX queues under an mq root,
// and a UDP socket of this process sending through it until ctx ends, so
// the per-queue qdiscs count bytes and eBPF attribution has a flow with
// an owner. The host's own devices are single-queue (pfifo_fast or
// noqueue), which never carry fleutan.qdisc.tx_queue.
func mqTraffic(ctx context.Context, t *testing.T) (netnsName string) {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "fbk-" + hex.EncodeToString(b)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	in := func(args ...string) { t.Helper(); run(append([]string{"ip", "netns", "exec", name}, args...)...) }
	run("ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	in("ip", "link", "set", "lo", "up")
	in("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	in("ip", "link", "add", "vk0", "numtxqueues", "4", "type", "veth", "peer", "name", "vk0p")
	in("tc", "qdisc", "add", "dev", "vk0", "root", "handle", "1:", "mq")
	in("ip", "addr", "add", "10.78.0.1/24", "dev", "vk0")
	in("ip", "link", "set", "vk0", "up")
	in("ip", "link", "set", "vk0p", "up")
	// A permanent neighbour: datagrams leave vk0 without ARP, and the peer
	// end, which has no address, drops them.
	in("ip", "neigh", "add", "10.78.0.2", "lladdr", "02:00:00:00:00:02", "dev", "vk0", "nud", "permanent")

	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, restored, err := udpSocketIn("/run/netns/" + name)
		if restored {
			runtime.UnlockOSThread()
		} // else the thread stays locked and exits with this goroutine
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("socket in %s: %v", name, r.err)
	}
	if err := unix.Connect(r.fd, &unix.SockaddrInet4{Port: 5000, Addr: [4]byte{10, 78, 0, 2}}); err != nil {
		unix.Close(r.fd)
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1000)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_, _ = unix.Write(r.fd, buf)
		}
	}()
	t.Cleanup(func() { <-done; unix.Close(r.fd) })
	return name
}

// udpSocketIn creates a UDP socket inside the namespace at nsPath (a
// socket belongs to the namespace it was created in) and moves the
// calling, locked thread back; restored is false when that failed.
func udpSocketIn(nsPath string) (fd int, restored bool, err error) {
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, true, err
	}
	defer unix.Close(target)
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, true, err
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return -1, true, err
	}
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
		if err == nil {
			unix.Close(fd)
		}
		return -1, false, rerr
	}
	return fd, true, err
}
