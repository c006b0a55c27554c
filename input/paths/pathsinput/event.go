package pathsinput

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/communityid"
	"github.com/fleutan/fleutanbeat/input/paths"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Dataset is the event.dataset of this input.
const Dataset = "fleutan.paths"

// events are one path event for the peer (fleutan.paths.type: path) and
// one event per hop (type: hop), so that hops aggregate by address.
func events(p *peer, path *paths.Path, hash string, prev *peerState, ts time.Time, took time.Duration) []pipeline.Event {
	var ids, procs []string
	var pids []int64
	for _, f := range p.flows {
		ids = append(ids, communityID(f))
		if f.Process != nil && !slices.Contains(pids, int64(f.Process.PID)) {
			pids = append(pids, int64(f.Process.PID))
			if !slices.Contains(procs, f.Process.Name) {
				procs = append(procs, f.Process.Name)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	slices.Sort(procs)
	slices.Sort(pids)

	base := func(typ string) pipeline.M {
		m := pipeline.M{
			"type":  typ,
			"peer":  pipeline.M{"ip": p.key.addr.String()},
			"netns": p.key.netns,
			"hash":  hash,
		}
		if p.netnsName != "" {
			m["netns_name"] = p.netnsName
		}
		return m
	}
	ev := func(m pipeline.M, series string) pipeline.Event {
		return pipeline.Event{Timestamp: ts, Series: series, Fields: pipeline.M{
			"event": pipeline.M{
				"dataset": Dataset, "kind": "metric", "module": "fleutan",
				"duration": took.Nanoseconds(),
			},
			"destination": pipeline.M{"ip": p.key.addr.String()},
			"fleutan":     pipeline.M{"paths": m},
		}}
	}
	series := "paths/" + p.key.addr.String()

	hops := make([]any, len(path.Hops))
	out := make([]pipeline.Event, 0, 1+len(path.Hops))
	for i := range path.Hops {
		hops[i] = hopObject(&path.Hops[i])
	}
	pm := base("path")
	pm["hops"] = hops
	pm["hop_count"] = len(path.Hops)
	pm["method"] = string(path.Method)
	if path.Port != 0 {
		pm["port"] = int(path.Port)
	}
	pm["reached"] = path.Reached
	changed := prev != nil && prev.hash != hash
	pm["changed"] = changed
	if prev != nil {
		pm["previous_hash"] = prev.hash
	}
	if changed {
		pm["first_divergent_hop"] = firstDivergentHop(prev.hops, hopSets(path))
	}
	pm["flows"] = pipeline.M{"count": len(p.flows), "community_ids": ids}
	pm["processes"] = pipeline.M{"name": procs, "pid": pids}
	out = append(out, ev(pm, series))
	for i := range path.Hops {
		hm := base("hop")
		hm["hop"] = hopObject(&path.Hops[i])
		out = append(out, ev(hm, series+"/"+strconv.Itoa(path.Hops[i].TTL)))
	}
	return out
}

func hopObject(h *paths.Hop) pipeline.M {
	addrs := make([]string, len(h.Addrs))
	for i, a := range h.Addrs {
		addrs[i] = a.String()
	}
	m := pipeline.M{
		"ttl":      h.TTL,
		"addrs":    addrs,
		"sent":     h.Sent,
		"received": h.Received,
		"loss":     pipeline.M{"pct": h.Loss()},
	}
	if h.Received > 0 {
		m["rtt_min_us"] = micros(h.RTTMin)
		m["rtt_mean_us"] = micros(h.RTTMean)
		if h.TCPFlags != 0 {
			m["tcp_flags"] = int(h.TCPFlags)
		} else {
			m["icmp"] = pipeline.M{"type": int(h.ICMPType), "code": int(h.ICMPCode)}
		}
	}
	return m
}

// communityID names a flow as the flows input does: the initiator is the
// source.
func communityID(f *flows.Flow) string {
	src, dst := unmap(f.Local), unmap(f.Remote)
	if f.Direction == flows.Inbound {
		src, dst = dst, src
	}
	return communityid.V1(0, f.Protocol, src, dst)
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// micros is d in microseconds with the nanoseconds as a fraction: a hop
// one veth away answers in a few microseconds.
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func hopSets(p *paths.Path) [][]netip.Addr {
	out := make([][]netip.Addr, len(p.Hops))
	for i := range p.Hops {
		out[i] = p.Hops[i].Addrs
	}
	return out
}

// firstDivergentHop is where a changed path leaves the previous one: the
// first TTL whose address set differs (a hop only one of them has
// differs from the empty set), with both sets. The hop before it is the
// last router both paths share, the one that decided differently.
func firstDivergentHop(prev, cur [][]netip.Addr) pipeline.M {
	i := 0
	for i < len(prev) && i < len(cur) && slices.Equal(prev[i], cur[i]) {
		i++
	}
	at := func(sets [][]netip.Addr) []string {
		out := []string{}
		if i < len(sets) {
			for _, a := range sets[i] {
				out = append(out, a.String())
			}
		}
		return out
	}
	return pipeline.M{"ttl": i + 1, "addrs": at(cur), "previous_addrs": at(prev)}
}
