//go:build linux

package flowtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// runHolder opens FLOWS_HOLD_CONNS loopback connections to its own
// listener at FLOWS_HOLD_ADDR, holding both ends, and a file; says
// "ready" and obeys stdin until EOF:
//
//	churn K     closes K connections (both ends) and opens K new ones, on
//	            the fd numbers just freed: the fd count stays
//	reuse ADDR  closes the file and connects to ADDR: the socket takes the
//	            file's fd number, the fd count stays; answers LOCAL
//	take        waits until a connection from another holder is accepted
func runHolder() int {
	n, _ := strconv.Atoi(os.Getenv("FLOWS_HOLD_CONNS"))
	// No TCP keepalive (Go's default is on, 15 s): the connections, all
	// idle since the same moment, would send their probes at once, the
	// loopback backlog (netdev_max_backlog) drops most of them, and after
	// nine lost probes the kernel aborts the connection, so a run longer
	// than about 2.5 minutes would lose most of its sockets.
	lc := net.ListenConfig{KeepAlive: -1}
	dialer := net.Dialer{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", os.Getenv("FLOWS_HOLD_ADDR"))
	if err != nil {
		fmt.Println("err", err)
		return 1
	}
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// peers maps a dialed connection's local address to its accepted end.
	peers := map[string]net.Conn{}
	var dialed []net.Conn
	dial := func(k int) error {
		for range k {
			c, err := dialer.Dial("tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			dialed = append(dialed, c)
		}
		for range k {
			a := <-accepted
			peers[a.RemoteAddr().String()] = a
		}
		return nil
	}
	if err := dial(n); err != nil {
		fmt.Println("err", err)
		return 1
	}
	file, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Println("err", err)
		return 1
	}
	var reused []net.Conn
	fmt.Println("ready", len(dialed), len(peers))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 2 && f[0] == "churn":
			k, _ := strconv.Atoi(f[1])
			for _, c := range dialed[:k] {
				key := c.LocalAddr().String()
				_ = c.Close()
				_ = peers[key].Close()
				delete(peers, key)
			}
			dialed = append(dialed[:0:0], dialed[k:]...)
			if err := dial(k); err != nil {
				fmt.Println("err", err)
				continue
			}
			fmt.Println("ok")
		case len(f) == 2 && f[0] == "reuse":
			_ = file.Close()
			c, err := dialer.Dial("tcp", f[1])
			if err != nil {
				fmt.Println("err", err)
				continue
			}
			reused = append(reused, c)
			fmt.Println("ok", c.LocalAddr().String())
		case len(f) == 1 && f[0] == "take":
			reused = append(reused, <-accepted)
			fmt.Println("ok")
		default:
			fmt.Println("err unknown command", in.Text())
		}
	}
	return 0
}
