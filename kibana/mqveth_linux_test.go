package kibana

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
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
	ns := nstest.New(t)
	// Both ends in the one namespace; datagrams leave vk0 without ARP (a
	// permanent neighbour), and the peer end, which has no address, drops
	// them.
	nstest.VethPair(t, ns, ns, "vk0", 4, "10.78.0.1", "10.78.0.2")
	ns.Run(t, "tc", "qdisc", "add", "dev", "vk0", "root", "handle", "1:", "mq")

	fd := ns.Socket(t, unix.AF_INET, unix.SOCK_DGRAM)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: 5000, Addr: [4]byte{10, 78, 0, 2}}); err != nil {
		unix.Close(fd)
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
			_, _ = unix.Write(fd, buf)
		}
	}()
	t.Cleanup(func() { <-done; unix.Close(fd) })
	return ns.Name
}
