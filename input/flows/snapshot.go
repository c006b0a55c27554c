package flows

import (
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/fleutan/fleutanbeat/input/internal/sockdiag"
)

// Snapshot is one collection: the flows of every collected namespace and
// the lifecycle facts Diff needs to give their deltas.
//
// A Snapshot returned by Collect shares the collector's buffers: it stays
// valid until the second Collect after the one that returned it, so the
// previous snapshot can always be diffed against the current one. Keep it
// longer with Clone. Do not modify it.
type Snapshot struct {
	// Time is when the collection started.
	Time time.Time `json:"time"`
	// Flows are the live flows, followed by one Final flow for each flow
	// that ended since the previous collection.
	Flows []Flow `json:"flows"`
	// Namespaces are the network namespaces this collection visited.
	Namespaces []Namespace `json:"namespaces"`
	// Held are the flows of namespaces whose dump failed, as last seen:
	// not reported (neither live nor final), kept as the reference of
	// their next deltas.
	Held []Flow `json:"held,omitempty"`
	// Lingering are TCP flows that left the dump while the eBPF tracker
	// still knows them open (FIN-WAIT, CLOSE-WAIT, ... outside the state
	// selection), as last seen: their final report, with the counters of
	// TCP_CLOSE, comes in a later collection, with its delta against this
	// last live report.
	Lingering []Flow `json:"lingering,omitempty"`
	// Unattributed counts the live sockets this collection left without
	// a process, by reason.
	Unattributed Unattributed `json:"unattributed"`

	// live is how many of Flows are the reference of the next deltas
	// (before the finals); idx maps their keys, and Held's after them,
	// to their index. Both are unset in a Snapshot built by hand, and
	// Diff then indexes the non-final Flows and Held itself.
	live int
	idx  *flowIndex
	// refs[i], when seq follows the prev given to Diff, is the index of
	// Flows[i]'s previous report in that prev (as in idx), -1 for none:
	// at tens of thousands of flows Diff then needs no lookup by key.
	refs         []int32
	seq, prevSeq uint64
}

// Namespace is one network namespace a collection visited.
type Namespace struct {
	Inode uint64 `json:"inode"`
	// Name is its name under /run/netns, if any; Path the file that was
	// opened to enter it.
	Name string `json:"name,omitempty"`
	Path string `json:"path,omitempty"`
	// Known: an earlier collection dumped this namespace completely and
	// every collection since found it, so its flows that are new now
	// were born since (Diff gives them their whole count as delta).
	Known bool `json:"known"`
	// Failed: its dump failed in this collection; it contributes no
	// flows and no final reports (its flows are in Held).
	Failed bool `json:"failed,omitempty"`
}

// Unattributed counts live sockets without a process, by reason: their
// known holders exited; a process's fd table could not be read (without
// CAP_SYS_PTRACE, say); or no readable process holds them (kernel
// sockets, sockets in flight in SCM_RIGHTS, an owner that exited before
// it was found).
type Unattributed struct {
	Exited     int `json:"exited"`
	Unreadable int `json:"unreadable"`
	NoOwner    int `json:"no_owner"`
}

// FlowDelta is a flow's change over the period between two snapshots.
// OK is false where there is no delta to give: a flow present at the
// first collection of its namespace, a listening or UDP socket, a final
// report without the close-time counters.
type FlowDelta struct {
	OK bool `json:"ok"`
	Delta
}

// Clone returns a deep copy of s that stays valid after later Collects.
// Processes are shared: they are never modified.
func (s Snapshot) Clone() Snapshot {
	c := s
	c.Flows = slices.Clone(s.Flows)
	c.Namespaces = slices.Clone(s.Namespaces)
	c.Held = slices.Clone(s.Held)
	c.refs = slices.Clone(s.refs)
	c.Lingering = slices.Clone(s.Lingering)
	c.idx = s.idx.clone()
	return c
}

// Diff returns the delta of each flow of cur (same index as cur.Flows)
// over the period since prev, the collection before cur of the same
// collector. A zero prev gives the results of a first collection: deltas
// only for connections the eBPF tracker saw born and closed.
func Diff(prev, cur Snapshot) []FlowDelta {
	return AppendDiff(nil, prev, cur)
}

// AppendDiff is Diff appending to dst, to reuse its memory across
// collections.
func AppendDiff(dst []FlowDelta, prev, cur Snapshot) []FlowDelta {
	dst = slices.Grow(dst[:0], len(cur.Flows))[:len(cur.Flows)]
	idx, live := prev.idx, prev.live
	// The collector's refs say where each flow's previous report is,
	// when prev is the collection before cur.
	useRefs := prev.seq != 0 && cur.prevSeq == prev.seq && len(cur.refs) == len(cur.Flows)
	if !useRefs && idx == nil && len(prev.Flows)+len(prev.Held) > 0 {
		idx, live = prev.index()
	}
	at := func(j int32) *Flow {
		if int(j) < live {
			return &prev.Flows[j]
		}
		return &prev.Held[int(j)-live]
	}
	ref := func(k indexKey) *Flow {
		j, ok := idx.get(k, at)
		if !ok {
			return nil
		}
		return at(j)
	}
	var lingering map[uint64]*Flow
	if len(prev.Lingering) > 0 {
		lingering = make(map[uint64]*Flow, len(prev.Lingering))
		for i := range prev.Lingering {
			lingering[prev.Lingering[i].Cookie] = &prev.Lingering[i]
		}
	}
	// A namespace is known when the collector says so and prev visited
	// it: then its new flows were born since prev.
	var known map[uint64]bool
	for _, ns := range cur.Namespaces {
		if ns.Known && prev.visited(ns.Inode) {
			if known == nil {
				known = make(map[uint64]bool, len(cur.Namespaces))
			}
			known[ns.Inode] = true
		}
	}
	for i := range cur.Flows {
		f := &cur.Flows[i]
		d := &dst[i]
		*d = FlowDelta{}
		switch {
		case f.Final && !f.CloseCounters:
			// Its last snapshot's values again: nothing new.
		case f.Closed:
			// Born and closed between two collections: everything it did
			// is new if the tracker saw it from its start.
			if f.Started {
				*d = FlowDelta{true, delta(f, nil)}
			}
		default:
			var p *Flow
			if useRefs {
				if j := cur.refs[i]; j >= 0 {
					p = at(j)
				}
			} else if idx.Len() > 0 {
				k := f.indexKey()
				p = ref(k)
				if p == nil && f.CloseCounters && k.inode != 0 {
					// The close record named the inode that the last
					// snapshot (a request socket, say) did not have.
					k.inode = 0
					p = ref(k)
				}
			}
			if p == nil && f.Final && lingering != nil {
				// Left the dump collections ago; its close came now.
				p = lingering[f.Cookie]
			}
			switch {
			case p != nil && f.Final:
				*d = FlowDelta{true, delta(f, p)}
			case !f.HasTCP || f.Direction == Listening:
			case p != nil:
				*d = FlowDelta{true, delta(f, p)}
			case known[f.Netns]:
				*d = FlowDelta{true, delta(f, nil)}
			}
		}
	}
	return dst
}

// index is idx for a snapshot built by hand: its non-final flows, then
// Held.
func (s *Snapshot) index() (*flowIndex, int) {
	live := len(s.Flows)
	at := func(j int32) *Flow {
		if int(j) < live {
			return &s.Flows[j]
		}
		return &s.Held[int(j)-live]
	}
	idx := newFlowIndex(len(s.Flows) + len(s.Held))
	for i := range s.Flows {
		if !s.Flows[i].Final {
			idx.put(s.Flows[i].indexKey(), int32(i), at)
		}
	}
	for i := range s.Held {
		idx.put(s.Held[i].indexKey(), int32(live+i), at)
	}
	return idx, live
}

func (s *Snapshot) visited(ino uint64) bool {
	for _, ns := range s.Namespaces {
		if ns.Inode == ino {
			return true
		}
	}
	return false
}

// StateName is the name of a TCP state (linux/tcp_states.h) as the events
// carry it in fleutan.flow.state: established, syn_sent, ..., listen,
// closing; "unknown" for another value.
func StateName(s uint8) string { return sockdiag.StateName(s) }

// stateNames are ss(8)'s state filter names (misc/ss.c sstate_namel and
// the groups of its STATE-FILTER) with '-' and '_' taken out, so that both
// "fin-wait-1" and the event's "fin_wait1" are accepted; values are
// bitmasks of 1<<state (linux/tcp_states.h).
var stateNames = map[string]uint32{
	"established": 1 << stateEstablished,
	"synsent":     1 << stateSynSent,
	"synrecv":     1 << stateSynRecv,
	"finwait1":    1 << stateFinWait1,
	"finwait2":    1 << stateFinWait2,
	"timewait":    1 << stateTimeWait,
	"closed":      1 << stateClose,
	"close":       1 << stateClose,
	"closewait":   1 << stateCloseWait,
	"lastack":     1 << stateLastAck,
	"listening":   1 << stateListen,
	"listen":      1 << stateListen,
	"closing":     1 << stateClosing,

	"all":          AllStates,
	"connected":    AllStates &^ (1<<stateListen | 1<<stateClose),
	"synchronized": AllStates &^ (1<<stateListen | 1<<stateClose | 1<<stateSynSent),
	"bucket":       1<<stateSynRecv | 1<<stateTimeWait,
	"big":          AllStates &^ (1<<stateSynRecv | 1<<stateTimeWait),
}

// StateMask is the Options.States bitmask of an ss(8) state name or group
// (established, listening, time-wait, all, connected, synchronized,
// bucket, big, ...; '-' and '_' are ignored, so fin_wait1 and fin-wait-1
// are the same); false for another name.
func StateMask(name string) (uint32, bool) {
	key := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' {
			return -1
		}
		return unicode.ToLower(r)
	}, name)
	m, ok := stateNames[key]
	return m, ok
}

// AllStates is the mask of every TCP state, 1 to 11.
const AllStates uint32 = 1<<(stateClosing+1) - 2

const allStates = AllStates
