package flowsinput

import (
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
)

// Report modes.
const (
	ReportAll    = "all"
	ReportActive = "active"
)

// reporter decides, in report: active, which flows of a period get an
// event: a flow that is new, whose delta is not zero, whose state or
// process changed, that ended (its final event), or that was last
// reported heartbeat periods ago. It is pure bookkeeping, fed the library's
// flows and deltas, so that it can be table-tested.
//
// A period is skipped only when its whole Diff delta is zero, so the
// delta of the next reported event is already the sum since the last
// report: exact without keeping an accumulator per flow. What a flow
// keeps is 24 bytes and its 8-byte key.
type reporter struct {
	heartbeat uint32
	// period counts the collections, from 1.
	period uint32
	marks  map[uint64]mark
	// base is the first collection's time: marks keep their times as
	// offsets from it, on the monotonic clock as input.Window does.
	base time.Time
	// seen counts this period's flows that are in marks, to tell whether
	// some flows left without a final event (filtered out, a namespace
	// gone) and marks needs a sweep.
	seen int
}

// mark is what a flow's last report was.
type mark struct {
	// at is the collection time of the last report, in ns since base.
	at int64
	// reported is the period of the last report; seen the last period
	// the flow was collected in.
	reported, seen uint32
	pid            int32
	state          uint8
}

func newReporter(heartbeat int) *reporter {
	return &reporter{heartbeat: uint32(heartbeat), marks: make(map[uint64]mark)}
}

// begin starts a period.
func (r *reporter) begin() {
	r.period++
	r.seen = 0
}

// decide says whether f, with d its delta over this period, gets an event
// in the collection that started at ts, and the time that event covers:
// since the last report, or window for a flow reported for the first time
// (and as the library says for a final one, its lifetime).
func (r *reporter) decide(f *flows.Flow, d flows.FlowDelta, ts time.Time, window time.Duration) (bool, time.Duration) {
	key := f.Cookie
	if key == 0 {
		// No identity to follow it by: always reported.
		return true, window
	}
	var pid int32
	if f.Process != nil {
		pid = int32(f.Process.PID)
	}
	if f.Final {
		// Always reported; its event.duration is its lifetime
		// (flows.Flow.EventDuration).
		r.forget(f)
		return true, window
	}
	if r.base.IsZero() {
		r.base = ts
	}
	now := int64(ts.Sub(r.base))
	old, ok := r.marks[key]
	if ok && old.seen != r.period {
		r.seen++
	}
	m := mark{at: now, reported: r.period, seen: r.period, pid: pid, state: f.State}
	switch {
	case !ok:
		r.seen++
	case d.OK && d.Delta != (flows.Delta{}),
		old.state != f.State,
		old.pid != pid,
		r.period-old.reported >= r.heartbeat:
		window = time.Duration(now - old.at)
	default:
		old.seen = r.period
		r.marks[key] = old
		return false, 0
	}
	r.marks[key] = m
	return true, window
}

// forget drops f's mark: its event was not published (max_flows), so it
// counts as new the next period.
func (r *reporter) forget(f *flows.Flow) {
	if m, ok := r.marks[f.Cookie]; ok {
		delete(r.marks, f.Cookie)
		if m.seen == r.period {
			r.seen--
		}
	}
}

// end finishes a period: marks of flows that were not collected in it
// (they left without a final event the input published) are dropped,
// with one pass over the map only when there are any.
func (r *reporter) end() {
	if len(r.marks) == r.seen {
		return
	}
	for k, m := range r.marks {
		if m.seen != r.period {
			delete(r.marks, k)
		}
	}
}
