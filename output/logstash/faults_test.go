package logstash

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// faultServer speaks just enough lumberjack v2 (uncompressed) to misbehave
// in controlled ways: handle runs per connection with its index.
type faultServer struct {
	ln    net.Listener
	addr  string
	conns atomic.Int64
	wg    sync.WaitGroup
}

func startFaultServer(t testing.TB, handle func(n int, c net.Conn)) *faultServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &faultServer{ln: ln, addr: ln.Addr().String()}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.conns.Add(1)) - 1
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(n, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// readWindow reads one uncompressed window and returns its event count.
func readWindow(r io.Reader) (int, error) {
	var hdr [6]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	if hdr[0] != '2' || hdr[1] != 'W' {
		return 0, fmt.Errorf("not a window frame: %q", hdr[:2])
	}
	n := int(binary.BigEndian.Uint32(hdr[2:]))
	for range n {
		var fh [10]byte
		if _, err := io.ReadFull(r, fh[:]); err != nil {
			return 0, err
		}
		if fh[0] != '2' || fh[1] != 'J' {
			return 0, fmt.Errorf("not a JSON frame: %q", fh[:2])
		}
		if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(fh[6:]))); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func ack(w io.Writer, seqs ...uint32) {
	for _, s := range seqs {
		w.Write([]byte{'2', 'A', byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)})
	}
}

// TestFaultyServerRepliesAreErrorsNotCrashes: each server misbehaves on its
// first connection and works on the next; the first Publish fails with a
// clear error and exactly the acknowledged events marked, a second retries
// every unacknowledged event and succeeds, and the outage is logged once
// with the host and once more when it is over.
func TestFaultyServerRepliesAreErrorsNotCrashes(t *testing.T) {
	const events = 5
	for _, tc := range []struct {
		name    string
		fault   func(c net.Conn)
		acked   int
		wantErr string
	}{
		{"garbage reply", func(c net.Conn) {
			readWindow(c)
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		}, 0, "not an ACK frame"},
		{"close on accept", func(c net.Conn) {}, 0, "5 events"},
		{"close after the window", func(c net.Conn) { readWindow(c) }, 0, "EOF"},
		{"partial ACK then close", func(c net.Conn) {
			readWindow(c)
			ack(c, 3)
		}, 3, "awaiting ACK (3 of 5 events acknowledged): EOF"},
		{"ACK beyond the window", func(c net.Conn) {
			readWindow(c)
			ack(c, 1000)
		}, 0, "ACK for event 1000 of a window of 5"},
		{"ACK going backwards", func(c net.Conn) {
			readWindow(c)
			ack(c, 4, 2)
		}, 4, "ACK went back from 4 to 2"},
		{"truncated ACK", func(c net.Conn) {
			readWindow(c)
			c.Write([]byte{'2', 'A', 0})
		}, 0, "EOF"},
		{"silent until timeout", func(c net.Conn) {
			readWindow(c)
			time.Sleep(2 * time.Second)
		}, 0, "i/o timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFaultServer(t, func(n int, c net.Conn) {
				if n == 0 {
					tc.fault(c)
					return
				}
				for {
					w, err := readWindow(c)
					if err != nil {
						return
					}
					ack(c, 0, uint32(w)) // a keepalive, then the whole window
				}
			})
			logs := &logRecorder{}
			g := newOutput(t, yamlHosts(srv.addr)+"compression_level: 0\ntimeout: 500ms\nbackoff: {init: 10ms, max: 20ms}\n", logs)
			evs := make([]pipeline.Event, events)
			for i := range evs {
				evs[i] = testEvent(i)
			}
			b := pipeline.NewBatch(evs)
			err := g.Clients[0].Publish(context.Background(), b)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), srv.addr) {
				t.Fatalf("Publish = %v, want an error naming %s and containing %q", err, srv.addr, tc.wantErr)
			}
			var retry []pipeline.Event
			for i := range events {
				st, _ := b.Status(i)
				if want := i < tc.acked; (st == pipeline.Acked) != want {
					t.Fatalf("event %d status %d, acked want %v", i, st, want)
				}
				if st != pipeline.Acked {
					retry = append(retry, b.Events[i])
				}
			}
			b2 := pipeline.NewBatch(retry)
			if err := g.Clients[0].Publish(context.Background(), b2); err != nil {
				t.Fatalf("retry on a working connection: %v", err)
			}
			if w := logs.matching("WARN", srv.addr); len(w) != 1 {
				t.Fatalf("want one warning, got %q", w)
			}
			if i := logs.matching("INFO", srv.addr); len(i) != 1 {
				t.Fatalf("want one recovery message, got %q", i)
			}
		})
	}
}

// TestPipeliningKeepsWindowsInFlight uses a server that acknowledges a
// window only after the next one arrived: it works with pipelining and
// times out without.
func TestPipeliningKeepsWindowsInFlight(t *testing.T) {
	for _, tc := range []struct {
		pipelining int
		ok         bool
	}{{2, true}, {0, false}} {
		t.Run(fmt.Sprintf("pipelining=%d", tc.pipelining), func(t *testing.T) {
			srv := startFaultServer(t, func(_ int, c net.Conn) {
				for {
					a, err := readWindow(c)
					if err != nil {
						return
					}
					b, err := readWindow(c)
					if err != nil {
						return
					}
					ack(c, uint32(a), uint32(b))
				}
			})
			g := newOutput(t, yamlHosts(srv.addr)+fmt.Sprintf("compression_level: 0\ntimeout: 300ms\nslow_start: true\nbulk_max_size: 20\npipelining: %d\n", tc.pipelining), nil)
			evs := make([]pipeline.Event, 20) // two windows of 10
			for i := range evs {
				evs[i] = testEvent(i)
			}
			err := g.Clients[0].Publish(context.Background(), pipeline.NewBatch(evs))
			if tc.ok && err != nil {
				t.Fatalf("Publish: %v", err)
			}
			var ne net.Error
			if !tc.ok && (!errors.As(err, &ne) || !ne.Timeout()) {
				t.Fatalf("Publish = %v, want a timeout", err)
			}
		})
	}
}

// FuzzServerReply feeds arbitrary server replies to a window of 5 events:
// never a panic, never more acknowledged than sent, and success only when
// all 5 are acknowledged.
func FuzzServerReply(f *testing.F) {
	f.Add([]byte{'2', 'A', 0, 0, 0, 5})
	f.Add([]byte{'2', 'A', 0, 0, 0, 0, '2', 'A', 0, 0, 0, 2, '2', 'A', 0, 0, 0, 5})
	f.Add([]byte{'2', 'A', 0, 0, 0, 9})
	f.Add([]byte{'1', 'A', 0, 0, 0, 5})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			go io.Copy(io.Discard, server)
			server.Write(reply)
		}()
		cfg := DefaultConfig()
		cfg.Timeout = config.Duration(2 * time.Second)
		cn, err := newConn(client, "pipe", cfg, codec.Options{Metadata: true}, newIOCounters(pipeline.NewMetrics()))
		if err != nil {
			t.Fatal(err)
		}
		evs := make([]pipeline.Event, 5)
		for i := range evs {
			evs[i] = testEvent(i)
		}
		win := newWindow(5, false)
		n, err := cn.publish(context.Background(), evs, &win, 2)
		if n < 0 || n > 5 || (err == nil && n != 5) {
			t.Fatalf("publish = %d, %v", n, err)
		}
	})
}
