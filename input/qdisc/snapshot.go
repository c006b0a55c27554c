package qdisc

import (
	"slices"
	"time"
)

// Snapshot is one collection: the qdiscs and classes of every selected
// device with cumulative counters, the flows behind each TX queue over the
// period, and the facts Diff needs. It shares nothing with the collector:
// keep it as long as needed.
type Snapshot struct {
	// Time is when the collection started.
	Time time.Time `json:"time"`
	// Qdiscs are the qdiscs and classes (Scope), device by device.
	Qdiscs []Qdisc `json:"qdiscs"`
	// QueueFlows are, with an Xmit counter, the top flows of each TX queue
	// over the period since the previous collection, then one Other flow
	// per queue for the rest.
	QueueFlows []QueueFlow `json:"queue_flows,omitempty"`
	// Namespaces are the network namespaces this collection visited.
	Namespaces []Namespace `json:"namespaces"`
	// Held are the qdiscs of namespaces whose dump failed, as last read:
	// not reported, kept as the reference of their next deltas.
	Held []Qdisc `json:"held,omitempty"`
	// Evictions counts the flow entries the kernel evicted from the full
	// eBPF map during the period: their traffic since the previous
	// collection is lost.
	Evictions int64 `json:"ebpf_evictions"`
}

// Namespace is one network namespace a collection visited.
type Namespace struct {
	Inode uint64 `json:"inode"`
	Name  string `json:"name,omitempty"`
	Path  string `json:"path,omitempty"`
	// Previous is when the last good collection of this namespace before
	// this one started, zero if there was none since it appeared: then
	// its qdiscs that are new now were created since (Diff gives them
	// their whole count over that time).
	Previous time.Time `json:"previous,omitempty"`
	// Failed: its dump failed in this collection; it contributes no
	// qdiscs (they are in Held).
	Failed bool `json:"failed,omitempty"`
}

// QdiscDelta is the change of a qdisc's or class's counters over the time
// since its previous reading. OK is false at the first collection of its
// namespace.
type QdiscDelta struct {
	OK    bool     `json:"ok"`
	Delta Counters `json:"delta"`
	// Reset: the counters went backwards (the qdisc was deleted and added
	// again with the same handle); Delta is the new cumulative value.
	Reset bool `json:"reset,omitempty"`
	// Elapsed is the time Delta covers, in nanoseconds.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Diff returns the delta of each qdisc of cur (same index as cur.Qdiscs)
// since prev, the collection before cur of the same collector. A series
// is a (namespace, device, scope, handle, parent, kind). A zero prev gives
// the results of a first collection: no deltas.
func Diff(prev, cur Snapshot) []QdiscDelta {
	out := make([]QdiscDelta, len(cur.Qdiscs))
	ref := make(map[key]*Qdisc, len(prev.Qdiscs)+len(prev.Held))
	for _, list := range [][]Qdisc{prev.Qdiscs, prev.Held} {
		for i := range list {
			ref[list[i].key()] = &list[i]
		}
	}
	// A namespace's earlier collection counts when prev visited it.
	since := make(map[uint64]time.Time, len(cur.Namespaces))
	for _, ns := range cur.Namespaces {
		if !ns.Previous.IsZero() && slices.ContainsFunc(prev.Namespaces, func(p Namespace) bool { return p.Inode == ns.Inode }) {
			since[ns.Inode] = ns.Previous
		}
	}
	for i := range cur.Qdiscs {
		s := &cur.Qdiscs[i]
		if p, ok := ref[s.key()]; ok {
			d, reset := delta(s.Counters, p.Counters)
			out[i] = QdiscDelta{OK: true, Delta: d, Reset: reset, Elapsed: s.Time.Sub(p.Time)}
			continue
		}
		if t, ok := since[s.Device.Netns]; ok {
			// Born during the period (a new device or qdisc).
			out[i] = QdiscDelta{OK: true, Delta: s.Counters, Elapsed: s.Time.Sub(t)}
		}
	}
	return out
}
