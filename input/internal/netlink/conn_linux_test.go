package netlink

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

var update = flag.Bool("update", false, "capture testdata/getlink.bin from the running kernel (Linux, root)")

// getLink is an RTM_GETLINK dump request: struct ifinfomsg with ifi_change
// set to change (anything but 0 is invalid in a dump request).
func getLink(change uint32) []byte {
	b := AppendHeader(nil, unix.RTM_GETLINK, FlagRequest|FlagDump, 0, unix.SizeofIfInfomsg)
	b = append(b, make([]byte, unix.SizeofIfInfomsg)...)
	ne.PutUint32(b[HdrLen+12:], change)
	return b
}

// linkName returns IFLA_IFNAME of an RTM_NEWLINK payload.
func linkName(t testing.TB, p []byte) string {
	t.Helper()
	if len(p) < unix.SizeofIfInfomsg {
		t.Fatalf("RTM_NEWLINK payload of %d bytes", len(p))
	}
	for a := p[unix.SizeofIfInfomsg:]; len(a) >= 4; {
		l := int(ne.Uint16(a))
		if l < 4 || l > len(a) {
			t.Fatalf("attribute length %d of %d bytes", l, len(a))
		}
		if ne.Uint16(a[2:])&0x3fff == unix.IFLA_IFNAME {
			return strings.TrimRight(string(a[4:l]), "\x00")
		}
		a = a[min(align4(l), len(a)):]
	}
	t.Fatal("RTM_NEWLINK without IFLA_IFNAME")
	return ""
}

func openIn(t testing.TB, ns *nstest.Netns, o Options) *Conn {
	t.Helper()
	o.Netns = ns.Path()
	c, err := Open(unix.NETLINK_ROUTE, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// vethPairs adds n veth pairs NAMEa0/NAMEb0... inside ns and returns the
// names of all the links, lo included.
func vethPairs(t testing.TB, ns *nstest.Netns, prefix string, n int) []string {
	t.Helper()
	names := []string{"lo"}
	var batch strings.Builder
	for i := range n {
		a, b := fmt.Sprintf("%sa%d", prefix, i), fmt.Sprintf("%sb%d", prefix, i)
		fmt.Fprintf(&batch, "link add %s type veth peer name %s\n", a, b)
		names = append(names, a, b)
	}
	f := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(f, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	nstest.Cmd(t, "ip", "-n", ns.Name, "-batch", f)
	slices.Sort(names)
	return names
}

// links dumps the names of the links, sorted.
func links(t testing.TB, c *Conn) ([]string, error) {
	t.Helper()
	var names []string
	err := c.Dump(getLink(0), func(typ, _ uint16, p []byte) error {
		if typ != unix.RTM_NEWLINK {
			return fmt.Errorf("message type %d in a link dump", typ)
		}
		names = append(names, linkName(t, p))
		return nil
	})
	slices.Sort(names)
	return names, err
}

func TestDumpLinksOfTheNamespaceOpenedIn(t *testing.T) {
	ns := nstest.New(t)
	want := vethPairs(t, ns, "nl", 1)
	c := openIn(t, ns, Options{Timeout: 5 * time.Second})
	for i := range 2 {
		got, err := links(t, c)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("dump %d: links %v, %v; want %v", i+1, got, err, want)
		}
	}

	host, err := Open(unix.NETLINK_ROUTE, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	got, err := links(t, host)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(got, "nla0") {
		t.Errorf("the caller's namespace shows the links of %s: %v", ns.Name, got)
	}
}

// bigReply makes a namespace whose link dump takes several datagrams.
func bigReply(t *testing.T) (*nstest.Netns, []string) {
	t.Helper()
	ns := nstest.New(t)
	want := vethPairs(t, ns, "v", 40)
	c := openIn(t, ns, Options{Timeout: 5 * time.Second})
	seq, err := c.Send(getLink(0))
	if err != nil {
		t.Fatal(err)
	}
	var f Framer
	for reads := 1; ; reads++ {
		b, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		f.Reset(b, seq)
		for f.Next() {
		}
		if f.Done() {
			if reads < 3 {
				t.Fatalf("the dump of %d links took %d reads; the test needs more", len(want), reads)
			}
			return ns, want
		}
	}
}

func TestDumpReadsToTheEndAfterTheCallbackFails(t *testing.T) {
	ns, want := bigReply(t)
	c := openIn(t, ns, Options{Timeout: 5 * time.Second})
	stop := errors.New("stop")
	calls := 0
	err := c.Dump(getLink(0), func(uint16, uint16, []byte) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("Dump = %v after %d calls, want the callback's error as is after 1", err, calls)
	}
	if c.dirty {
		t.Error("the socket is left dirty although the dump was read to its end")
	}
	// Had the dump been left running, the kernel would refuse the next.
	got, err := links(t, c)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("next dump: %d links, %v; want %d", len(got), err, len(want))
	}
}

func TestDumpReadsOnPastATruncatedDatagram(t *testing.T) {
	ns, want := bigReply(t)
	c := openIn(t, ns, Options{Timeout: 5 * time.Second})
	c.buf = make([]byte, 256) // smaller than one RTM_NEWLINK
	got, err := links(t, c)
	if !errors.Is(err, ErrDumpIncomplete) || !strings.Contains(err.Error(), "did not fit the 256-byte buffer") || len(got) != 0 {
		t.Fatalf("Dump with a 256-byte buffer = %v after %d links, want a message that did not fit, and no link", err, len(got))
	}
	if c.dirty {
		t.Error("dirty although the dump was read to NLMSG_DONE")
	}
	if len(c.buf) < 1400 {
		t.Errorf("the buffer is %d bytes after a truncated read, want it grown", len(c.buf))
	}
	c.buf = make([]byte, bufLen)
	if got, err := links(t, c); err != nil || !slices.Equal(got, want) {
		t.Fatalf("next dump: %d links, %v; want %d", len(got), err, len(want))
	}
}

func TestSendDrainsAnAbandonedDump(t *testing.T) {
	ns, want := bigReply(t)
	c := openIn(t, ns, Options{Timeout: 5 * time.Second})
	abandon := func() {
		t.Helper()
		if _, err := c.Send(getLink(0)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	// What draining is for: netlink_dump_start refuses a dump while one
	// runs on the socket.
	abandon()
	if _, err := links(t, c); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("dump over an abandoned one = %v, want EBUSY", err)
	}
	abandon()
	c.dirty = true // as Dump leaves it when a read fails
	got, err := links(t, c)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("dump after draining: %d links, %v; want %d", len(got), err, len(want))
	}
	if c.dirty {
		t.Error("still dirty after a complete dump")
	}
}

func TestDumpErrnoInNLMSGDONE(t *testing.T) {
	ns := nstest.New(t)
	c := openIn(t, ns, Options{Timeout: 5 * time.Second})
	// With strict checking, rtnl_valid_dump_ifinfo_req refuses a header
	// with ifi_change set; the dump callback's -EINVAL is the status of
	// NLMSG_DONE (nlk->dump_done_errno).
	if err := c.SetsockoptInt(unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
		t.Skipf("NETLINK_GET_STRICT_CHK: %v", err)
	}
	var done bool
	seq, err := c.Send(getLink(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+HdrLen <= len(b); off += align4(int(ne.Uint32(b[off:]))) {
		if ne.Uint16(b[off+4:]) == TypeDone && ne.Uint32(b[off+8:]) == seq {
			done = true
		}
	}
	if !done {
		t.Fatalf("the kernel did not answer with NLMSG_DONE: % x", b)
	}

	err = c.Dump(getLink(1), func(uint16, uint16, []byte) error { return nil })
	var ke *KernelError
	if !errors.As(err, &ke) || ke.Errno != unix.EINVAL || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Dump = %v, want a *KernelError with EINVAL", err)
	}
	if got, err := links(t, c); err != nil || !slices.Equal(got, []string{"lo"}) {
		t.Errorf("next dump: %v, %v", got, err)
	}
}

func TestOpenOptions(t *testing.T) {
	ns := nstest.New(t)
	const rcvbuf = 4 << 20 // above net.core.rmem_default
	c := openIn(t, ns, Options{Timeout: 50 * time.Millisecond, RcvBuf: rcvbuf})
	if got, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil || got < rcvbuf {
		t.Errorf("SO_RCVBUF = %d, %v; want at least %d", got, err, rcvbuf)
	}
	res := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.Recv()
		res <- err
	}()
	select {
	case err := <-res:
		if !errors.Is(err, unix.EAGAIN) || !strings.HasPrefix(err.Error(), "receive: ") {
			t.Errorf("Recv with nothing queued = %v, want receive: EAGAIN", err)
		}
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("Recv returned after %v, before the timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv blocks: SO_RCVTIMEO not set")
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(unix.NETLINK_ROUTE, Options{Netns: "/run/netns/fleutanbeat-does-not-exist"}); err == nil {
		t.Error("Open in a missing namespace succeeded")
	}
	// MAX_LINKS is 32: no protocol has that number.
	if _, err := Open(32, Options{}); err == nil || !strings.HasPrefix(err.Error(), "netlink socket: ") {
		t.Errorf("Open(protocol 32) = %v, want a netlink socket error", err)
	}
}

func TestClose(t *testing.T) {
	c, err := Open(unix.NETLINK_ROUTE, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Closed() {
		t.Fatal("Closed before Close")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil || !c.Closed() || c.fd != -1 {
		t.Errorf("second Close = %v, closed %v, fd %d", err, c.Closed(), c.fd)
	}
	if _, err := c.Send(getLink(0)); err != ErrClosed {
		t.Errorf("Send after Close = %v", err)
	}
	if _, err := c.Recv(); err != ErrClosed {
		t.Errorf("Recv after Close = %v", err)
	}
	if err := c.Dump(getLink(0), func(uint16, uint16, []byte) error { return nil }); err != ErrClosed {
		t.Errorf("Dump after Close = %v", err)
	}
}

func TestSendStampsIncreasingSequenceNumbers(t *testing.T) {
	c, err := Open(unix.NETLINK_ROUTE, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Send(make([]byte, HdrLen-1)); err == nil {
		t.Error("Send accepted a request shorter than a header")
	}
	c.seq = ^uint32(0) - 1
	var seqs []uint32
	for range 2 {
		req := getLink(0)
		seq, err := c.Send(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := ne.Uint32(req[8:]); got != seq {
			t.Errorf("request carries sequence %d, Send says %d", got, seq)
		}
		seqs = append(seqs, seq)
		var f Framer
		for !f.Done() {
			b, err := c.Recv()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			if _, err := f.Walk(b, seq, func(uint16, uint16, []byte) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if n == 0 && !f.Done() {
				t.Fatalf("a datagram with nothing of sequence %d", seq)
			}
		}
	}
	// 0 means "any sequence" to Walk, so it is skipped.
	if !slices.Equal(seqs, []uint32{^uint32(0), 1}) {
		t.Errorf("sequence numbers %v, want the last one and then 1", seqs)
	}
}

// TestCaptureFixture rebuilds testdata/getlink.bin with -update: the reply
// to RTM_GETLINK in a namespace with lo and one veth pair, every datagram
// read, concatenated.
func TestCaptureFixture(t *testing.T) {
	if !*update {
		t.Skip("run with -update to capture the fixture")
	}
	ns := nstest.New(t)
	vethPairs(t, ns, "fx", 1)
	c := openIn(t, ns, Options{Timeout: 5 * time.Second})
	seq, err := c.Send(getLink(0))
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	var f Framer
	for !f.Done() {
		b, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
		if _, err := f.Walk(b, seq, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join("testdata", "getlink.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, sequence %d", len(raw), seq)
}
