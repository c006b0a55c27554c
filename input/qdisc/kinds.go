package qdisc

import (
	"strconv"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// KindStats are the statistics and settings particular to one kind of
// qdisc or class, published under fleutan.qdisc.<kind>.
type KindStats interface {
	Fields() pipeline.M
}

// decodeKind decodes TCA_OPTIONS and the kind's xstats (TCA_STATS_APP).
// Unknown kinds, and data too short for the kernel struct, give nil: the
// generic counters are still reported.
func decodeKind(scope Scope, kind string, opts, xstats []byte) KindStats {
	switch kind {
	case "htb":
		if scope == ScopeClass {
			return decodeHTBClass(opts, xstats)
		}
		return decodeHTBQdisc(opts)
	case "tbf":
		if scope == ScopeQdisc {
			return decodeTBF(opts)
		}
	case "fq_codel":
		if scope == ScopeQdisc {
			return decodeFQCodel(xstats)
		}
	case "fq":
		if scope == ScopeQdisc {
			return decodeFQ(xstats)
		}
	case "cake":
		if scope == ScopeQdisc {
			return decodeCake(xstats)
		}
	}
	return nil
}

// nested returns the payload of the first attribute of type typ in b.
func nested(b []byte, typ uint16) []byte {
	var out []byte
	_ = attrs(b, func(t uint16, v []byte) error {
		if t == typ && out == nil {
			out = v
		}
		return nil
	})
	return out
}

// HTBQdisc is struct tc_htb_glob (TCA_HTB_INIT).
type HTBQdisc struct {
	DefaultClass  uint32
	DirectPackets uint32 // packets sent unshaped: no class matched
}

func decodeHTBQdisc(opts []byte) KindStats {
	g := nested(opts, 2) // TCA_HTB_INIT
	if len(g) < 20 {
		return nil
	}
	return &HTBQdisc{DefaultClass: u32(g, 8), DirectPackets: u32(g, 16)}
}

func (h *HTBQdisc) Fields() pipeline.M {
	return pipeline.M{"default_class": strconv.FormatUint(uint64(h.DefaultClass), 16), "direct_packets": uint64(h.DirectPackets)}
}

// HTBClass is a class's struct tc_htb_opt (TCA_HTB_PARMS, with the 64-bit
// TCA_HTB_RATE64/CEIL64 when the rate exceeds 32 bits of bytes/s) and its
// struct tc_htb_xstats.
type HTBClass struct {
	Rate, Ceil             uint64 // bytes/s
	Level, Prio, Quantum   uint32
	Lends, Borrows, Giants uint32
	Tokens, CTokens        int32 // psched ticks; negative when in debt
	HasXstats              bool
}

func decodeHTBClass(opts, xstats []byte) KindStats {
	var h HTBClass
	found := false
	_ = attrs(opts, func(t uint16, v []byte) error {
		switch t {
		case 1: // TCA_HTB_PARMS: tc_ratespec rate (12), ceil (12), buffer, cbuffer, quantum, level, prio
			if len(v) >= 44 {
				found = true
				if h.Rate == 0 {
					h.Rate = uint64(u32(v, 8))
				}
				if h.Ceil == 0 {
					h.Ceil = uint64(u32(v, 20))
				}
				h.Quantum, h.Level, h.Prio = u32(v, 32), u32(v, 36), u32(v, 40)
			}
		case 6: // TCA_HTB_RATE64
			if len(v) >= 8 {
				h.Rate = u64(v, 0)
			}
		case 7: // TCA_HTB_CEIL64
			if len(v) >= 8 {
				h.Ceil = u64(v, 0)
			}
		}
		return nil
	})
	if len(xstats) >= 20 {
		h.HasXstats = true
		h.Lends, h.Borrows, h.Giants = u32(xstats, 0), u32(xstats, 4), u32(xstats, 8)
		h.Tokens, h.CTokens = int32(u32(xstats, 12)), int32(u32(xstats, 16))
	}
	if !found && !h.HasXstats {
		return nil
	}
	return &h
}

func (h *HTBClass) Fields() pipeline.M {
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

// TBF is struct tc_tbf_qopt (TCA_TBF_PARMS) with TCA_TBF_RATE64 and
// TCA_TBF_PRATE64. tbf has no xstats: its settings are what tc -s shows.
type TBF struct {
	Rate, PeakRate uint64 // bytes/s
	Limit          uint32 // bytes
	Buffer         uint32 // psched ticks (64 ns, PSCHED_SHIFT in net/pkt_sched.h)
	MTU            uint32
}

func decodeTBF(opts []byte) KindStats {
	var t TBF
	found := false
	_ = attrs(opts, func(typ uint16, v []byte) error {
		switch typ {
		case 1: // TCA_TBF_PARMS
			if len(v) >= 36 {
				found = true
				if t.Rate == 0 {
					t.Rate = uint64(u32(v, 8))
				}
				if t.PeakRate == 0 {
					t.PeakRate = uint64(u32(v, 20))
				}
				t.Limit, t.Buffer, t.MTU = u32(v, 24), u32(v, 28), u32(v, 32)
			}
		case 4: // TCA_TBF_RATE64
			if len(v) >= 8 {
				t.Rate = u64(v, 0)
			}
		case 5: // TCA_TBF_PRATE64
			if len(v) >= 8 {
				t.PeakRate = u64(v, 0)
			}
		}
		return nil
	})
	if !found {
		return nil
	}
	return &t
}

// BurstBytes is the bucket size: the rate times the buffer time
// (tc_calc_xmitsize in iproute2's tc/tc_core.c).
func (t *TBF) BurstBytes() uint64 {
	ns := uint64(t.Buffer) << 6
	hi := t.Rate / 1e9
	lo := t.Rate % 1e9
	return hi*ns + lo*ns/1e9
}

func (t *TBF) Fields() pipeline.M {
	return pipeline.M{
		"rate_bps":      t.Rate * 8,
		"peak_rate_bps": t.PeakRate * 8,
		"limit_bytes":   uint64(t.Limit),
		"burst_bytes":   t.BurstBytes(),
		"mtu":           uint64(t.MTU),
	}
}

// FQCodel is struct tc_fq_codel_qd_stats (TCA_FQ_CODEL_XSTATS_QDISC).
type FQCodel struct {
	MaxPacket, DropOverlimit, ECNMark, NewFlowCount uint32
	NewFlowsLen, OldFlowsLen, CEMark, MemoryUsage   uint32
	DropOvermemory                                  uint32
}

func decodeFQCodel(x []byte) KindStats {
	// struct tc_fq_codel_xstats { __u32 type; union {...}; }; type 0 is
	// the qdisc's. drop_overmemory (the ninth field) came last.
	if len(x) < 4+8*4 || u32(x, 0) != 0 {
		return nil
	}
	s := x[4:]
	return &FQCodel{
		MaxPacket: u32(s, 0), DropOverlimit: u32(s, 4), ECNMark: u32(s, 8), NewFlowCount: u32(s, 12),
		NewFlowsLen: u32(s, 16), OldFlowsLen: u32(s, 20), CEMark: u32(s, 24), MemoryUsage: u32(s, 28),
		DropOvermemory: u32(s, 32),
	}
}

func (f *FQCodel) Fields() pipeline.M {
	return pipeline.M{
		"maxpacket": uint64(f.MaxPacket), "drop_overlimit": uint64(f.DropOverlimit),
		"ecn_mark": uint64(f.ECNMark), "new_flow_count": uint64(f.NewFlowCount),
		"new_flows_len": uint64(f.NewFlowsLen), "old_flows_len": uint64(f.OldFlowsLen),
		"ce_mark": uint64(f.CEMark), "memory_usage": uint64(f.MemoryUsage),
		"drop_overmemory": uint64(f.DropOvermemory),
	}
}

// FQ is struct tc_fq_qd_stats; fields newer than the kernel's stay zero.
type FQ struct {
	GCFlows, HighprioPackets, TCPRetrans, Throttled, FlowsPlimit uint64
	PktsTooLong, AllocationErrors                                uint64
	TimeNextDelayedFlow                                          int64
	Flows, InactiveFlows, ThrottledFlows, UnthrottleLatencyNs    uint32
	CEMark, HorizonDrops, HorizonCaps                            uint64
}

func decodeFQ(x []byte) KindStats {
	if len(x) < 80 { // up to unthrottle_latency_ns, the oldest layout
		return nil
	}
	return &FQ{
		GCFlows: u64(x, 0), HighprioPackets: u64(x, 8), TCPRetrans: u64(x, 16), Throttled: u64(x, 24),
		FlowsPlimit: u64(x, 32), PktsTooLong: u64(x, 40), AllocationErrors: u64(x, 48),
		TimeNextDelayedFlow: int64(u64(x, 56)),
		Flows:               u32(x, 64), InactiveFlows: u32(x, 68), ThrottledFlows: u32(x, 72), UnthrottleLatencyNs: u32(x, 76),
		CEMark: u64(x, 80), HorizonDrops: u64(x, 88), HorizonCaps: u64(x, 96),
	}
}

func (f *FQ) Fields() pipeline.M {
	return pipeline.M{
		"gc_flows": f.GCFlows, "highprio_packets": f.HighprioPackets, "tcp_retrans": f.TCPRetrans,
		"throttled": f.Throttled, "flows_plimit": f.FlowsPlimit, "pkts_too_long": f.PktsTooLong,
		"allocation_errors": f.AllocationErrors, "time_next_delayed_flow_ns": f.TimeNextDelayedFlow,
		"flows": uint64(f.Flows), "inactive_flows": uint64(f.InactiveFlows),
		"throttled_flows": uint64(f.ThrottledFlows), "unthrottle_latency_ns": uint64(f.UnthrottleLatencyNs),
		"ce_mark": f.CEMark, "horizon_drops": f.HorizonDrops, "horizon_caps": f.HorizonCaps,
	}
}

// Cake is cake's xstats, which are netlink attributes (TCA_CAKE_STATS_*)
// rather than a struct, with one nested set per tin.
type Cake struct {
	CapacityEstimate        uint64 // bytes/s
	MemoryLimit, MemoryUsed uint64
	AvgNetoff               uint64
	MinNetlen, MaxNetlen    uint64
	MinAdjlen, MaxAdjlen    uint64
	Tins                    []CakeTin
}

// CakeTin holds one tin's TCA_CAKE_TIN_STATS_* values by field name.
type CakeTin map[string]uint64

var cakeTinNames = [...]string{
	2: "sent_packets", 3: "sent_bytes", 4: "dropped_packets", 5: "dropped_bytes",
	6: "acks_dropped_packets", 7: "acks_dropped_bytes", 8: "ecn_marked_packets", 9: "ecn_marked_bytes",
	10: "backlog_packets", 11: "backlog_bytes", 12: "threshold_rate", 13: "target_us", 14: "interval_us",
	15: "way_indirect_hits", 16: "way_misses", 17: "way_collisions", 18: "peak_delay_us",
	19: "avg_delay_us", 20: "base_delay_us", 21: "sparse_flows", 22: "bulk_flows",
	23: "unresponsive_flows", 24: "max_skblen", 25: "flow_quantum",
}

// attrUint reads a u32 or u64 attribute payload.
func attrUint(v []byte) uint64 {
	switch {
	case len(v) >= 8:
		return u64(v, 0)
	case len(v) >= 4:
		return uint64(u32(v, 0))
	}
	return 0
}

func decodeCake(x []byte) KindStats {
	var c Cake
	found := false
	err := attrs(x, func(t uint16, v []byte) error {
		found = true
		switch t {
		case 2:
			c.CapacityEstimate = attrUint(v)
		case 3:
			c.MemoryLimit = attrUint(v)
		case 4:
			c.MemoryUsed = attrUint(v)
		case 5:
			c.AvgNetoff = attrUint(v)
		case 6:
			c.MinNetlen = attrUint(v)
		case 7:
			c.MaxNetlen = attrUint(v)
		case 8:
			c.MinAdjlen = attrUint(v)
		case 9:
			c.MaxAdjlen = attrUint(v)
		case 10: // TCA_CAKE_STATS_TIN_STATS: one nested set per tin, type i+1
			return attrs(v, func(_ uint16, tv []byte) error {
				tin := CakeTin{}
				err := attrs(tv, func(k uint16, kv []byte) error {
					if int(k) < len(cakeTinNames) && cakeTinNames[k] != "" {
						tin[cakeTinNames[k]] = attrUint(kv)
					}
					return nil
				})
				if len(c.Tins) < 8 { // TC_CAKE_MAX_TINS
					c.Tins = append(c.Tins, tin)
				}
				return err
			})
		}
		return nil
	})
	if err != nil || !found {
		return nil
	}
	return &c
}

func (c *Cake) Fields() pipeline.M {
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
