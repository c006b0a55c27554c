package sockdiag

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on a locked thread switched into the namespace at path.
// Sockets keep the namespace they were created in, so what fn creates stays
// there. fn runs on another goroutine: it returns errors instead of calling
// t.Fatal.
func inNetns(t testing.TB, path string, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		err := func() error {
			target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(target)
			orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(orig)
			if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("setns %s: %w", path, err)
			}
			ferr := fn()
			if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("setns back: %w", err)
			}
			restored = true
			return ferr
		}()
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// socketInode reads the inode of a socket's fd from its /proc/self/fd link
// ("socket:[N]"), independently of sock_diag.
func socketInode(t testing.TB, c syscall.Conn) uint32 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var link string
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		link, lerr = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
	}); err != nil {
		t.Fatal(err)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	s, ok := strings.CutPrefix(link, "socket:[")
	s, ok2 := strings.CutSuffix(s, "]")
	if !ok || !ok2 {
		t.Fatalf("fd link %q is not a socket", link)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

const (
	upBytes   = 1 << 20  // client -> server
	downBytes = 64 << 10 // server -> client
)

// tcpPair is a listener and one connection over it, after the client sent
// upBytes and the server answered downBytes.
type tcpPair struct {
	ln             *net.TCPListener
	client, server *net.TCPConn
}

func (p *tcpPair) close() {
	p.client.Close()
	p.server.Close()
	p.ln.Close()
}

// newTCPPair listens on addr (port 0: any) inside the namespace and connects
// to it, optionally from the fixed local address from, and moves the bytes.
func newTCPPair(t testing.TB, nsPath, network, addr string, from *net.TCPAddr) *tcpPair {
	t.Helper()
	p := &tcpPair{}
	inNetns(t, nsPath, func() error {
		la, err := net.ResolveTCPAddr(network, addr)
		if err != nil {
			return err
		}
		if p.ln, err = net.ListenTCP(network, la); err != nil {
			return err
		}
		p.client, err = net.DialTCP(network, from, p.ln.Addr().(*net.TCPAddr))
		return err
	})
	t.Cleanup(p.close)
	var err error
	if p.server, err = p.ln.AcceptTCP(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, upBytes)
		if _, err := io.ReadFull(p.server, buf); err != nil {
			errc <- err
			return
		}
		_, err := p.server.Write(buf[:downBytes])
		errc <- err
	}()
	if _, err := p.client.Write(make([]byte, upBytes)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p.client, make([]byte, downBytes)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return p
}

// collect dumps req into a slice of copies.
func collect(t testing.TB, d *Dumper, req Request) []Socket {
	t.Helper()
	var out []Socket
	if err := d.Dump(req, func(s *Socket) error {
		out = append(out, *s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func findLocal(socks []Socket, local netip.AddrPort, remote netip.AddrPort) (Socket, error) {
	for _, s := range socks {
		if s.Local == local && s.Remote == remote {
			return s, nil
		}
	}
	return Socket{}, errors.New("socket " + local.String() + " -> " + remote.String() + " not in dump")
}

// addrPort converts a Go address to the form Socket uses: IPv4 unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// waitAllAcked polls until no established socket of req has unacknowledged
// segments (tcpi_unacked), so byte counters are final: the last segments of
// newTCPPair may still wait for a delayed ACK when it returns.
func waitAllAcked(t testing.TB, d *Dumper, req Request) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pending := 0
		for _, s := range collect(t, d, req) {
			if s.State == TCP_ESTABLISHED && s.TCPInfo.Unacked != 0 {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets still have unacknowledged data", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
