package sockdiag

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	vnl "github.com/vishvananda/netlink"
	vnlnl "github.com/vishvananda/netlink/nl"
	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// libBenchHolders processes hold libBenchConnsPerHolder loopback
// connections each (both ends), the 36,000 sockets of the flows goal plus
// one listener per holder, in the benchmark's own namespace. They are
// separate processes because one cannot keep 36,000 files open under the
// usual RLIMIT_NOFILE of 20,000 or so.
const (
	libBenchHolders        = 2
	libBenchConnsPerHolder = 9000
	holderEnv              = "SOCKDIAG_BENCH_HOLD"
)

// TestMain turns the test binary into a holder when holderEnv is set: it
// opens that many connections to its own listener, says "ready", and keeps
// them until its stdin closes.
func TestMain(m *testing.M) {
	if v := os.Getenv(holderEnv); v != "" {
		os.Exit(hold(v))
	}
	os.Exit(m.Run())
}

func hold(count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keep := make([]*net.TCPConn, 0, 2*n)
	for range n {
		c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s, err := ln.AcceptTCP()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		keep = append(keep, c, s)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(keep)
	return 0
}

// holdConns starts the holders inside ns and returns the number of TCP
// sockets they hold, listeners included.
func holdConns(b *testing.B, ns *nstest.Netns) int {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for range libBenchHolders {
		cmd := ns.Command(exe)
		cmd.Env = append(os.Environ(), holderEnv+"="+strconv.Itoa(libBenchConnsPerHolder))
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			b.Fatalf("holder: %q, %v", line, err)
		}
	}
	return libBenchHolders * (2*libBenchConnsPerHolder + 1)
}

// BenchmarkDumpVsLibrary puts this package's dump beside
// github.com/vishvananda/netlink's SocketDiagTCPInfo over the same 36,002
// TCP sockets in the same run. The library is asked for what it can give
// (tcp_info; it requests vegas info too); ours is asked for the flows
// input's request, which carries more (tcp_info, congestion name,
// skmeminfo), and once for tcp_info alone, the like-for-like figure.
// Each side must see every socket with its tcp_info. ss -4tin over the
// same namespace, the flows goal's yardstick (ours/ss -tin <= 1.5 for the
// whole collection), runs alongside; cpu-ns/socket counts the process's
// CPU time, garbage collection included, and x-ss is its ratio to ss's.
func BenchmarkDumpVsLibrary(b *testing.B) {
	ns := newNetns(b)
	want := holdConns(b, ns)
	var ss float64 // ss -4tin's CPU time per socket
	perSocket := func(b *testing.B, start time.Duration) {
		c := float64((cpuTime(unix.RUSAGE_SELF) - start).Nanoseconds()) / float64(b.N*want)
		b.ReportMetric(c, "cpu-ns/socket")
		b.ReportMetric(c/ss, "x-ss")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*want), "ns/socket")
	}

	b.Run("ss-4tin", func(b *testing.B) {
		var used time.Duration
		for b.Loop() {
			before := cpuTime(unix.RUSAGE_CHILDREN)
			var out countWriter
			cmd := exec.Command("ss", "-N", ns.Name, "-4tin")
			cmd.Stdout = &out
			if err := cmd.Run(); err != nil || out == 0 {
				b.Fatalf("ss: %v after %d bytes", err, out)
			}
			used += cpuTime(unix.RUSAGE_CHILDREN) - before
		}
		ss = float64(used.Nanoseconds()) / float64(b.N*want)
		b.ReportMetric(ss, "cpu-ns/socket")
	})

	own := func(ext Ext) func(b *testing.B) {
		return func(b *testing.B) {
			d := dumperIn(b, ns)
			req := Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Ext: ext}
			n := 0
			fn := func(s *Socket) error {
				if s.HasTCPInfo {
					n++
				}
				return nil
			}
			b.ReportAllocs()
			start := cpuTime(unix.RUSAGE_SELF)
			for b.Loop() {
				n = 0
				if err := d.Dump(req, fn); err != nil {
					b.Fatal(err)
				}
			}
			perSocket(b, start)
			if n != want {
				b.Fatalf("dumped %d sockets with tcp_info, want %d", n, want)
			}
		}
	}
	b.Run("own/tcpinfo", own(ExtInfo))
	b.Run("own/flows-request", own(ExtTCPDefault))

	// The socket layer alone, both sides handing each message's payload
	// to a callback that counts it: package netlink's Conn.Dump, and the
	// library's NetlinkRequest.ExecuteIter on its socket in the namespace.
	req := Request{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Ext: ExtInfo}
	msg, err := req.marshal(nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("own/framing", func(b *testing.B) {
		d := dumperIn(b, ns)
		n := 0
		b.ReportAllocs()
		start := cpuTime(unix.RUSAGE_SELF)
		for b.Loop() {
			n = 0
			if err := d.c.Dump(msg, func(typ, _ uint16, _ []byte) error {
				if typ == sockDiagByFamily {
					n++
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		perSocket(b, start)
		if n != want {
			b.Fatalf("framed %d messages, want %d", n, want)
		}
	})
	b.Run("library/framing", func(b *testing.B) {
		nsh, err := vns.GetFromPath(ns.Path())
		if err != nil {
			b.Fatal(err)
		}
		defer nsh.Close()
		sock, err := vnlnl.GetNetlinkSocketAt(nsh, vns.None(), unix.NETLINK_INET_DIAG)
		if err != nil {
			b.Fatal(err)
		}
		defer sock.Close()
		lreq := vnlnl.NewNetlinkRequest(vnlnl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
		lreq.Sockets = map[int]*vnlnl.SocketHandle{unix.NETLINK_INET_DIAG: {Socket: sock}}
		lreq.AddData(rawData(msg[16:])) // after the nlmsghdr the library writes
		n := 0
		b.ReportAllocs()
		start := cpuTime(unix.RUSAGE_SELF)
		for b.Loop() {
			n = 0
			if err := lreq.ExecuteIter(unix.NETLINK_INET_DIAG, vnlnl.SOCK_DIAG_BY_FAMILY, func([]byte) bool {
				n++
				return true
			}); err != nil {
				b.Fatal(err)
			}
		}
		perSocket(b, start)
		if n != want {
			b.Fatalf("library framed %d messages, want %d", n, want)
		}
	})

	b.Run("library/SocketDiagTCPInfo", func(b *testing.B) {
		nsh, err := vns.GetFromPath(ns.Path())
		if err != nil {
			b.Fatal(err)
		}
		defer nsh.Close()
		h, err := vnl.NewHandleAt(nsh, unix.NETLINK_INET_DIAG)
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		n := 0
		b.ReportAllocs()
		start := cpuTime(unix.RUSAGE_SELF)
		for b.Loop() {
			res, err := h.SocketDiagTCPInfo(unix.AF_INET)
			if err != nil {
				b.Fatal(err)
			}
			n = 0
			for _, r := range res {
				if r.TCPInfo != nil {
					n++
				}
			}
		}
		perSocket(b, start)
		if n != want {
			b.Fatalf("library gave %d sockets with tcp_info, want %d", n, want)
		}
	})

}

// rawData is a request body for the library's NetlinkRequest.
type rawData []byte

func (r rawData) Len() int          { return len(r) }
func (r rawData) Serialize() []byte { return r }

// countWriter counts what ss writes, so that its output costs the
// benchmark no memory.
type countWriter int

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

// cpuTime is the user and system time of who (RUSAGE_SELF or, for reaped
// children, RUSAGE_CHILDREN).
func cpuTime(who int) time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
