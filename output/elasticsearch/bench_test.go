package elasticsearch

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
	"github.com/fleutan/fleutanbeat/output/elasticsearch/estest"
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

// esCPU reads utime+stime of the Elasticsearch process (fields 14 and 15
// of /proc/PID/stat, in clock ticks of 1/100 s on Linux; proc(5)).
func esCPU(pid int) time.Duration {
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

func esRSS(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

// putID writes v zero-padded into dst.
func putID(dst []byte, v int) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

type shipResult struct {
	wall, cpu, esCPU time.Duration
}

// BenchmarkShipToElasticsearch ships flow-shaped events
// (FLEUTANBEAT_BENCH_EVENTS, default 1,000,000) with the output into the
// run's Elasticsearch (node: one node, a container under make bench) and
// into a three-node cluster of containers with all three hosts configured
// (cluster3), and as the ceiling of each posts pre-built bulk bodies of
// the same documents with a bare net/http loop to the same node or
// cluster, in the same run. Both use the same workers and batch size and
// write uncompressed to their own data stream. The output is given events
// as the agent's pipeline produces them (encoded once, Event.Body).
func BenchmarkShipToElasticsearch(b *testing.B) {
	b.Run("node", func(b *testing.B) { benchShip(b, []string{estest.URL(b)}) })
	b.Run("cluster3", func(b *testing.B) {
		cl := estest.StartCluster(b, "bench", 3)
		benchShip(b, cl.Hosts())
	})
}

// benchShip is one side-by-side measurement against hosts (one node, or
// the nodes of one cluster, which the ceiling loop round-robins over as
// the output does).
func benchShip(b *testing.B, hosts []string) {
	url := hosts[0]
	total := envInt("FLEUTANBEAT_BENCH_EVENTS", 1_000_000)
	workers := envInt("FLEUTANBEAT_BENCH_WORKERS", 2)
	batch := 1600
	pid := 0
	if len(hosts) == 1 {
		// The run's node's process, when the script started one.
		pid = envInt("FLEUTANBEAT_ES_PID", 0)
	}
	nBatches := (total + batch - 1) / batch
	run := uniqueName(b)

	// A pool of events reused with fresh ids: building maps is the
	// input's cost, not the output's. Each worker has its own pool, as
	// the output sets data_stream.* on the events it sends.
	const poolSize = 4
	pools := make([][][]pipeline.Event, workers)
	for w := range pools {
		pools[w] = make([][]pipeline.Event, poolSize)
		for k := range pools[w] {
			pools[w][k] = flowEvents(k*batch, batch, time.Now())
		}
	}
	pool := pools[0]

	measure := func(fn func(worker int, batches <-chan int)) shipResult {
		ch := make(chan int, nBatches)
		for i := range nBatches {
			ch <- i
		}
		close(ch)
		c0, e0, t0 := processCPU(), esCPU(pid), time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); fn(w, ch) }()
		}
		wg.Wait()
		return shipResult{wall: time.Since(t0), cpu: processCPU() - c0, esCPU: esCPU(pid) - e0}
	}

	for b.Loop() {
		c := testConfig(url)
		c.Hosts = hosts
		c.CompressionLevel = envInt("FLEUTANBEAT_BENCH_GZIP", 0) % 10
		if os.Getenv("FLEUTANBEAT_BENCH_GZIP") == "" {
			c.CompressionLevel = 0
		}
		c.Namespace = run + "out"
		clients := make([]*Client, workers)
		for w := range clients {
			clients[w] = newTestClient(b, c)
		}
		// Templates are installed once, outside the measurement, and
		// before the ceiling: its streams match them too, so both sides
		// index with the same explicit mappings (without them the ceiling
		// paid for dynamic mapping: 1.5 times the output's rate, with ES
		// spending 72 s of CPU against the output's 47 s).
		if err := clients[0].ensureSetup(context.Background()); err != nil {
			b.Fatal(err)
		}

		// Ceiling: bodies built before timing; per request only the ids
		// are rewritten in place (fixed width), so ES sees unique creates.
		const idWidth = 12
		templates := make([][]byte, len(pool))
		idAt := make([][]int, len(pool))
		for k, evs := range pool {
			var body []byte
			for i := range evs {
				body = appendAction(body, []byte("metrics-fleutan.flows-"+run+"ceil"), "")
				body = body[:len(body)-3] // reopen the action object: drop "}}\n"
				body = append(body, `,"_id":"`...)
				idAt[k] = append(idAt[k], len(body))
				body = append(body, strings.Repeat("0", idWidth)...)
				body = append(body, "\"}}\n"...)
				e := evs[i]
				e.Fields = e.Fields.Clone()
				e.Fields.Put("data_stream", pipeline.M{"type": "metrics", "dataset": "fleutan.flows", "namespace": run + "ceil"})
				body = codec.AppendEvent(body, &e, codec.Options{})
				body = append(body, '\n')
			}
			templates[k] = body
		}
		httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 5 * time.Minute}
		ceilLoop := func(w int, batches <-chan int) {
			var body []byte
			for bi := range batches {
				k := bi % len(pool)
				body = append(body[:0], templates[k]...)
				n := min(batch, total-bi*batch)
				for i, at := range idAt[k][:n] {
					putID(body[at:at+idWidth], bi*batch+i)
				}
				end := len(body)
				if n < batch {
					end = idAt[k][n] - len(`{"create":{"_index":"metrics-fleutan.flows-`+run+`ceil","_id":"`)
				}
				req, _ := http.NewRequest("POST", hosts[bi%len(hosts)]+"/_bulk?filter_path=errors", bytes.NewReader(body[:end]))
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
		// Warm up the JVM (JIT, the first data stream) so that neither
		// measured phase pays for it; both then write to a fresh stream.
		warm := total
		total = min(total, 100_000)
		nBatches = (total + batch - 1) / batch
		measure(ceilLoop)
		total = warm
		nBatches = (total + batch - 1) / batch
		for k := range templates {
			templates[k] = bytes.ReplaceAll(templates[k], []byte(run+"ceil"), []byte(run+"ceim"))
		}
		ceil := measure(ceilLoop)

		// The output gets events as the agent's pipeline hands them over:
		// data_stream set and fields encoded once (Event.Body), maps gone.
		frozen := make([][][]pipeline.Event, workers)
		for w := range pools {
			frozen[w] = make([][]pipeline.Event, poolSize)
			for k, evs := range pools[w] {
				for _, e := range evs {
					e.Fields = e.Fields.Clone()
					e.Fields.Put("data_stream", pipeline.M{"type": "metrics", "dataset": "fleutan.flows", "namespace": c.Namespace})
					e.Dataset = "fleutan.flows"
					e.Body = codec.AppendFields(nil, e.Fields)
					e.Fields = nil
					frozen[w][k] = append(frozen[w][k], e)
				}
			}
		}
		var failed sync.Once
		out := measure(func(w int, batches <-chan int) {
			cl := clients[w]
			for bi := range batches {
				src := frozen[w][bi%poolSize]
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
		if pid > 0 && out.esCPU > 0 {
			b.ReportMetric(out.cpu.Seconds()/out.esCPU.Seconds(), "agent/es_cpu")
		}
		b.Logf("%d host(s), %d events, %d workers, batch %d: output %.0f ev/s (%.1fs wall, %.2fs CPU, ES %.1fs CPU); ceiling %.0f ev/s (%.1fs, %.2fs CPU, ES %.1fs CPU); ratio %.2f; ES RSS %s",
			len(hosts), total, workers, batch, outRate, out.wall.Seconds(), out.cpu.Seconds(), out.esCPU.Seconds(),
			ceilRate, ceil.wall.Seconds(), ceil.cpu.Seconds(), ceil.esCPU.Seconds(), outRate/ceilRate, esRSS(pid))
	}
}
