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

// BenchmarkPipelineFlowsToFile is the agent's hot path on one core: a flow
// event is built, decorated, run through add_host_metadata, a drop_event
// that does not match and a rename, given an id, queued, encoded and written
// to the file output. It reports events per CPU-second with GOMAXPROCS=1,
// with and without the cost of building the event (the input's share), and
// allocations per event.
func BenchmarkPipelineFlowsToFile(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
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
	q := pipeline.DefaultQueueConfig()
	p := pipeline.New(pipeline.Settings{
		Agent:      pipeline.AgentInfo{ID: "bench-agent", Name: "bench", Type: "fleutanbeat", Version: "bench", EphemeralID: "e"},
		Processors: procs, Queue: q.Mem, Outputs: g.Clients, BatchSize: g.BatchSize, Encode: codec.AppendFields,
	})
	p.Start()
	c := p.Client(pipeline.ClientConfig{Input: "flows"})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := 0; i < b.N; i++ {
		e := codectest.FlowEvent(i)
		e.ID = "" // the client computes the id, as for real input events
		if err := c.Publish(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	if n := p.Close(ctx); n != 0 {
		b.Fatalf("%d events undelivered", n)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.StopTimer()
	// The input's own work, building the event maps, measured alone in
	// the same run, so the pipeline's share can be reported apart.
	build0 := cpuTime()
	for i := 0; i < b.N; i++ {
		sink = codectest.FlowEvent(i)
	}
	build := cpuTime() - build0
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(b.N)/(cpu-build).Seconds(), "pipeline-events/cpu-s")
	b.ReportMetric(float64(b.N)/wall.Seconds(), "events/s")
}

var sink pipeline.Event
