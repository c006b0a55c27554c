//go:build unix

package logstash

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/client/v2"
	server "github.com/elastic/go-lumber/server/v2"

	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// BenchmarkLogstash sends flow events into a local go-lumber server through
// this output and through minimal go-lumber SyncClient loops sending the
// same documents. "output" gets the events as the pipeline hands them over
// (fields encoded once after processors, Event.Body), the agent's real
// case; "output-unencoded" gets events still as maps (as a library user
// without the pipeline would); golumber-codec encodes the maps with
// output/codec in go-lumber's encoder hook; golumber-preencoded sends
// finished documents (transport alone: the ceiling "output" is compared
// with). All use bulk_max_size 2048 and
// compression level 3. The server skips JSON decoding so that the client
// side dominates; CPU is the whole process (client and server) per 100,000
// events.
func BenchmarkLogstash(b *testing.B) {
	const batch = 2048
	events := make([]pipeline.Event, batch)
	// frozen are the same events as the pipeline hands them to outputs:
	// fields encoded once after processors (Event.Body), maps released.
	frozen := make([]pipeline.Event, batch)
	encoded := make([]any, batch)
	opts := codec.Options{Metadata: true, Beat: "fleutanbeat", Type: docType, Version: "9.9.9"}
	for i := range events {
		events[i] = codectest.FlowEvent(i)
		encoded[i] = json.RawMessage(codec.AppendEvent(nil, &events[i], opts))
		frozen[i] = events[i]
		frozen[i].Body = codec.AppendFields(nil, events[i].Fields)
		frozen[i].Fields = nil
	}

	throughOutput := func(events []pipeline.Event) func(b *testing.B) {
		return func(b *testing.B) {
			c := DefaultConfig()
			c.Hosts = []string{benchServer(b)}
			g, err := newGroup(c, outputSettings())
			if err != nil {
				b.Fatal(err)
			}
			cl := g.Clients[0]
			defer cl.Close()
			measure(b, func(n int) error {
				return cl.Publish(context.Background(), pipeline.NewBatch(events[:n]))
			})
		}
	}
	b.Run("output", throughOutput(frozen))
	b.Run("output-unencoded", throughOutput(events))
	b.Run("golumber-codec", func(b *testing.B) {
		addr := benchServer(b)
		var buf []byte
		cl, err := lumber.SyncDial(addr, lumber.CompressionLevel(3), lumber.Timeout(30*time.Second),
			lumber.JSONEncoder(func(v any) ([]byte, error) {
				buf = codec.AppendEvent(buf[:0], v.(*pipeline.Event), opts)
				return buf, nil
			}))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		items := make([]any, batch)
		for i := range items {
			items[i] = &events[i]
		}
		measure(b, func(n int) error {
			acked, err := cl.Send(items[:n])
			if err == nil && acked != n {
				err = fmt.Errorf("acked %d of %d", acked, n)
			}
			return err
		})
	})
	b.Run("golumber-preencoded", func(b *testing.B) {
		addr := benchServer(b)
		cl, err := lumber.SyncDial(addr, lumber.CompressionLevel(3), lumber.Timeout(30*time.Second),
			lumber.JSONEncoder(func(v any) ([]byte, error) { return v.(json.RawMessage), nil }))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		measure(b, func(n int) error {
			acked, err := cl.Send(encoded[:n])
			if err == nil && acked != n {
				err = fmt.Errorf("acked %d of %d", acked, n)
			}
			return err
		})
	})
}

// measure sends b.N events in batches of up to 2048 through send.
func measure(b *testing.B, send func(n int) error) {
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	start := time.Now()
	for left := b.N; left > 0; {
		n := min(left, 2048)
		if err := send(n); err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	el := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Milliseconds())*100000/float64(b.N), "cpu-ms/100k")
}

func benchServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.NewWithListener(ln, server.JSONDecoder(func([]byte, any) error { return nil }))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := range srv.ReceiveChan() {
			batch.ACK()
		}
	}()
	b.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}
