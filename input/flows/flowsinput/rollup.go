package flowsinput

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/ecsfields"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// ScopeProcess is fleutan.flow.scope of a per-process rollup event. Flow
// events carry no scope: at thousands per period a constant field would
// cost bytes on every document for nothing.
const ScopeProcess = "process"

// maxState bounds the socket states a rollup counts by number
// (linux/tcp_states.h ends at TCP_BOUND_INACTIVE, 13); a later kernel's
// state counts as unknown.
const maxState = 16

// rollup sums one process's flows over one period: every flow the filter
// keeps, whether or not report: active gave it an event and whether or
// not max_flows dropped it, so the figures are the same in both report
// modes.
//
// The deltas are the sums of the flows' Diff deltas for this period: the
// change of each flow's counters since the previous collection (a flow
// born in the period from zero, a final flow its change up to its close,
// a flow without a delta, such as one present at the first collection,
// nothing). In report: all that is the sum of the delta of the process's
// flow events of the same collection; in report: active too, since a
// skipped flow's delta is zero.
type rollup struct {
	proc *process.Process
	// flows counts the process's flows of the period, final ones
	// included; final counts those that ended (their last event).
	flows, final int
	// states counts flows by socket state number; the last slot is
	// every state beyond it.
	states                       [maxState]int
	inbound, outbound, listening int
	delta                        flows.Delta
	// rttN TCP flows with a measured smoothed RTT (non-zero: a socket
	// that never had a round trip has none) give the RTT figures, in µs.
	rttN           int
	rttSum         uint64
	rttMin, rttMax uint32
	// peers is the number of distinct remote addresses of its connected
	// flows, v4-mapped ones counted as the IPv4 address.
	peers int
	// commOnly: every flow's process is only what the eBPF tracker saw
	// (flows.Flow.CommOnly), so no user is known.
	commOnly bool
}

// rttMean is the arithmetic mean of the flows' smoothed RTTs in µs,
// rounded down; 0 without a measured RTT.
func (r *rollup) rttMean() uint64 {
	if r.rttN == 0 {
		return 0
	}
	return r.rttSum / uint64(r.rttN)
}

// procKey tells processes apart: a pid reused within a period by a new
// process is another process.
type procKey struct {
	pid   int
	start uint64
}

// peerKey is one process's peer, to count distinct ones: plain memory,
// hashed as one block (netip.Addr carries a zone pointer).
type peerKey struct {
	proc int32
	addr [16]byte
}

// roller computes a period's rollups, reusing its maps across periods.
type roller struct {
	// byPtr finds a flow's rollup by its Process pointer, which the
	// flows of one process share in a collection: one lookup of 8 bytes
	// per flow. index, by pid and start time, is asked on a miss, for
	// the rare process with two values (one the eBPF tracker named).
	byPtr map[*process.Process]int32
	index map[procKey]int32
	peers map[peerKey]struct{}
	// peers4 holds the IPv4 peers, most of them, as rollup index << 32 |
	// address: a map of uint64 hashes in a third of the time.
	peers4 map[uint64]struct{}
	out    []rollup
}

func newRoller() *roller {
	return &roller{byPtr: map[*process.Process]int32{}, index: map[procKey]int32{},
		peers: map[peerKey]struct{}{}, peers4: map[uint64]struct{}{}}
}

// roll returns the rollups of the processes owning the flows of fl that
// keep accepts, deltas being the period's Diff (same index as fl), sorted
// by pid and start time. Flows without a process have no rollup. The
// result is valid until the next call.
func (rl *roller) roll(fl []flows.Flow, deltas []flows.FlowDelta, keep func(*flows.Flow) bool) []rollup {
	clear(rl.byPtr)
	clear(rl.index)
	clear(rl.peers)
	clear(rl.peers4)
	rl.out = rl.out[:0]
	for i := range fl {
		f := &fl[i]
		if f.Process == nil || (keep != nil && !keep(f)) {
			continue
		}
		j, ok := rl.byPtr[f.Process]
		if !ok {
			k := procKey{f.Process.PID, f.Process.StartTime}
			if j, ok = rl.index[k]; !ok {
				j = int32(len(rl.out))
				rl.index[k] = j
				rl.out = append(rl.out, rollup{proc: f.Process, commOnly: true})
			}
			rl.byPtr[f.Process] = j
		}
		r := &rl.out[j]
		r.commOnly = r.commOnly && f.CommOnly
		r.flows++
		if f.Final {
			r.final++
		}
		r.states[min(int(f.State), maxState-1)]++
		switch f.Direction {
		case flows.Inbound:
			r.inbound++
		case flows.Outbound:
			r.outbound++
		case flows.Listening:
			r.listening++
		}
		if i < len(deltas) && deltas[i].OK {
			d := deltas[i].Delta
			r.delta.BytesIn += d.BytesIn
			r.delta.BytesOut += d.BytesOut
			r.delta.SegsIn += d.SegsIn
			r.delta.SegsOut += d.SegsOut
			r.delta.Retrans += d.Retrans
		}
		if f.Direction == flows.Listening {
			continue
		}
		if f.HasTCP && f.TCP.Has(72) && f.TCP.RTTMicros > 0 {
			rtt := f.TCP.RTTMicros
			if r.rttN == 0 || rtt < r.rttMin {
				r.rttMin = rtt
			}
			r.rttMax = max(r.rttMax, rtt)
			r.rttSum += uint64(rtt)
			r.rttN++
		}
		if a := f.Remote.Addr().Unmap(); a.Is4() {
			b := a.As4()
			pk := uint64(j)<<32 | uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
			if _, seen := rl.peers4[pk]; !seen {
				rl.peers4[pk] = struct{}{}
				r.peers++
			}
		} else if a.IsValid() {
			pk := peerKey{j, a.As16()}
			if _, seen := rl.peers[pk]; !seen {
				rl.peers[pk] = struct{}{}
				r.peers++
			}
		}
	}
	slices.SortFunc(rl.out, func(a, b rollup) int {
		return cmp.Or(cmp.Compare(a.proc.PID, b.proc.PID), cmp.Compare(a.proc.StartTime, b.proc.StartTime))
	})
	return rl.out
}

// rollupObjects and rollupMembers are how many objects and members a
// rollup event has at most, without its per-core objects.
const rollupObjects, rollupMembers = 11, 61

// rollupEvent is the fleutan.flows event of r for the collection that
// started at ts; its event.duration is the period window. cores, when
// not nil, is the process's core distribution over the cpu input's
// latest period.
func rollupEvent(b *pipeline.Builder, r *rollup, ts time.Time, t input.Times, cores *input.CoreUse) pipeline.Event {
	fields := b.Root(6 + pipeline.ReservedKeys)
	fields["event"] = b.Object(
		pipeline.String("dataset", Dataset),
		pipeline.Int64("duration", t.Window.Nanoseconds()),
		pipeline.String("kind", "metric"),
		pipeline.String("module", "fleutan"),
	)
	states := make([]pipeline.Member, 0, 4)
	for s, n := range r.states {
		if n > 0 {
			states = append(states, pipeline.Int(flows.StateName(uint8(s)), n))
		}
	}
	ro := make([]pipeline.Member, 0, 8)
	if cores != nil {
		ro = append(ro, pipeline.Any("cpu", cpuObject(b, cores)))
	}
	ro = append(ro,
		pipeline.Any("delta", b.Object(
			pipeline.Uint64("bytes_in", r.delta.BytesIn),
			pipeline.Uint64("bytes_out", r.delta.BytesOut),
			pipeline.Uint64("retrans", r.delta.Retrans),
			pipeline.Uint64("segs_in", r.delta.SegsIn),
			pipeline.Uint64("segs_out", r.delta.SegsOut),
		)),
		pipeline.Any("direction", b.Object(
			pipeline.Int("inbound", r.inbound),
			pipeline.Int("listening", r.listening),
			pipeline.Int("outbound", r.outbound),
		)),
		pipeline.Int("final", r.final),
		pipeline.Int("flows", r.flows),
		pipeline.Int("peers", r.peers),
	)
	if r.rttN > 0 {
		ro = append(ro, pipeline.Any("rtt_us", b.Object(
			pipeline.Uint64("max", uint64(r.rttMax)),
			pipeline.Uint64("mean", r.rttMean()),
			pipeline.Uint64("min", uint64(r.rttMin)),
		)))
	}
	ro = append(ro, pipeline.Any("state", b.Object(states...)))
	// The series keeps two processes that had one pid within a period
	// apart; its hash in fleutan.flow.id does so in a time series data
	// stream, where process.pid alone would make their events one.
	series := "process/" + strconv.Itoa(r.proc.PID) + "/" + strconv.FormatUint(r.proc.StartTime, 10)
	fields["fleutan"] = b.Object(
		pipeline.Any("collection", b.Object(pipeline.Int64("duration_us", t.CollectionMicros()))),
		pipeline.Any("flow", b.Object(
			pipeline.String("id", FlowID(series)),
			pipeline.Any("rollup", b.Object(ro...)),
			pipeline.String("scope", ScopeProcess),
		)),
	)
	proc, user := ecsfields.ProcessObjects(b, r.proc)
	fields["process"] = proc
	if !r.commOnly {
		fields["user"] = user
	}
	return pipeline.Event{Timestamp: ts, Fields: fields, Series: series}
}

// cpuObject is fleutan.flow.rollup.cpu: the process's CPU over the cpu
// input's period (see fleutan.cpu), with per_core its fraction of each
// core it ran on (as fleutan.cpu's process_core events).
func cpuObject(b *pipeline.Builder, u *input.CoreUse) *pipeline.Object {
	per := make([]any, len(u.Cores))
	for i, c := range u.Cores {
		per[i] = b.Object(pipeline.Int("core", c.CPU), pipeline.Float64("pct", c.Pct))
	}
	return b.Object(
		pipeline.Int("cores_used", len(u.Cores)),
		pipeline.Int("dominant_core", u.DominantCore),
		pipeline.Float64("pct", u.Pct),
		pipeline.Any("per_core", per),
		pipeline.Float64("spread", u.Spread),
	)
}
