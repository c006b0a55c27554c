package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// roleEnv switches the test binary into one of the processes the live
// tests need: the tool itself ("fleutan", so that it runs inside a test
// namespace with the coverage and race detector of the test build), a
// sink that accepts and discards, or a sender.
const roleEnv = "FLEUTAN_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "fleutan":
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	case "sink":
		os.Exit(runSink(os.Args[1:], os.Stdin, os.Stdout))
	case "send":
		os.Exit(runSender(os.Args[1:], os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// runSink listens on each address, prints "ok", and reads every accepted
// connection until stdin closes.
func runSink(addrs []string, stdin io.Reader, stdout io.Writer) int {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintf(stdout, "err %v\n", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c) }()
			}
		}()
	}
	fmt.Fprintln(stdout, "ok")
	_, _ = io.Copy(io.Discard, stdin)
	return 0
}

// runSender connects to each address, prints "ok" and the local address
// of every connection, then writes 64 KiB to each every 10 ms (about
// 6.5 MB/s per flow) until stdin closes.
func runSender(addrs []string, stdin io.Reader, stdout io.Writer) int {
	var conns []net.Conn
	var locals []string
	for _, a := range addrs {
		c, err := net.Dial("tcp", a)
		if err != nil {
			fmt.Fprintf(stdout, "err %v\n", err)
			return 1
		}
		conns = append(conns, c)
		locals = append(locals, c.LocalAddr().String())
	}
	fmt.Fprintf(stdout, "ok %s\n", strings.Join(locals, " "))
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(done) }()
	buf := make([]byte, 64<<10)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return 0
		case <-t.C:
		}
		for _, c := range conns {
			if _, err := c.Write(buf); err != nil {
				return 1
			}
		}
	}
}

// readReply reads the helper's first line: "ok ..." or "err ...".
func readReply(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "ok" {
		t.Fatalf("helper: %s", line)
	}
	return f[1:]
}
