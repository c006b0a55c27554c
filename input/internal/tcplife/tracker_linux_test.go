package tcplife

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// TestTrackerLoopback makes one connection on 127.0.0.1 in the test's own
// process and finds both of its ends with their process and exact
// payload.
func TestTrackerLoopback(t *testing.T) {
	nstest.RequireRoot(t)
	tr, err := Open(Options{})
	if !nstest.KernelAtLeast(t, 5, 12) {
		// Tracing programs have bpf_get_socket_cookie from 5.12: before,
		// Open must refuse and name it, for the flows input's fallback line.
		if err == nil {
			_ = tr.Close()
			t.Fatal("loaded on a kernel before 5.12")
		}
		if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "bpf_get_socket_cookie") {
			t.Fatalf("before Linux 5.12: %v, want ErrNotSupported naming bpf_get_socket_cookie", err)
		}
		t.Logf("no tracker before Linux 5.12, as expected: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const sent, answered = 12345, 678
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, sent)); err != nil {
			done <- err
			return
		}
		_, err = c.Write(make([]byte, answered))
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if _, err := c.Write(make([]byte, sent)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, answered)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	var client, server *Conn
	deadline := time.Now().Add(5 * time.Second)
	for (client == nil || server == nil) && time.Now().Before(deadline) {
		conns, err := tr.Drain(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for i := range conns {
			cc := conns[i]
			switch {
			case cc.Local == unmapped(local):
				client = &cc
			case cc.Remote == unmapped(local):
				server = &cc
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if client == nil || server == nil {
		t.Fatalf("closed connections not reported: client %v server %v", client, server)
	}
	pid := uint32(os.Getpid())
	if client.TGID != pid || client.Flags&(Started|Active) != Started|Active {
		t.Errorf("client: tgid %d flags %b, want %d started+active", client.TGID, client.Flags, pid)
	}
	if server.TGID != pid || server.Flags&(Started|Listener) != Started|Listener {
		t.Errorf("server: tgid %d flags %b, want %d started+listener", server.TGID, server.Flags, pid)
	}
	if client.PayloadOut() != sent || client.PayloadIn() != answered {
		t.Errorf("client payload out %d in %d, want %d %d (%+v)", client.PayloadOut(), client.PayloadIn(), sent, answered, client)
	}
	if server.PayloadOut() != answered || server.PayloadIn() != sent {
		t.Errorf("server payload out %d in %d, want %d %d (%+v)", server.PayloadOut(), server.PayloadIn(), answered, sent, server)
	}
	if client.StartNs == 0 || client.EndNs <= client.StartNs || client.Inode == 0 || client.Cookie == 0 {
		t.Errorf("client start %d end %d inode %d cookie %d", client.StartNs, client.EndNs, client.Inode, client.Cookie)
	}
	if s := tr.Stats(); s != (Stats{}) {
		t.Errorf("drops: %+v", s)
	}
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
