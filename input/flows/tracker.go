package flows

import (
	"github.com/fleutan/fleutanbeat/input/internal/tcplife"
)

// Tracker follows every TCP connection from its first state change to its
// close with eBPF on the sock:inet_sock_set_state tracepoint (see the
// package doc). Give it to a Collector with Options.Tracker.
type Tracker struct {
	t *tcplife.Tracker
}

// TrackerOptions configure a Tracker.
type TrackerOptions struct {
	// MaxConnections is how many open connections the kernel map holds
	// (65,536 when 0; about 100 bytes each, allocated up front); more are
	// counted in TrackerStats.MapFull and still reported at their close,
	// without their process.
	MaxConnections int
	// MaxPending is how many closed connections are held between two
	// collections (262,144 when 0); more are counted in
	// TrackerStats.PendingFull.
	MaxPending int
}

// TrackerStats count what the tracker lost since it was opened.
type TrackerStats struct {
	// RingFull: closed connections the kernel could not queue.
	RingFull uint64 `json:"dropped_ring_full"`
	// MapFull: connections not tracked because the map was full.
	MapFull uint64 `json:"dropped_map_full"`
	// PendingFull: closed connections dropped because MaxPending of them
	// were waiting already.
	PendingFull uint64 `json:"dropped_pending_full"`
	// BadRecords: records that did not decode.
	BadRecords uint64 `json:"bad_records"`
}

// ErrTrackerNotSupported is what OpenTracker's error wraps where the
// program cannot run: not Linux, a kernel before 5.12 or without BTF,
// tp_btf or ring buffers, or no permission to load it.
var ErrTrackerNotSupported = tcplife.ErrNotSupported

// OpenTracker loads and attaches the eBPF program. It needs CAP_BPF and
// CAP_PERFMON (or CAP_SYS_ADMIN).
func OpenTracker(o TrackerOptions) (*Tracker, error) {
	t, err := tcplife.Open(tcplife.Options{MaxConnections: o.MaxConnections, MaxPending: o.MaxPending})
	if err != nil {
		return nil, err
	}
	return &Tracker{t: t}, nil
}

// Stats says what was lost since OpenTracker.
func (t *Tracker) Stats() TrackerStats {
	s := t.t.Stats()
	return TrackerStats{RingFull: s.RingFull, MapFull: s.MapFull, PendingFull: s.PendingFull, BadRecords: s.BadRecords}
}

// Close detaches the program and frees its maps.
func (t *Tracker) Close() error { return t.t.Close() }
