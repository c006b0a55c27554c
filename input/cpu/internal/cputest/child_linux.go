// Package cputest runs the processes the cpu tests measure: the test
// binary doubles as the child, selected by an environment variable, so
// that every test package of the cpu collector and input can start pinned,
// moving and idle processes. Only tests import it.
package cputest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the child process. childEnv selects the mode:
//
//	busy  N      pin every thread to core N, hold a loopback TCP connection
//	             and spin until stdin closes
//	move  MS     spin and repin every thread alternately to core 0 and 1
//	             every MS milliseconds, printing "move <unix ns>" after each
//	idle  T      start T threads that sleep, print "ready" and wait (bench)
//	spinlisten   spin; on the line "listen", listen on a loopback TCP port
//	reuse        see reuseChild
const childEnv = "FBT_CPU_CHILD"

// Main is the TestMain of a package that starts children.
func Main(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

func runChild(mode string) int {
	kind, arg, _ := strings.Cut(mode, " ")
	n, _ := strconv.Atoi(arg)
	switch kind {
	case "reuse":
		return reuseChild()
	case "spinlisten":
		return spinListenChild()
	}
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	switch kind {
	case "busy":
		if err := pinAll(n); err != nil {
			fmt.Println("err", err)
			return 1
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("err", err)
			return 1
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Println("err", err)
			return 1
		}
		defer c.Close()
		fmt.Println("ready")
		spin(stop, 0, nil)
	case "move":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("err", err)
			return 1
		}
		defer ln.Close()
		if err := pinAll(0); err != nil {
			fmt.Println("err", err)
			return 1
		}
		fmt.Println("ready")
		spin(stop, time.Duration(n)*time.Millisecond, func(core int) {
			if err := pinAll(core); err != nil {
				fmt.Println("err", err)
				return
			}
			fmt.Println("move", time.Now().UnixNano())
		})
	case "idle":
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				<-stop
			}()
		}
		fmt.Println("ready")
		wg.Wait()
	default:
		return 2
	}
	return 0
}

// reuseChild holds its own executable open, says "ready" and, on the line
// "connect ADDR", closes it and connects to ADDR: the socket takes the
// file's fd number and the fd count stays. It exits at EOF.
func reuseChild() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println("err", err)
		return 1
	}
	f, err := os.Open(exe)
	if err != nil {
		fmt.Println("err", err)
		return 1
	}
	fmt.Println("ready")
	var conns []net.Conn
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if addr, ok := strings.CutPrefix(in.Text(), "connect "); ok {
			_ = f.Close()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			conns = append(conns, c)
		}
	}
	return 0
}

// spinListenChild spins without a socket until the line "listen", then
// listens on a loopback TCP port and spins on; it exits at EOF.
func spinListenChild() int {
	stop := make(chan struct{})
	var ln net.Listener
	fmt.Println("ready")
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "listen" && ln == nil {
				var err error
				if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}
		}
		close(stop)
	}()
	spin(stop, 0, nil)
	return 0
}

// spin burns CPU on one locked thread until stop; every `every` it calls
// move with the other core.
func spin(stop chan struct{}, every time.Duration, move func(core int)) {
	runtime.LockOSThread()
	next := time.Now().Add(every)
	core := 0
	x := uint64(1)
	for i := 0; ; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		if i%(1<<16) != 0 {
			continue
		}
		select {
		case <-stop:
			return
		default:
		}
		if move != nil && time.Now().After(next) {
			core ^= 1
			move(core)
			next = next.Add(every)
		}
	}
}

// pinAll sets the affinity of every thread of the process: sched_setaffinity
// works per thread, and threads created later inherit it from their
// creator.
func pinAll(core int) error {
	var set unix.CPUSet
	set.Set(core)
	// A thread that an unpinned thread cloned after the listing began
	// inherits the old affinity and is missing from it: list again until
	// one pass finds every thread pinned. Under emulation the runtime
	// starts threads slowly enough for this to happen, and the "pinned"
	// child then ran 2% of a period on the other core.
	for pass := 0; pass < 100; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, e := range ents {
			tid, _ := strconv.Atoi(e.Name())
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return fmt.Errorf("threads of pid %d still unpinned after 100 passes", os.Getpid())
}

// Child is a running child process.
type Child struct {
	cmd *exec.Cmd
	// Stdin reaches the child; closing it ends the child.
	Stdin io.WriteCloser
	mu    sync.Mutex
	moves []time.Time
	ready chan error
}

// StartChild starts the test binary as a child in mode and waits for it
// to say it is ready; it ends with the test.
func StartChild(t testing.TB, mode string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{cmd: cmd, Stdin: stdin, ready: make(chan error, 1)}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 1 && f[0] == "ready":
				c.ready <- nil
			case len(f) == 2 && f[0] == "move":
				ns, _ := strconv.ParseInt(f[1], 10, 64)
				c.mu.Lock()
				c.moves = append(c.moves, time.Unix(0, ns))
				c.mu.Unlock()
			default:
				c.ready <- fmt.Errorf("child: %s", sc.Text())
			}
		}
	}()
	select {
	case err := <-c.ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child did not start")
	}
	return c
}

// MovesIn counts the moves made strictly inside [from, to].
func (c *Child) MovesIn(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.moves {
		if m.After(from) && m.Before(to) {
			n++
		}
	}
	return n
}

// PID is the child's pid.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// NsPerTick is the length of a USER_HZ tick, the unit of utime and stime.
const NsPerTick = uint64(time.Second / 100)

// CPUTicks is a process's own utime+stime (USER_HZ), the ground truth.
// The fields are counted from after the last ')', as comm may hold any
// byte (proc(5)).
func CPUTicks(t testing.TB, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	end := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	if end < 0 || len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return utime + stime
}
