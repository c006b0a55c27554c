package qdiscinput

import (
	"strconv"

	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// kindFields names the kind-specific statistics for the event's
// fleutan.qdisc.<kind>; false when the qdisc has none.
func kindFields(k *qdisc.KindStats) (pipeline.M, bool) {
	switch {
	case k.HTB != nil:
		return htbQdiscFields(k.HTB), true
	case k.HTBClass != nil:
		return htbClassFields(k.HTBClass), true
	case k.TBF != nil:
		return tbfFields(k.TBF), true
	case k.FQCodel != nil:
		return fqCodelFields(k.FQCodel), true
	case k.FQ != nil:
		return fqFields(k.FQ), true
	case k.Cake != nil:
		return cakeFields(k.Cake), true
	}
	return nil, false
}

func htbQdiscFields(h *qdisc.HTBQdisc) pipeline.M {
	return pipeline.M{"default_class": strconv.FormatUint(uint64(h.DefaultClass), 16), "direct_packets": uint64(h.DirectPackets)}
}

func htbClassFields(h *qdisc.HTBClass) pipeline.M {
	m := pipeline.M{
		"rate_bps": h.Rate * 8,
		"ceil_bps": h.Ceil * 8,
		"level":    uint64(h.Level),
		"prio":     uint64(h.Prio),
		"quantum":  uint64(h.Quantum),
	}
	if h.HasXstats {
		m["lends"], m["borrows"], m["giants"] = uint64(h.Lends), uint64(h.Borrows), uint64(h.Giants)
		m["tokens"], m["ctokens"] = int64(h.Tokens), int64(h.CTokens)
	}
	return m
}

func tbfFields(t *qdisc.TBF) pipeline.M {
	return pipeline.M{
		"rate_bps":      t.Rate * 8,
		"peak_rate_bps": t.PeakRate * 8,
		"limit_bytes":   uint64(t.Limit),
		"burst_bytes":   t.BurstBytes(),
		"mtu":           uint64(t.MTU),
	}
}

func fqCodelFields(f *qdisc.FQCodel) pipeline.M {
	return pipeline.M{
		"maxpacket": uint64(f.MaxPacket), "drop_overlimit": uint64(f.DropOverlimit),
		"ecn_mark": uint64(f.ECNMark), "new_flow_count": uint64(f.NewFlowCount),
		"new_flows_len": uint64(f.NewFlowsLen), "old_flows_len": uint64(f.OldFlowsLen),
		"ce_mark": uint64(f.CEMark), "memory_usage": uint64(f.MemoryUsage),
		"drop_overmemory": uint64(f.DropOvermemory),
	}
}

func fqFields(f *qdisc.FQ) pipeline.M {
	return pipeline.M{
		"gc_flows": f.GCFlows, "highprio_packets": f.HighprioPackets, "tcp_retrans": f.TCPRetrans,
		"throttled": f.Throttled, "flows_plimit": f.FlowsPlimit, "pkts_too_long": f.PktsTooLong,
		"allocation_errors": f.AllocationErrors, "time_next_delayed_flow_ns": f.TimeNextDelayedFlow,
		"flows": uint64(f.Flows), "inactive_flows": uint64(f.InactiveFlows),
		"throttled_flows": uint64(f.ThrottledFlows), "unthrottle_latency_ns": uint64(f.UnthrottleLatencyNs),
		"ce_mark": f.CEMark, "horizon_drops": f.HorizonDrops, "horizon_caps": f.HorizonCaps,
	}
}

func cakeFields(c *qdisc.Cake) pipeline.M {
	tins := make([]pipeline.M, 0, len(c.Tins))
	for _, t := range c.Tins {
		m := pipeline.M{}
		for k, v := range t {
			if k == "threshold_rate" {
				m["threshold_rate_bps"] = v * 8
				continue
			}
			m[k] = v
		}
		tins = append(tins, m)
	}
	return pipeline.M{
		"capacity_estimate_bps": c.CapacityEstimate * 8,
		"memory_limit":          c.MemoryLimit, "memory_used": c.MemoryUsed,
		"avg_netoff": c.AvgNetoff, "min_netlen": c.MinNetlen, "max_netlen": c.MaxNetlen,
		"min_adjlen": c.MinAdjlen, "max_adjlen": c.MaxAdjlen,
		"tins": tins,
	}
}
