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
// report: exact without keeping an accumulator per flow. A flow keeps a
// 24-byte mark and a 12-byte index entry (BenchmarkReporter).
type reporter struct {
	heartbeat uint32
	// period counts the collections, from 1.
	period uint32
	// index maps a flow's socket cookie to its mark in marks; a slot
	// whose flow left is listed in free. An index of int32 rather than a
	// map of marks: a flow unchanged since its last event costs one
	// lookup, its mark is updated in place, and the map holds no pointers
	// for the GC to scan.
	index map[uint64]int32
	marks []mark
	free  []int32
	// base is the first collection's time: marks keep their times as
	// offsets from it, on the monotonic clock as input.Window does.
	base time.Time
	// seen counts this period's flows that have a mark, to tell whether
	// some flows left without a final event (filtered out, a namespace
	// gone) and the index needs a sweep.
	seen int
}

// mark is what a flow's last event was.
type mark struct {
	// at is the collection time of the last event, in ns since base.
	at int64
	// reported is the period of the last event; seen the last period
	// the flow was collected in.
	reported, seen uint32
	pid            int32
	state          uint8
}

func newReporter(heartbeat int) *reporter {
	return &reporter{heartbeat: uint32(heartbeat), index: make(map[uint64]int32)}
}

// begin starts a period.
func (r *reporter) begin() {
	r.period++
	r.seen = 0
}

// decide says whether f, with d its delta over this period, gets an event
// in the collection that started at ts, and the time that event covers:
// since the flow's last event, or window for a flow reported for the
// first time (a final event's event.duration is its lifetime, which
// BuildEvent takes from the flow).
func (r *reporter) decide(f *flows.Flow, d flows.FlowDelta, ts time.Time, window time.Duration) (bool, time.Duration) {
	key := f.Cookie
	if key == 0 {
		// No identity to follow it by: always reported.
		return true, window
	}
	if f.Final {
		r.forget(f)
		return true, window
	}
	if r.base.IsZero() {
		r.base = ts
	}
	now := int64(ts.Sub(r.base))
	var pid int32
	if f.Process != nil {
		pid = int32(f.Process.PID)
	}
	j, ok := r.index[key]
	if !ok {
		r.add(key, mark{at: now, reported: r.period, seen: r.period, pid: pid, state: f.State})
		r.seen++
		return true, window
	}
	m := &r.marks[j]
	if m.seen != r.period {
		m.seen = r.period
		r.seen++
	}
	if (d.OK && d.Delta != flows.Delta{}) || m.state != f.State || m.pid != pid || r.period-m.reported >= r.heartbeat {
		since := time.Duration(now - m.at)
		m.at, m.reported, m.pid, m.state = now, r.period, pid, f.State
		return true, since
	}
	return false, 0
}

func (r *reporter) add(key uint64, m mark) {
	if n := len(r.free); n > 0 {
		j := r.free[n-1]
		r.free = r.free[:n-1]
		r.marks[j] = m
		r.index[key] = j
		return
	}
	r.index[key] = int32(len(r.marks))
	r.marks = append(r.marks, m)
}

// forget drops f's mark: it ended, or its event was not published
// (max_flows), so that it counts as new the next period.
func (r *reporter) forget(f *flows.Flow) {
	j, ok := r.index[f.Cookie]
	if !ok {
		return
	}
	if r.marks[j].seen == r.period {
		r.seen--
	}
	delete(r.index, f.Cookie)
	r.free = append(r.free, j)
}

// end finishes a period: marks of flows that were not collected in it
// (they left without a final event the input published) are dropped,
// with one pass over the index only when there are any.
func (r *reporter) end() {
	if len(r.index) == r.seen {
		return
	}
	for k, j := range r.index {
		if r.marks[j].seen != r.period {
			delete(r.index, k)
			r.free = append(r.free, j)
		}
	}
}
