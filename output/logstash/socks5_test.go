package logstash

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// socksProxy is a minimal RFC 1928/1929 server for tests: user/password
// auth (none when user is ""), CONNECT only, to loopback destinations
// only. It is written from the RFCs, apart from the client under test.
type socksProxy struct {
	addr       string
	user, pass string
	mu         sync.Mutex
	targets    []string // CONNECT destinations as requested
}

func startSocksProxy(t testing.TB, user, pass string) *socksProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &socksProxy{addr: ln.Addr().String(), user: user, pass: pass}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return p
}

func (p *socksProxy) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	if p.user == "" {
		if !bytes.Contains(methods, []byte{socksNoAuth}) {
			c.Write([]byte{5, socksNoMethods})
			return
		}
		c.Write([]byte{5, socksNoAuth})
	} else if p.auth(c, methods) != nil {
		return
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return
	}
	var host string
	switch req[3] {
	case socksIPv4, socksIPv6:
		b := make([]byte, 4)
		if req[3] == socksIPv6 {
			b = make([]byte, 16)
		}
		io.ReadFull(c, b)
		host = net.IP(b).String()
	case socksDomain:
		var l [1]byte
		io.ReadFull(c, l[:])
		b := make([]byte, l[0])
		io.ReadFull(c, b)
		host = string(b)
	default:
		c.Write([]byte{5, 8, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	var port [2]byte
	io.ReadFull(c, port[:])
	target := net.JoinHostPort(host, fmt.Sprint(binary.BigEndian.Uint16(port[:])))
	p.mu.Lock()
	p.targets = append(p.targets, target)
	p.mu.Unlock()
	if host != "localhost" && !net.ParseIP(host).IsLoopback() {
		c.Write([]byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	c.SetDeadline(time.Time{})
	go func() {
		io.Copy(up, c)
		up.Close() // the client hung up: end the other direction too
	}()
	io.Copy(c, up)
}

// auth runs the RFC 1929 exchange; an error means the connection is done.
func (p *socksProxy) auth(c net.Conn, methods []byte) error {
	if !bytes.Contains(methods, []byte{socksUserPass}) {
		c.Write([]byte{5, socksNoMethods})
		return errors.New("no user/password offered")
	}
	c.Write([]byte{5, socksUserPass})
	var ver [2]byte
	io.ReadFull(c, ver[:])
	name := make([]byte, ver[1])
	io.ReadFull(c, name)
	var pl [1]byte
	io.ReadFull(c, pl[:])
	pass := make([]byte, pl[0])
	io.ReadFull(c, pass)
	if string(name) != p.user || string(pass) != p.pass {
		c.Write([]byte{1, 1})
		return errors.New("wrong user/password")
	}
	c.Write([]byte{1, 0})
	return nil
}

// TestSOCKS5Proxy publishes through a SOCKS5 server on loopback and checks
// what the server was asked to CONNECT to: with proxy_use_local_resolver
// off (the default) the host name goes to the proxy, with it on an
// address resolved here does. Failures name the proxy and never carry
// the password.
func TestSOCKS5Proxy(t *testing.T) {
	rec := newReceived()
	srv := startServer(t, "a", rec, serverOpts{})
	_, port, _ := net.SplitHostPort(srv.addr)
	dead := freeAddr(t)
	proxy := startSocksProxy(t, "agent", "s3cret")
	open := startSocksProxy(t, "", "")
	// resolvedHere: the proxy got an address literal for localhost.
	resolvedHere := func(target string) bool {
		h, p, err := net.SplitHostPort(target)
		ip := net.ParseIP(h)
		return err == nil && p == port && ip != nil && ip.IsLoopback()
	}
	exactly := func(want string) func(string) bool { return func(got string) bool { return got == want } }
	for _, tc := range []struct {
		name, url, host string
		localDNS        bool
		wantErr         string
		wantTarget      func(string) bool // nil: no CONNECT expected
	}{
		{"name resolved at the proxy", "socks5://agent:s3cret@" + proxy.addr, "localhost:" + port, false, "", exactly("localhost:" + port)},
		{"socks5h: name resolved at the proxy", "socks5h://agent:s3cret@" + proxy.addr, "localhost:" + port, false, "", exactly("localhost:" + port)},
		{"name resolved here", "socks5://agent:s3cret@" + proxy.addr, "localhost:" + port, true, "", resolvedHere},
		{"IP address", "socks5://agent:s3cret@" + proxy.addr, "127.0.0.1:" + port, false, "", exactly("127.0.0.1:" + port)},
		{"IP address, local resolver", "socks5://agent:s3cret@" + proxy.addr, "127.0.0.1:" + port, true, "", exactly("127.0.0.1:" + port)},
		{"no authentication", "socks5://" + open.addr, "localhost:" + port, false, "", nil},
		{"wrong password", "socks5://agent:wrong@" + proxy.addr, "127.0.0.1:" + port, false, "socks5 proxy " + proxy.addr + ": socks connect tcp " + proxy.addr + "->127.0.0.1:" + port + ": username/password authentication failed", nil},
		{"no credentials", "socks5://" + proxy.addr, "127.0.0.1:" + port, false, "socks5 proxy " + proxy.addr + ": socks connect tcp " + proxy.addr + "->127.0.0.1:" + port + ": no acceptable authentication methods", nil},
		{"destination refused", "socks5://agent:s3cret@" + proxy.addr, dead, false, "unknown error connection refused", exactly(dead)},
		{"proxy down", "socks5://agent:s3cret@" + dead, "127.0.0.1:" + port, false, "connection refused", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []*socksProxy{proxy, open} {
				p.mu.Lock()
				p.targets = nil
				p.mu.Unlock()
			}
			cfg := yamlHosts(tc.host) + "timeout: 5s\nproxy_url: " + tc.url + "\n"
			if tc.localDNS {
				cfg += "proxy_use_local_resolver: true\n"
			}
			g := newOutput(t, cfg, nil)
			before := rec.byServerCount("a")
			b := pipeline.NewBatch([]pipeline.Event{testEvent(0)})
			err := g.Clients[0].Publish(context.Background(), b)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Publish: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Publish = %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && rec.byServerCount("a") != before+1:
				t.Fatalf("Logstash received %d events, want 1", rec.byServerCount("a")-before)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the proxy password: %v", err)
			}
			proxy.mu.Lock()
			defer proxy.mu.Unlock()
			got := proxy.targets
			if tc.wantTarget == nil && len(got) != 0 {
				t.Fatalf("proxy saw CONNECT %q, want none", got)
			}
			if tc.wantTarget != nil && (len(got) != 1 || !tc.wantTarget(got[0])) {
				t.Fatalf("proxy saw CONNECT %q", got)
			}
		})
	}
}

// The SOCKS5 constants the test server speaks (RFC 1928, 1929).
const (
	socksNoAuth    = 0x00
	socksUserPass  = 0x02
	socksNoMethods = 0xff
	socksIPv4      = 0x01
	socksDomain    = 0x03
	socksIPv6      = 0x04
)
