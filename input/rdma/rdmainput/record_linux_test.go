package rdmainput

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu/cpuinput"
	"github.com/fleutan/fleutanbeat/input/rdma/rxetest"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// RecordPrefix starts each line TestRecordRpingEvents prints: the kernel
// matrix brings the guest's output back, and these lines, prefix removed,
// are kibana/testdata/rdma-events.ndjson.
const RecordPrefix = "@@FBT-RDMA-RECORD "

// Record is one recorded event: the series the pipeline derives its id
// from, and the event as the agent's codec writes it.
type Record struct {
	Series string          `json:"series"`
	Event  json.RawMessage `json:"event"`
}

// TestRecordRpingEvents records what the rdma and cpu inputs publish,
// period by period, while rping's client and server run over soft-RoCE
// and after both are killed: the only real fleutan.rdma documents there
// are, since RDMA runs only in the kernel matrix's guest and
// Elasticsearch only on the host. The Kibana tests index them into a real
// Elasticsearch. It runs when FLEUTANBEAT_RDMA_RECORD=1 (kernels.sh
// passes that variable into the guest) and says what it recorded; the
// figures are asserted where they are used.
func TestRecordRpingEvents(t *testing.T) {
	if os.Getenv("FLEUTANBEAT_RDMA_RECORD") != "1" {
		t.Skip("records events only with FLEUTANBEAT_RDMA_RECORD=1 (see kibana/testdata/README.md)")
	}
	rxetest.New(t)
	srv := rxetest.StartRping(t, "-s", "-a", rxetest.AddrA, "-p", "7474", "-C", "100000000")
	time.Sleep(500 * time.Millisecond)
	cli := rxetest.StartRping(t, "-c", "-a", rxetest.AddrA, "-p", "7474", "-C", "100000000")
	cli.WaitLines(t, 3, time.Minute)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := input.Settings{Logger: log, ProcRoot: "/proc", SysRoot: "/sys", DataPath: t.TempDir(), Metrics: pipeline.NewMetrics()}
	c := DefaultConfig()
	c.Period = config.Duration(time.Second)
	rin := newInput(c, s)
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("period: 1s\n"), &doc); err != nil {
		t.Fatal(err)
	}
	cin, err := cpuinput.New(config.NewRaw(doc.Content[0], "test.yml", "fleutanbeat.inputs.1"), s)
	if err != nil {
		t.Fatal(err)
	}
	rrec, crec := &periods{}, &periods{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range []struct {
		in  input.Input
		rec *periods
	}{{rin, rrec}, {cin, crec}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.in.Run(ctx, r.rec); err != nil && ctx.Err() == nil {
				t.Errorf("run: %v", err)
			}
		}()
	}
	// Five periods of traffic after the first (which has no deltas), then
	// both ends killed and three more periods for the final events.
	rrec.wait(t, ctx, 6)
	crec.wait(t, ctx, 5)
	cli.Signal(t, syscall.SIGKILL)
	srv.Signal(t, syscall.SIGKILL)
	_ = cli.Wait(10 * time.Second)
	_ = srv.Wait(10 * time.Second)
	rrec.wait(t, ctx, rrec.count()+3)
	cancel()
	wg.Wait()

	var n int
	for _, rec := range []*periods{rrec, crec} {
		for i := range rec.events {
			e := &rec.events[i]
			b, err := json.Marshal(Record{Series: e.Series, Event: codec.AppendEvent(nil, e, codec.Options{})})
			if err != nil {
				t.Fatal(err)
			}
			fmt.Println(RecordPrefix + string(b))
			n++
		}
	}
	t.Logf("recorded %d events: %d rdma in %d periods, %d cpu; rping client pid %d, server pid %d",
		n, len(rrec.events), rrec.count(), len(crec.events), cli.Cmd.Process.Pid, srv.Cmd.Process.Pid)
}

// periods keeps the published events and counts the collections by their
// distinct timestamps.
type periods struct {
	mu     sync.Mutex
	events []pipeline.Event
	last   time.Time
	n      int
}

func (p *periods) Publish(_ context.Context, evs ...pipeline.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range pipeline.CloneEvents(evs) {
		if !e.Timestamp.Equal(p.last) {
			p.last = e.Timestamp
			p.n++
		}
		p.events = append(p.events, e)
	}
	return nil
}

func (p *periods) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *periods) wait(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for p.count() < n {
		if ctx.Err() != nil {
			t.Fatalf("%d collections published, want %d", p.count(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
