package pipeline_test

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/output/file"
	"github.com/fleutan/fleutanbeat/pipeline"
	"github.com/fleutan/fleutanbeat/pipeline/processor"
)

const benchProcessors = `
- add_host_metadata: ~
- drop_event:
    when:
      or:
        - equals: {process.name: never-matches}
        - network: {source.ip: 192.0.2.0/24}
        - regexp: {fleutan.flow.congestion: "^nope$"}
- rename:
    fields:
      - {from: fleutan.flow.tcp.rtt_us, to: fleutan.flow.rtt_us}
    ignore_missing: true
`

func rawList(tb testing.TB, src string) []config.Raw {
	tb.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		tb.Fatal(err)
	}
	return config.NewRaw(doc.Content[0], "bench.yml", "processors").List()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// publishChunk is how many events the flows input builds, with one
// Builder it resets after each chunk, before it publishes them in one call
// (input/flows).
const publishChunk = 64

// BenchmarkPipelineFlowsToFile is the agent's hot path on one core
// (GOMAXPROCS=1): flows-shaped events, built and published in chunks as the
// flows input does, through add_host_metadata, a drop_event that does not
// match and a rename, given an id, queued, encoded and written to the file
// output. It reports events per CPU-second of the process and allocations
// per event, two ways:
//
//   - input+pipeline: building the events (the input's share) included, as
//     in the running agent;
//   - pipeline: the pipeline's share alone, measured directly: each chunk
//     is built with the clock stopped and the pipeline idle, then published
//     and drained with it running. Allocations while building are not
//     counted either. Every chunk is its own batch (flush.min_events), so
//     this also pays a file flush per 64 events.
func BenchmarkPipelineFlowsToFile(b *testing.B) {
	b.Run("input+pipeline", func(b *testing.B) {
		p, c := benchPipeline(b, pipeline.DefaultQueueConfig())
		ctx := context.Background()
		events := make([]pipeline.Event, publishChunk)
		bld := pipeline.NewBuilder(publishChunk*14, publishChunk*72)
		b.ReportAllocs()
		b.ResetTimer()
		cpu0, wall0 := cpuTime(), time.Now()
		for done := 0; done < b.N; {
			n := min(publishChunk, b.N-done)
			bld.Reset()
			for j := range n {
				events[j] = codectest.BuildFlowEvent(bld, done+j)
				events[j].ID = "" // the client computes the id, as for real input events
			}
			if err := c.Publish(ctx, events[:n]...); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		if n := p.Close(ctx); n != 0 {
			b.Fatalf("%d events undelivered", n)
		}
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
		b.ReportMetric(float64(b.N)/wall.Seconds(), "events/s")
	})
	b.Run("pipeline", func(b *testing.B) {
		q := pipeline.DefaultQueueConfig()
		q.Mem.Flush.MinEvents = publishChunk
		p, c := benchPipeline(b, q)
		ctx := context.Background()
		acked := p.Metrics().Counter("pipeline.events.acked")
		events := make([]pipeline.Event, publishChunk)
		bld := pipeline.NewBuilder(publishChunk*14, publishChunk*72)
		var cpu time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		for done := 0; done < b.N; {
			b.StopTimer()
			n := min(publishChunk, b.N-done)
			bld.Reset()
			for j := range n {
				events[j] = codectest.BuildFlowEvent(bld, done+j)
				events[j].ID = ""
			}
			b.StartTimer()
			cpu0 := cpuTime()
			if err := c.Publish(ctx, events[:n]...); err != nil {
				b.Fatal(err)
			}
			done += n
			for acked.Load() < int64(done) {
				// Sleep, not spin: a spinning goroutine would take the one
				// P whenever the worker sits in write(2), and count as
				// pipeline work.
				time.Sleep(50 * time.Microsecond)
			}
			cpu += cpuTime() - cpu0
		}
		b.StopTimer()
		if n := p.Close(ctx); n != 0 {
			b.Fatalf("%d events undelivered", n)
		}
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	})
}

// benchPipeline starts the benchmark's pipeline on one core (restored when
// the benchmark ends) and returns it with the client the input would use.
func benchPipeline(b *testing.B, q pipeline.QueueConfig) (*pipeline.Pipeline, pipeline.Publisher) {
	prev := runtime.GOMAXPROCS(1)
	b.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	procs, err := processor.New(rawList(b, benchProcessors), processor.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte("path: "+b.TempDir()+"\nrotate_every_kb: 102400\nnumber_of_files: 2\n"), &doc)
	g, err := file.New(config.NewRaw(doc.Content[0], "bench.yml", "output.file"), output.Settings{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	p := pipeline.New(pipeline.Settings{
		Agent:      pipeline.AgentInfo{ID: "bench-agent", Name: "bench", Type: "fleutanbeat", Version: "bench", EphemeralID: "e"},
		Processors: procs, Queue: q.Mem, Outputs: g.Clients, BatchSize: g.BatchSize, Encode: codec.AppendFields,
	})
	p.Start()
	return p, p.Client(pipeline.ClientConfig{Input: "flows"})
}
