package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

// recordOutput stores what it acks and can be told to fail, drop or block.
type recordOutput struct {
	mu      sync.Mutex
	ids     map[string]int
	fail    func(call int, b *Batch) error
	calls   atomic.Int64
	block   chan struct{}
	blocked atomic.Int64
	closed  atomic.Int64
}

func (o *recordOutput) Publish(ctx context.Context, b *Batch) error {
	call := int(o.calls.Add(1))
	if o.block != nil {
		o.blocked.Add(1)
		select {
		case <-o.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var err error
	if o.fail != nil {
		err = o.fail(call, b)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range b.Events {
		st, _ := b.Status(i)
		if (st == Pending && err == nil) || st == Acked {
			o.ids[b.Events[i].ID]++
		}
	}
	return err
}

func (o *recordOutput) Close() error { o.closed.Add(1); return nil }

func queueCfg(events, min int, timeout time.Duration) MemQueueConfig {
	var c MemQueueConfig
	c.Events = events
	c.Flush.MinEvents = min
	c.Flush.Timeout = config.Duration(timeout)
	return c
}

func counter(m *Metrics, name string) int64 { return m.Counter(name).Load() }

func TestPipelineAcksEveryEventOnceUnderConcurrentInputs(t *testing.T) {
	out := &recordOutput{ids: map[string]int{}}
	// Every third call fails as a whole, every fifth acks only half: the
	// rest must come back exactly once.
	out.fail = func(call int, b *Batch) error {
		switch {
		case call%3 == 0:
			return errors.New("injected")
		case call%5 == 0:
			for i := b.Len() / 2; i < b.Len(); i++ {
				b.Retry(i)
			}
		}
		return nil
	}
	m := NewMetrics()
	p := New(Settings{Metrics: m, Agent: AgentInfo{ID: "a1"}, Queue: queueCfg(64, 8, 5*time.Millisecond),
		Outputs: []Output{out, out}, BatchSize: 16, RetryInit: time.Millisecond, RetryMax: 2 * time.Millisecond})
	p.Start()
	const inputs, perInput = 8, 500
	var wg sync.WaitGroup
	base := time.Unix(1700000000, 0)
	for in := 0; in < inputs; in++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := p.Client(ClientConfig{Input: fmt.Sprint("in", in)})
			for i := 0; i < perInput; i++ {
				e := Event{Timestamp: base, Fields: M{"event": M{"dataset": "t"}}, Series: fmt.Sprintf("%d/%d", in, i)}
				if err := c.Publish(context.Background(), e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n := p.Close(ctx); n != 0 {
		t.Fatalf("undelivered = %d, want 0", n)
	}
	if len(out.ids) != inputs*perInput {
		t.Fatalf("distinct acked ids = %d, want %d", len(out.ids), inputs*perInput)
	}
	for id, n := range out.ids {
		if n != 1 {
			t.Fatalf("id %s acked %d times", id, n)
		}
	}
	if got := counter(m, "pipeline.events.acked"); got != inputs*perInput {
		t.Errorf("acked counter = %d", got)
	}
	if got := counter(m, "pipeline.events.published"); got != inputs*perInput {
		t.Errorf("published counter = %d", got)
	}
	if counter(m, "pipeline.events.retried") == 0 {
		t.Error("retried counter stayed 0 although batches failed")
	}
	if out.closed.Load() != 2 {
		t.Errorf("output closed %d times, want once per worker", out.closed.Load())
	}
}

func TestPipelineDropsAreCountedPerReason(t *testing.T) {
	out := &recordOutput{ids: map[string]int{}, fail: func(_ int, b *Batch) error {
		for i := range b.Events {
			if b.Events[i].Fields["n"].(int)%2 == 1 {
				b.Drop(i, "mapping_conflict")
			}
		}
		return nil
	}}
	m := NewMetrics()
	p := New(Settings{Metrics: m, Queue: queueCfg(100, 1, 0), Outputs: []Output{out}, BatchSize: 10})
	p.Start()
	c := p.Client(ClientConfig{})
	for i := 0; i < 10; i++ {
		if err := c.Publish(context.Background(), Event{Fields: M{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Close(context.Background()); n != 0 {
		t.Fatalf("undelivered = %d", n)
	}
	if got := m.LabeledCounter("pipeline.events.dropped", "reason", "mapping_conflict").Load(); got != 5 {
		t.Errorf("dropped{mapping_conflict} = %d, want 5", got)
	}
	tree := m.Tree()
	if v, _ := tree.GetValue("pipeline.events.dropped.mapping_conflict"); v != int64(5) {
		t.Errorf("stats tree dropped = %v", v)
	}
}

func TestPipelineBackpressureBlocksInputsWithBoundedQueue(t *testing.T) {
	out := &recordOutput{ids: map[string]int{}, block: make(chan struct{})}
	m := NewMetrics()
	const qsize, batch = 32, 8
	p := New(Settings{Metrics: m, Queue: queueCfg(qsize, 1, 0), Outputs: []Output{out}, BatchSize: batch})
	p.Start()
	c := p.Client(ClientConfig{})
	var published atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if err := c.Publish(ctx, Event{Fields: M{"n": i}}); err != nil {
				errc <- err
				return
			}
			published.Add(1)
		}
	}()
	// Wait until the producer is stuck: the queue is full and one batch is
	// held by the blocked output.
	deadline := time.Now().Add(10 * time.Second)
	for published.Load() < qsize+1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got, max := published.Load(), int64(qsize+batch); got > max {
		t.Fatalf("producer published %d events with a blocked output; bound is queue+batch = %d", got, max)
	}
	if p.queue.Len() != qsize {
		t.Fatalf("queue holds %d, want full (%d)", p.queue.Len(), qsize)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Publish returned %v, want context.Canceled", err)
	}
	close(out.block)
	if n := p.Close(context.Background()); n != 0 {
		t.Fatalf("undelivered = %d", n)
	}
	if int64(len(out.ids)) != published.Load() {
		t.Fatalf("delivered %d of %d", len(out.ids), published.Load())
	}
}

func TestPipelineShutdownReportsUndeliveredAfterDeadline(t *testing.T) {
	out := &recordOutput{ids: map[string]int{}, block: make(chan struct{})}
	p := New(Settings{Queue: queueCfg(100, 1, 0), Outputs: []Output{out}, BatchSize: 10})
	p.Start()
	c := p.Client(ClientConfig{})
	for i := 0; i < 50; i++ {
		if err := c.Publish(context.Background(), Event{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if n := p.Close(ctx); n != 50 {
		t.Fatalf("undelivered = %d, want 50", n)
	}
	if err := c.Publish(context.Background(), Event{}); !errors.Is(err, ErrQueueClosed) {
		t.Fatalf("Publish after Close = %v, want ErrQueueClosed", err)
	}
}

func TestPipelineProcessorsFilterAndDecorate(t *testing.T) {
	out := &recordOutput{ids: map[string]int{}}
	m := NewMetrics()
	var got []Event
	var mu sync.Mutex
	out.fail = func(_ int, b *Batch) error {
		mu.Lock()
		got = append(got, b.Events...)
		mu.Unlock()
		return nil
	}
	p := New(Settings{Metrics: m, Agent: AgentInfo{ID: "id1", Name: "h", Type: "fleutanbeat", Version: "1.0"},
		Processors: []Processor{dropIf{"drop"}}, Tags: []string{"t1"}, Fields: M{"env": "prod"},
		Queue: queueCfg(10, 1, 0), Outputs: []Output{out}})
	p.Start()
	c := p.Client(ClientConfig{Processors: []Processor{dropIf{"local"}}})
	ts := time.Unix(1, 0)
	_ = c.Publish(context.Background(),
		Event{Timestamp: ts, Fields: M{"event": M{"dataset": "fleutan.flows"}}, Series: "s1"},
		Event{Timestamp: ts, Fields: M{"drop": true}},
		Event{Timestamp: ts, Fields: M{"local": true}})
	p.Close(context.Background())
	if len(got) != 1 {
		t.Fatalf("got %d events, want 1", len(got))
	}
	f := got[0].Fields
	for key, want := range map[string]any{
		"agent.id": "id1", "agent.type": "fleutanbeat", "data_stream.dataset": "fleutan.flows",
		"data_stream.type": "metrics", "data_stream.namespace": "default", "fields.env": "prod",
	} {
		if v, _ := f.GetValue(key); v != want {
			t.Errorf("%s = %v, want %v", key, v, want)
		}
	}
	if counter(m, "pipeline.events.filtered") != 2 {
		t.Errorf("filtered = %d, want 2", counter(m, "pipeline.events.filtered"))
	}
}

type dropIf struct{ key string }

func (d dropIf) Run(e *Event) (*Event, error) {
	if _, ok := e.Fields[d.key]; ok {
		return nil, nil
	}
	return e, nil
}
func (d dropIf) String() string { return "drop_if" }

func TestEventIDIsDeterministicPerSeries(t *testing.T) {
	p := New(Settings{Agent: AgentInfo{ID: "agent-1", EphemeralID: "run-1"}})
	ts := time.Unix(1700000000, 123)
	mk := func(series string) *Event {
		return &Event{Timestamp: ts, Fields: M{"event": M{"dataset": "fleutan.flows"}}, Dataset: "fleutan.flows", Series: series}
	}
	a, b := p.eventID(mk("tcp|1|2"), 1), p.eventID(mk("tcp|1|2"), 99)
	// Pinned: an id that changed between versions would make a replayed
	// disk queue or a retried bulk request index a second document.
	if want := "myMLcrpa9xN9x7-Mj-E_WQ"; a != want {
		t.Errorf("id %s, want %s as every earlier version computed", a, want)
	}
	if a != b {
		t.Errorf("same series, different ids: %s %s", a, b)
	}
	if c := p.eventID(mk("tcp|1|3"), 1); c == a {
		t.Error("different series share an id")
	}
	p2 := New(Settings{Agent: AgentInfo{ID: "agent-2", EphemeralID: "run-1"}})
	if p2.eventID(mk("tcp|1|2"), 1) == a {
		t.Error("different agents share an id")
	}
	if p.eventID(mk(""), 1) == p.eventID(mk(""), 2) {
		t.Error("events without series must get distinct ids")
	}
	if len(a) != 22 {
		t.Errorf("id %q has length %d, want 22", a, len(a))
	}
}

func TestMGetPutDelete(t *testing.T) {
	tests := []struct {
		name string
		run  func(m M) any
		want any
	}{
		{"put creates path", func(m M) any { m.Put("a.b.c", 1); v, _ := m.GetValue("a.b.c"); return v }, 1},
		{"put replaces scalar in the way", func(m M) any { m.Put("x.y", 2); v, _ := m.GetValue("x.y"); return v }, 2},
		{"get missing", func(m M) any { _, ok := m.GetValue("nope.deeper"); return ok }, false},
		{"get through scalar", func(m M) any { _, ok := m.GetValue("x.z"); return ok }, false},
		{"delete existing", func(m M) any { return m.Delete("s.t") }, true},
		{"delete missing", func(m M) any { return m.Delete("s.u.v") }, false},
		{"put plain map converts", func(m M) any {
			m.Put("p", map[string]any{"q": map[string]any{"r": 3}})
			v, _ := m.GetValue("p.q.r")
			return v
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := M{"x": "scalar", "s": map[string]any{"t": 1}}
			if got := tt.run(m); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMCloneIsDeep(t *testing.T) {
	a := M{"h": M{"n": "x"}}
	b := a.Clone()
	b.Put("h.n", "y")
	if v, _ := a.GetValue("h.n"); v != "x" {
		t.Fatal("clone shares nested map")
	}
}

func TestQueueConfigValidate(t *testing.T) {
	c := DefaultQueueConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Mem.Events = 10
	c.Mem.Flush.MinEvents = 20
	err := c.Validate()
	if err == nil || err.Error() != "mem.flush.min_events: 20 is larger than queue.mem.events (10)" {
		t.Fatalf("got %v", err)
	}
}

// TestPublishRetainsNothingOfTheEvents: once Publish returns, the input may
// reuse its objects (Builder.Reset) and its slice, encoded or not.
func TestPublishRetainsNothingOfTheEvents(t *testing.T) {
	jsonFields := func(dst []byte, fields M) []byte {
		b, _ := json.Marshal(fields)
		return append(dst, b...)
	}
	for _, tc := range []struct {
		name   string
		encode func([]byte, M) []byte
	}{{"encoded", jsonFields}, {"maps", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var docs []string
			out := &recordOutput{ids: map[string]int{}}
			out.fail = func(_ int, b *Batch) error {
				mu.Lock()
				defer mu.Unlock()
				for _, e := range b.Events {
					if e.Fields != nil {
						e.Body = jsonFields(nil, e.Fields)
					}
					docs = append(docs, string(e.Body))
				}
				return nil
			}
			// The output only runs after Close: the queue holds the events
			// while their memory is reused.
			p := New(Settings{Queue: queueCfg(10, 10, time.Hour), Outputs: []Output{out}, Encode: tc.encode})
			c := p.Client(ClientConfig{})
			b := NewBuilder(4, 8)
			mk := func(name string, n uint64) Event {
				return Event{Timestamp: time.Unix(1, 0), Fields: M{"x": b.Object(String("name", name), Uint64("n", n))}}
			}
			evs := []Event{mk("first", 1), mk("second", 2)}
			root := evs[0].Fields
			if err := c.Publish(context.Background(), evs...); err != nil {
				t.Fatal(err)
			}
			b.Reset()
			evs[0], evs[1] = mk("clobbered", 9), mk("clobbered", 9)
			root["x"] = "clobbered"
			p.Start()
			p.Close(context.Background())
			want := []string{`"x":{"n":1,"name":"first"}`, `"x":{"n":2,"name":"second"}`}
			if len(docs) != 2 || !strings.Contains(docs[0], want[0]) || !strings.Contains(docs[1], want[1]) {
				t.Errorf("delivered %q, want documents with %q", docs, want)
			}
		})
	}
}
