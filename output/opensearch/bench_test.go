package opensearch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/elasticsearch"
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
	"github.com/fleutan/fleutanbeat/output/opensearch/ostest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU reads utime+stime of the server's process (fields 14 and 15
// of /proc/PID/stat, in clock ticks of 1/100 s on Linux; proc(5)).
func serverCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// putID writes v zero-padded into dst.
func putID(dst []byte, v int) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

type shipResult struct {
	wall, cpu, serverCPU time.Duration
}

// BenchmarkShipToOpenSearch is BenchmarkShipToElasticsearch's node case
// for each OpenSearch the run started: flow-shaped events
// (FLEUTANBEAT_BENCH_EVENTS, default 1,000,000) shipped with
// output.opensearch, and as the ceiling the same documents as pre-built
// bulk bodies posted with a bare net/http loop, in the same run, with the
// same workers and batch size, uncompressed, each into its own data
// stream under the same templates.
func BenchmarkShipToOpenSearch(b *testing.B) {
	for _, srv := range ostest.Servers(b) {
		b.Run(srv.Version, func(b *testing.B) { benchShip(b, srv) })
	}
}

func benchShip(b *testing.B, srv ostest.Server) {
	url := srv.URL
	total := envInt("FLEUTANBEAT_BENCH_EVENTS", 1_000_000)
	workers := envInt("FLEUTANBEAT_BENCH_WORKERS", 2)
	batch := 1600
	nBatches := (total + batch - 1) / batch
	run := uniqueName(b)

	const poolSize = 4
	pool := make([][]pipeline.Event, poolSize)
	for k := range pool {
		pool[k] = flowEvents(k*batch, batch)
	}
	measure := func(fn func(worker int, batches <-chan int)) shipResult {
		ch := make(chan int, nBatches)
		for i := range nBatches {
			ch <- i
		}
		close(ch)
		c0, s0, t0 := processCPU(), serverCPU(srv.PID), time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); fn(w, ch) }()
		}
		wg.Wait()
		return shipResult{wall: time.Since(t0), cpu: processCPU() - c0, serverCPU: serverCPU(srv.PID) - s0}
	}

	for b.Loop() {
		c := testConfig(url)
		c.CompressionLevel = 0
		c.Namespace = run + "out"
		// Templates first, outside the measurement: both sides index with
		// the same explicit mappings.
		if err := elasticsearch.Setup(context.Background(), c, testSettings(nil)); err != nil {
			b.Fatal(err)
		}
		c.Template.Enabled = false
		clients := make([]*elasticsearch.Client, workers)
		for w := range clients {
			clients[w] = newTestClient(b, c, nil)
		}

		// Ceiling: bodies built before timing; per request only the
		// fixed-width ids are rewritten in place.
		const idWidth = 12
		bodies := make([][]byte, poolSize)
		idAt := make([][]int, poolSize)
		actionLen := 0
		for k, evs := range pool {
			var body []byte
			for i := range evs {
				start := len(body)
				body = append(body, `{"create":{"_index":"metrics-fleutan.flows-`+run+`ceil","_id":"`...)
				actionLen = len(body) - start
				idAt[k] = append(idAt[k], len(body))
				body = append(body, strings.Repeat("0", idWidth)...)
				body = append(body, "\"}}\n"...)
				e := evs[i]
				e.Fields = e.Fields.Clone()
				e.Fields.Put("data_stream", pipeline.M{"type": "metrics", "dataset": "fleutan.flows", "namespace": run + "ceil"})
				body = codec.AppendEvent(body, &e, codec.Options{})
				body = append(body, '\n')
			}
			bodies[k] = body
		}
		httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 5 * time.Minute}
		ceilLoop := func(_ int, batches <-chan int) {
			var body []byte
			for bi := range batches {
				k := bi % poolSize
				body = append(body[:0], bodies[k]...)
				n := min(batch, total-bi*batch)
				for i, at := range idAt[k][:n] {
					putID(body[at:at+idWidth], bi*batch+i)
				}
				end := len(body)
				if n < batch {
					end = idAt[k][n] - actionLen
				}
				req, _ := http.NewRequest("POST", url+"/_bulk?filter_path=errors", bytes.NewReader(body[:end]))
				req.Header.Set("Content-Type", "application/x-ndjson")
				res, err := httpc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				reply, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if !bytes.Contains(reply, []byte(`"errors":false`)) {
					b.Errorf("ceiling bulk: %.300s", reply)
					return
				}
			}
		}
		// Warm the JVM (JIT, a first data stream) so that neither
		// measured phase pays for it; both then write to fresh streams.
		full := total
		total = min(total, 100_000)
		nBatches = (total + batch - 1) / batch
		measure(ceilLoop)
		total = full
		nBatches = (total + batch - 1) / batch
		for k := range bodies {
			bodies[k] = bytes.ReplaceAll(bodies[k], []byte(run+"ceil"), []byte(run+"ceim"))
		}
		ceil := measure(ceilLoop)

		// The output gets events as the agent's pipeline hands them over:
		// data_stream set and fields encoded once (Event.Body).
		frozen := make([][]pipeline.Event, poolSize)
		for k, evs := range pool {
			for _, e := range evs {
				e.Fields = e.Fields.Clone()
				e.Fields.Put("data_stream", pipeline.M{"type": "metrics", "dataset": "fleutan.flows", "namespace": c.Namespace})
				e.Dataset = "fleutan.flows"
				e.Body = codec.AppendFields(nil, e.Fields)
				e.Fields = nil
				frozen[k] = append(frozen[k], e)
			}
		}
		var failed sync.Once
		out := measure(func(w int, batches <-chan int) {
			cl := clients[w]
			for bi := range batches {
				src := frozen[bi%poolSize]
				n := min(batch, total-bi*batch)
				evs := make([]pipeline.Event, n)
				for i := range evs {
					evs[i] = src[i]
					var id [12]byte
					putID(id[:], bi*batch+i)
					evs[i].ID = string(id[:])
				}
				bt := pipeline.NewBatch(evs)
				if err := cl.Publish(context.Background(), bt); err != nil || statuses(bt)[pipeline.Acked] != n {
					failed.Do(func() { b.Errorf("Publish: %v %v", err, statuses(bt)) })
					return
				}
			}
		})
		db := estest.NewClient(b, url)
		if got := count(db, "metrics-fleutan.flows-"+run+"out"); got != total {
			b.Fatalf("output stored %d of %d", got, total)
		}
		if got := count(db, "metrics-fleutan.flows-"+run+"ceim"); got != total {
			b.Fatalf("ceiling stored %d of %d", got, total)
		}
		outRate := float64(total) / out.wall.Seconds()
		ceilRate := float64(total) / ceil.wall.Seconds()
		b.ReportMetric(outRate, "events/s")
		b.ReportMetric(ceilRate, "ceiling_events/s")
		b.ReportMetric(outRate/ceilRate, "ratio")
		b.ReportMetric(out.cpu.Seconds()*100000/float64(total), "cpu_s/100k")
		b.ReportMetric(ceil.cpu.Seconds()*100000/float64(total), "ceiling_cpu_s/100k")
		if out.serverCPU > 0 {
			b.ReportMetric(out.cpu.Seconds()/out.serverCPU.Seconds(), "agent/server_cpu")
		}
		b.Logf("OpenSearch %s, %d events, %d workers, batch %d: output %.0f ev/s (%.1fs wall, %.2fs CPU, server %.1fs CPU); ceiling %.0f ev/s (%.1fs, %.2fs CPU, server %.1fs CPU); ratio %.2f",
			srv.Version, total, workers, batch, outRate, out.wall.Seconds(), out.cpu.Seconds(), out.serverCPU.Seconds(),
			ceilRate, ceil.wall.Seconds(), ceil.cpu.Seconds(), ceil.serverCPU.Seconds(), outRate/ceilRate)
	}
}
