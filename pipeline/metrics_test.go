package pipeline

import (
	"context"
	"errors"
	"testing"
)

// TestOutputCountersFollowEveryOutcome publishes 20 events through an
// output that, in its first call, stores n%5==0 new, n%5==1 as
// duplicates, n%5==2 in the dead-letter index, drops n%5==3 and asks to
// retry n%5==4; the retried events then fail with an error once and are
// stored by the third call. Every libbeat.output.events counter must
// match, with total = acked + duplicates + dead_letter + dropped + failed.
func TestOutputCountersFollowEveryOutcome(t *testing.T) {
	out := &recordOutput{ids: map[string]int{}, fail: func(call int, b *Batch) error {
		switch call {
		case 1:
			for i := range b.Events {
				switch b.Events[i].Fields["n"].(int) % 5 {
				case 0:
					b.Ack(i)
				case 1:
					b.AckDuplicate(i)
				case 2:
					b.AckDeadLetter(i)
				case 3:
					b.Drop(i, "mapping_conflict")
				case 4:
					b.Retry(i)
				}
			}
			return nil
		case 2:
			return errors.New("connection reset")
		}
		return nil
	}}
	m := NewMetrics()
	p := New(Settings{Metrics: m, Queue: queueCfg(100, 20, 0), Outputs: []Output{out}, BatchSize: 20,
		RetryInit: 1, RetryMax: 1})
	c := p.Client(ClientConfig{})
	events := make([]Event, 20)
	for i := range events {
		events[i] = Event{Fields: M{"n": i}}
	}
	if err := c.Publish(context.Background(), events...); err != nil {
		t.Fatal(err)
	}
	// Queued before the worker starts, so the first batch holds all 20.
	p.Start()
	if n := p.Close(context.Background()); n != 0 {
		t.Fatalf("undelivered = %d", n)
	}
	want := map[string]int64{
		MetricOutputBatches:     3,
		MetricOutputTotal:       20 + 4 + 4,
		MetricOutputAcked:       4 + 4,
		MetricOutputDuplicates:  4,
		MetricOutputDeadLetter:  4,
		MetricOutputDropped:     4,
		MetricOutputFailed:      4 + 4,
		MetricOutputActive:      0,
		"pipeline.events.acked": 16,
	}
	got := map[string]int64{}
	for _, s := range m.Snapshot() {
		got[s.Name] = s.N
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %d, want %d", name, got[name], w)
		}
	}
	if got[MetricOutputLatencySum] < got[MetricOutputLatencyMax] || got[MetricOutputLatencyMax] < 0 {
		t.Errorf("latency sum %d < max %d", got[MetricOutputLatencySum], got[MetricOutputLatencyMax])
	}
}

// TestTextMetricsInEveryView: a text is in the snapshot once set, as a
// string in the /stats tree.
func TestTextMetricsInEveryView(t *testing.T) {
	m := NewMetrics()
	method := m.Text("input.cpu.method")
	m.Counter("input.cpu.events").Add(3)
	for _, s := range m.Snapshot() {
		if s.IsText {
			t.Fatalf("unset text reported: %+v", s)
		}
	}
	method.Set("ebpf")
	tree := m.Tree()
	if v, _ := tree.GetValue("input.cpu.method"); v != "ebpf" {
		t.Errorf("tree method = %v, want ebpf", v)
	}
	if v, _ := tree.GetValue("input.cpu.events"); v != int64(3) {
		t.Errorf("tree events = %v, want 3", v)
	}
}
