//go:build linux

// Package flowtest is the traffic helper of the flows tests: the test
// binary re-executed in a test namespace, driven by line commands, so that
// tests know the pid and comm of every socket owner. Both the library's
// and the adapter's tests use it.
package flowtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// Env switches the test binary into a traffic helper driven by line
// commands on stdin (Env=1, Start) or a holder of many connections
// (Env=hold, see runHolder).
const Env = "FLEUTANBEAT_FLOWS_HELPER"

// Main is the TestMain of a package that uses the helper: it runs the
// helper when the binary was started as one, else the tests.
func Main(m *testing.M) {
	if os.Getenv(Env) == "1" {
		os.Exit(runHelper(os.Stdin, os.Stdout))
	}
	if os.Getenv(Env) == "hold" {
		os.Exit(runHolder())
	}
	if os.Getenv(Env) == "sleep" {
		// A child holding the fds it inherited until its parent is gone.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper answers each command with "ok [info]" or "err message":
//
//	listen tcp|udp ADDR   accept   dial tcp|udp ADDR   use I
//	send N   sync   recv N   close   closelistener
//	dialmany ADDR N   acceptmany N   (TCP, N connections at once)
//	openfile   dialonfile ADDR   (see fileThenDial)
//	share N   (a child inherits the listener and the first N connections)
//	unshare N   (closes the first N connections here; the child keeps them)
//	serve   dialsend ADDR N   churn ADDR PER_SECOND SECONDS   churnlog
//	blast ADDR PER_SECOND SECONDS   holdfile   dropfile
//
// accept and dial add a connection and make it current; use I switches
// to the I-th (from 0). send writes in the background (the peer may have
// to read first); sync waits for those writes and until the peer has
// acknowledged every byte (SIOCOUTQ is 0), so the counters a test reads
// next are final.
func runHelper(in io.Reader, out io.Writer) int {
	var h helperState
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		reply, err := h.command(strings.Fields(sc.Text()))
		if err != nil {
			fmt.Fprintf(out, "err %v\n", err)
			continue
		}
		fmt.Fprintf(out, "ok %s\n", reply)
	}
	return 0
}

type helperState struct {
	ln     net.Listener
	pc     net.PacketConn
	conns  []net.Conn
	writes []chan error
	cur    int
	file   *os.File
	child  *exec.Cmd
	// childIn is the child's stdin: the child exits when it closes with
	// this process.
	childIn io.WriteCloser
}

func (h *helperState) add(c net.Conn) string {
	h.conns = append(h.conns, c)
	h.writes = append(h.writes, nil)
	h.cur = len(h.conns) - 1
	return c.LocalAddr().String() + " " + c.RemoteAddr().String()
}

func (h *helperState) command(f []string) (string, error) {
	if len(f) == 0 {
		return "", errors.New("empty command")
	}
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "dialmany", "acceptmany", "openfile", "dialonfile", "share":
		return h.more(f[0], arg(1), arg(2))
	case "unshare":
		n, _ := strconv.Atoi(arg(1))
		if n > len(h.conns) {
			return "", errors.New("not that many connections")
		}
		for _, c := range h.conns[:n] {
			if err := c.Close(); err != nil {
				return "", err
			}
		}
		return "", nil
	case "serve", "dialsend", "churn", "churnlog", "blast", "holdfile", "dropfile":
		return shortConns(h, f)
	}
	if f[0] != "listen" && f[0] != "dial" && f[0] != "accept" && f[0] != "closelistener" && len(h.conns) == 0 {
		return "", errors.New("no connection")
	}
	switch f[0] {
	case "listen":
		if arg(1) == "udp" {
			p, err := net.ListenPacket("udp", arg(2))
			if err != nil {
				return "", err
			}
			h.pc = p
			return p.LocalAddr().String(), nil
		}
		l, err := net.Listen("tcp", arg(2))
		if err != nil {
			return "", err
		}
		h.ln = l
		return l.Addr().String(), nil
	case "accept":
		c, err := h.ln.Accept()
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	case "dial":
		c, err := net.Dial(arg(1), arg(2))
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	case "use":
		i, err := strconv.Atoi(arg(1))
		if err != nil || i < 0 || i >= len(h.conns) {
			return "", fmt.Errorf("no connection %q", arg(1))
		}
		h.cur = i
		return "", nil
	case "send":
		n, _ := strconv.Atoi(arg(1))
		if h.writes[h.cur] != nil {
			return "", errors.New("a send is still pending: sync first")
		}
		done := make(chan error, 1)
		c := h.conns[h.cur]
		go func() { _, err := c.Write(make([]byte, n)); done <- err }()
		h.writes[h.cur] = done
		return "", nil
	case "sync":
		if w := h.writes[h.cur]; w != nil {
			h.writes[h.cur] = nil
			if err := <-w; err != nil {
				return "", err
			}
		}
		return "", waitAcked(h.conns[h.cur])
	case "recv":
		n, _ := strconv.Atoi(arg(1))
		_, err := io.ReadFull(h.conns[h.cur], make([]byte, n))
		return "", err
	case "close":
		return "", h.conns[h.cur].Close()
	case "closelistener":
		return "", h.ln.Close()
	}
	return "", fmt.Errorf("unknown command %q", f[0])
}

// more runs the commands that make many sockets, reuse an fd or fork.
func (h *helperState) more(cmd, a1, a2 string) (string, error) {
	switch cmd {
	case "dialmany", "acceptmany":
		n, err := strconv.Atoi(a2)
		if cmd == "acceptmany" {
			n, err = strconv.Atoi(a1)
		}
		if err != nil {
			return "", err
		}
		for range n {
			var c net.Conn
			if cmd == "dialmany" {
				c, err = net.Dial("tcp", a1)
			} else {
				c, err = h.ln.Accept()
			}
			if err != nil {
				return "", err
			}
			h.add(c)
		}
		return "", nil
	case "openfile":
		f, err := os.Open(os.DevNull)
		if err != nil {
			return "", err
		}
		h.file = f
		return strconv.Itoa(int(f.Fd())), nil
	case "dialonfile":
		return h.fileThenDial(a1)
	case "share":
		n, err := strconv.Atoi(a1)
		if err != nil || n > len(h.conns) || h.ln == nil {
			return "", fmt.Errorf("share %q: need a listener and that many connections", a1)
		}
		var files []*os.File
		for _, s := range append([]any{h.ln}, anySlice(h.conns[:n])...) {
			f, err := s.(interface{ File() (*os.File, error) }).File()
			if err != nil {
				return "", err
			}
			files = append(files, f)
		}
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		h.child = exec.Command(exe)
		h.child.Env = append(os.Environ(), Env+"=sleep")
		h.child.ExtraFiles = files
		if h.childIn, err = h.child.StdinPipe(); err != nil {
			return "", err
		}
		if err := h.child.Start(); err != nil {
			return "", err
		}
		// The dups File made are the child's now; here the originals stay.
		for _, f := range files {
			_ = f.Close()
		}
		return strconv.Itoa(h.child.Process.Pid), nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func anySlice(cs []net.Conn) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

// fileThenDial closes the file of openfile and connects at once, so that
// the socket takes the file's fd number and the process's fd count is the
// same before and after. It answers "FILEFD SOCKFD COUNTBEFORE COUNTAFTER
// LOCAL REMOTE"; the test checks the numbers.
func (h *helperState) fileThenDial(addr string) (string, error) {
	if h.file == nil {
		return "", errors.New("no file: openfile first")
	}
	before, err := fdCount()
	if err != nil {
		return "", err
	}
	fileFD := int(h.file.Fd())
	if err := h.file.Close(); err != nil {
		return "", err
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	after, err := fdCount()
	if err != nil {
		return "", err
	}
	sockFD := -1
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return "", err
	}
	_ = rc.Control(func(fd uintptr) { sockFD = int(fd) })
	ends := h.add(c)
	return fmt.Sprintf("%d %d %d %d %s", fileFD, sockFD, before, after, ends), nil
}

// fdCount is the number of open fds, from a listing of /proc/self/fd:
// its size counts them only from Linux 6.2 and is 0 before, and the
// kernel matrix runs this on 5.10 and 6.1 too. The listing's own fd is
// in every count alike.
func fdCount() (int64, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	return int64(len(ents)), err
}

// waitAcked polls the unacknowledged send queue (SIOCOUTQ, see tcp(7)).
func waitAcked(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		var ierr error
		if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
			return err
		}
		if ierr != nil {
			return ierr
		}
		if n == 0 {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("send queue not acknowledged within 10s")
}

// Helper is a running traffic helper.
type Helper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// Start runs a helper in ns; it is stopped when the test ends.
func Start(t testing.TB, ns *nstest.Netns) *Helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(exe)
	cmd.Env = append(os.Environ(), Env+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &Helper{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(h.Stop)
	return h
}

// PID is the helper's: ip netns exec execs the command in place.
func (h *Helper) PID() int { return h.cmd.Process.Pid }

// Stop ends the helper: its sockets close as it exits.
func (h *Helper) Stop() {
	_ = h.in.Close()
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
	}
}

// Do sends one command (see runHelper) and returns what follows "ok" in
// the reply; any other reply fails the test.
func (h *Helper) Do(t testing.TB, format string, args ...any) string {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(h.in, line); err != nil {
		t.Fatalf("helper %q: %v", line, err)
	}
	replies := make(chan string, 1)
	go func() {
		if h.out.Scan() {
			replies <- h.out.Text()
			return
		}
		replies <- fmt.Sprintf("no reply (%v)", h.out.Err())
	}()
	var reply string
	select {
	case reply = <-replies:
	case <-time.After(20 * time.Second):
		_ = h.cmd.Process.Kill()
		t.Fatalf("helper %q: no reply within 20s", line)
	}
	if !strings.HasPrefix(reply, "ok") {
		t.Fatalf("helper %q: %s", line, reply)
	}
	return strings.TrimSpace(strings.TrimPrefix(reply, "ok"))
}

// Comm is what the kernel shows as the helpers' comm: the executable's
// base name cut to TASK_COMM_LEN-1 bytes.
func Comm(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(exe)
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// Inode is the inode of ns, which identifies it.
func Inode(t testing.TB, ns *nstest.Netns) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(ns.Path(), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
