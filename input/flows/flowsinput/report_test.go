package flowsinput

import (
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/process"
)

// TestReporterDecides runs one flow through periods of a 10 s window and
// checks, period by period, whether it gets an event and the time that
// event covers.
func TestReporterDecides(t *testing.T) {
	const window = 10 * time.Second
	type step = reportStep
	idle := step{want: -1}
	sent := func(n uint64) step {
		return step{delta: flows.Delta{BytesOut: n, SegsOut: 1}, want: 0}
	}
	tests := []struct {
		name      string
		heartbeat int
		steps     []step
	}{
		{"idle flow: new, then each heartbeat", 3, []step{
			{want: window}, idle, idle, {want: 3 * window}, idle, idle, {want: 3 * window},
		}},
		{"heartbeat 1 reports every period", 1, []step{
			{want: window}, {want: window}, {want: window},
		}},
		{"traffic is reported with the time since the last event", 30, []step{
			{want: window}, idle, sent(100), idle, idle, idle, sent(5), sent(5),
		}},
		{"a retransmission alone is a change", 30, []step{
			{want: window}, idle, {delta: flows.Delta{Retrans: 1}, want: 2 * window},
		}},
		{"a segment alone (a pure ACK) is a change", 30, []step{
			{want: window}, {delta: flows.Delta{SegsIn: 1}, want: window},
		}},
		{"traffic restarts the heartbeat", 3, []step{
			{want: window}, idle, sent(1), idle, idle, {want: 3 * window},
		}},
		{"state change", 30, []step{
			{flow: flows.Flow{State: 1}, want: window}, {flow: flows.Flow{State: 1}, want: -1},
			{flow: flows.Flow{State: 8}, want: 2 * window}, {flow: flows.Flow{State: 8}, want: -1},
		}},
		{"process found later", 30, []step{
			{want: window}, {flow: flows.Flow{Process: &process.Process{PID: 42}}, want: window},
			{flow: flows.Flow{Process: &process.Process{PID: 42}}, want: -1},
		}},
		{"final event always, with its lifetime", 30, []step{
			{want: window}, idle, {flow: flows.Flow{Final: true}, want: window},
		}},
		{"a flow that comes back after leaving is new", 30, []step{
			{want: window}, {gone: true}, {want: window}, idle,
		}},
		{"no cookie: always reported", 30, []step{
			{flow: flows.Flow{Cookie: 0, Netns: 1}, want: window}, {flow: flows.Flow{Cookie: 0, Netns: 1}, want: window},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReporter(tt.heartbeat)
			t0 := time.Unix(1_700_000_000, 0)
			other := flows.Flow{Cookie: 99}
			for i, s := range tt.steps {
				ts := t0.Add(time.Duration(i) * window)
				r.begin()
				// A second, idle flow shares every period: its mark must
				// not disturb this one's.
				r.decide(&other, flows.FlowDelta{}, ts, window)
				if s.gone {
					r.end()
					continue
				}
				f := s.flow
				if f.Cookie == 0 && f.Netns == 0 {
					f.Cookie = 7
				}
				d := flows.FlowDelta{OK: s.delta != (flows.Delta{}), Delta: s.delta}
				due, covers := r.decide(&f, d, ts, window)
				want := s.want
				if want == 0 {
					// Since the last event of this flow.
					want = ts.Sub(lastEvent(t, tt.steps[:i], t0, window))
				}
				if due != (want >= 0) || (due && covers != want) {
					t.Errorf("period %d: reported %v covering %v, want reported %v covering %v", i, due, covers, want >= 0, want)
				}
				r.end()
			}
			if n := len(r.index); n > 2 {
				t.Errorf("%d marks after the run, want at most 2", n)
			}
		})
	}
}

// reportStep is one period of a flow in TestReporterDecides; want is the
// time its event covers, -1 for no event, 0 for "since its last event".
type reportStep struct {
	flow  flows.Flow  // Cookie 7 unless set
	delta flows.Delta // with OK set when not zero
	gone  bool        // not collected this period
	want  time.Duration
}

// lastEvent is when the steps last reported the flow.
func lastEvent(t *testing.T, steps []reportStep, t0 time.Time, window time.Duration) time.Time {
	t.Helper()
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].want != -1 && !steps[i].gone {
			return t0.Add(time.Duration(i) * window)
		}
	}
	t.Fatal("no earlier event")
	return time.Time{}
}

// TestReporterForgetsGoneFlows: marks of flows that left without a final
// event are dropped at the end of the period, so the map holds only
// flows that are live.
func TestReporterForgetsGoneFlows(t *testing.T) {
	r := newReporter(30)
	ts := time.Unix(1_700_000_000, 0)
	for p := range 5 {
		r.begin()
		// Period p collects the flows p*10 .. p*10+99.
		for c := p * 10; c < p*10+100; c++ {
			f := flows.Flow{Cookie: uint64(c + 1)}
			r.decide(&f, flows.FlowDelta{}, ts, time.Second)
		}
		r.end()
		if len(r.index) != 100 {
			t.Fatalf("period %d: %d marks, want 100", p, len(r.index))
		}
	}
	r.begin()
	final := flows.Flow{Cookie: 41, Final: true}
	if due, _ := r.decide(&final, flows.FlowDelta{}, ts, time.Second); !due {
		t.Error("final event skipped")
	}
	r.forget(&flows.Flow{Cookie: 42})
	r.end()
	if _, ok := r.index[41]; ok || len(r.index) != 0 {
		t.Errorf("marks after a period that collected nothing: %d (41 kept: %v)", len(r.index), ok)
	}
}
