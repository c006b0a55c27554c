package logstash

import (
	"bytes"
	"context"
	"encoding/binary"
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
// auth, CONNECT only, to loopback destinations only.
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
	if _, err := io.ReadFull(c, methods); err != nil || !bytes.Contains(methods, []byte{socksUserPass}) {
		c.Write([]byte{5, socksNoMethods})
		return
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
		return
	}
	c.Write([]byte{1, 0})
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return
	}
	var host string
	switch req[3] {
	case socksIPv4:
		b := make([]byte, 4)
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

func TestSOCKS5Proxy(t *testing.T) {
	rec := newReceived()
	srv := startServer(t, "a", rec, serverOpts{})
	_, port, _ := net.SplitHostPort(srv.addr)
	dead := freeAddr(t)
	proxy := startSocksProxy(t, "agent", "s3cret")
	for _, tc := range []struct {
		name, url, host, wantErr, wantTarget string
	}{
		{"name resolved at the proxy", "socks5://agent:s3cret@" + proxy.addr, "localhost:" + port, "", "localhost:" + port},
		{"IP address", "socks5://agent:s3cret@" + proxy.addr, "127.0.0.1:" + port, "", "127.0.0.1:" + port},
		{"wrong password", "socks5://agent:wrong@" + proxy.addr, "127.0.0.1:" + port, "proxy rejected the user name or password", ""},
		{"no credentials", "socks5://" + proxy.addr, "127.0.0.1:" + port, "proxy accepts none of our authentication methods", ""},
		{"destination refused", "socks5://agent:s3cret@" + proxy.addr, dead, "CONNECT refused: connection refused", dead},
		{"proxy down", "socks5://agent:s3cret@" + freeAddr(t), "127.0.0.1:" + port, "connection refused", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.mu.Lock()
			proxy.targets = nil
			proxy.mu.Unlock()
			g := newOutput(t, yamlHosts(tc.host)+"timeout: 5s\nproxy_url: "+tc.url+"\n", nil)
			b := pipeline.NewBatch([]pipeline.Event{testEvent(0)})
			err := g.Clients[0].Publish(context.Background(), b)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Publish: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Publish = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the proxy password: %v", err)
			}
			proxy.mu.Lock()
			defer proxy.mu.Unlock()
			if tc.wantTarget != "" && (len(proxy.targets) != 1 || proxy.targets[0] != tc.wantTarget) {
				t.Fatalf("proxy saw CONNECT %q, want [%s]", proxy.targets, tc.wantTarget)
			}
		})
	}
}

func FuzzSOCKSReply(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80})
	f.Add([]byte{5, 0, 0, 4})
	f.Add([]byte{5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		err := readSocksReply(r)
		if err != nil {
			return
		}
		// Success needs a complete reply with code 0, and consumes exactly
		// the reply: header, address of its type, port.
		want := 0
		if len(b) >= 5 {
			switch b[3] {
			case socksIPv4:
				want = 10
			case socksIPv6:
				want = 22
			case socksDomain:
				want = 7 + int(b[4])
			}
		}
		if want == 0 || b[0] != 5 || b[1] != 0 || len(b)-r.Len() != want {
			t.Fatalf("accepted %x, consuming %d bytes", b, len(b)-r.Len())
		}
	})
}
