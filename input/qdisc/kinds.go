package qdisc

// KindStats are the statistics and settings particular to one kind of
// qdisc or class (the event's fleutan.qdisc.<kind>): at most one field is
// set, for the kinds decoded here.
type KindStats struct {
	HTB      *HTBQdisc `json:"htb,omitempty"`       // an htb qdisc
	HTBClass *HTBClass `json:"htb_class,omitempty"` // an htb class
	TBF      *TBF      `json:"tbf,omitempty"`
	FQCodel  *FQCodel  `json:"fq_codel,omitempty"`
	FQ       *FQ       `json:"fq,omitempty"`
	Cake     *Cake     `json:"cake,omitempty"`
}

// Any reports whether one of the kind-specific statistics is set.
func (k KindStats) Any() bool {
	return k.HTB != nil || k.HTBClass != nil || k.TBF != nil || k.FQCodel != nil || k.FQ != nil || k.Cake != nil
}

// decodeKind decodes TCA_OPTIONS and the kind's xstats (TCA_STATS_APP).
// Unknown kinds, and data too short for the kernel struct, give none: the
// generic counters are still reported.
func decodeKind(scope Scope, kind string, opts, xstats []byte) KindStats {
	var k KindStats
	switch kind {
	case "htb":
		if scope == ScopeClass {
			k.HTBClass = decodeHTBClass(opts, xstats)
		} else {
			k.HTB = decodeHTBQdisc(opts)
		}
	case "tbf":
		if scope == ScopeQdisc {
			k.TBF = decodeTBF(opts)
		}
	case "fq_codel":
		if scope == ScopeQdisc {
			k.FQCodel = decodeFQCodel(xstats)
		}
	case "fq":
		if scope == ScopeQdisc {
			k.FQ = decodeFQ(xstats)
		}
	case "cake":
		if scope == ScopeQdisc {
			k.Cake = decodeCake(xstats)
		}
	}
	return k
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
	DefaultClass  uint32 `json:"default_class"`  // minor number of the default class
	DirectPackets uint32 `json:"direct_packets"` // packets sent unshaped: no class matched
}

func decodeHTBQdisc(opts []byte) *HTBQdisc {
	g := nested(opts, 2) // TCA_HTB_INIT
	if len(g) < 20 {
		return nil
	}
	return &HTBQdisc{DefaultClass: u32(g, 8), DirectPackets: u32(g, 16)}
}

// HTBClass is a class's struct tc_htb_opt (TCA_HTB_PARMS, with the 64-bit
// TCA_HTB_RATE64/CEIL64 when the rate exceeds 32 bits of bytes/s) and its
// struct tc_htb_xstats.
type HTBClass struct {
	Rate    uint64 `json:"rate"` // bytes/s
	Ceil    uint64 `json:"ceil"` // bytes/s
	Level   uint32 `json:"level"`
	Prio    uint32 `json:"prio"`
	Quantum uint32 `json:"quantum"` // bytes
	// The xstats (struct tc_htb_xstats), when HasXstats.
	Lends   uint32 `json:"lends"`
	Borrows uint32 `json:"borrows"`
	Giants  uint32 `json:"giants"`
	Tokens  int32  `json:"tokens"` // psched ticks; negative when in debt
	CTokens int32  `json:"ctokens"`

	HasXstats bool `json:"has_xstats"`
}

func decodeHTBClass(opts, xstats []byte) *HTBClass {
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

// TBF is struct tc_tbf_qopt (TCA_TBF_PARMS) with TCA_TBF_RATE64 and
// TCA_TBF_PRATE64. tbf has no xstats: its settings are what tc -s shows.
type TBF struct {
	Rate     uint64 `json:"rate"`      // bytes/s
	PeakRate uint64 `json:"peak_rate"` // bytes/s
	Limit    uint32 `json:"limit_bytes"`
	Buffer   uint32 `json:"buffer_ticks"` // psched ticks (64 ns, PSCHED_SHIFT in net/pkt_sched.h)
	MTU      uint32 `json:"mtu"`          // bytes
}

func decodeTBF(opts []byte) *TBF {
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

// FQCodel is struct tc_fq_codel_qd_stats (TCA_FQ_CODEL_XSTATS_QDISC).
type FQCodel struct {
	MaxPacket      uint32 `json:"maxpacket"` // bytes
	DropOverlimit  uint32 `json:"drop_overlimit"`
	ECNMark        uint32 `json:"ecn_mark"`
	NewFlowCount   uint32 `json:"new_flow_count"`
	NewFlowsLen    uint32 `json:"new_flows_len"`
	OldFlowsLen    uint32 `json:"old_flows_len"`
	CEMark         uint32 `json:"ce_mark"`
	MemoryUsage    uint32 `json:"memory_usage"` // bytes
	DropOvermemory uint32 `json:"drop_overmemory"`
}

func decodeFQCodel(x []byte) *FQCodel {
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

// FQ is struct tc_fq_qd_stats; fields newer than the kernel's stay zero.
type FQ struct {
	GCFlows             uint64 `json:"gc_flows"`
	HighprioPackets     uint64 `json:"highprio_packets"`
	TCPRetrans          uint64 `json:"tcp_retrans"`
	Throttled           uint64 `json:"throttled"`
	FlowsPlimit         uint64 `json:"flows_plimit"`
	PktsTooLong         uint64 `json:"pkts_too_long"`
	AllocationErrors    uint64 `json:"allocation_errors"`
	TimeNextDelayedFlow int64  `json:"time_next_delayed_flow_ns"`
	Flows               uint32 `json:"flows"`
	InactiveFlows       uint32 `json:"inactive_flows"`
	ThrottledFlows      uint32 `json:"throttled_flows"`
	UnthrottleLatencyNs uint32 `json:"unthrottle_latency_ns"`
	CEMark              uint64 `json:"ce_mark"`
	HorizonDrops        uint64 `json:"horizon_drops"`
	HorizonCaps         uint64 `json:"horizon_caps"`
}

func decodeFQ(x []byte) *FQ {
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

// Cake is cake's xstats, which are netlink attributes (TCA_CAKE_STATS_*)
// rather than a struct, with one nested set per tin.
type Cake struct {
	CapacityEstimate uint64    `json:"capacity_estimate"` // bytes/s
	MemoryLimit      uint64    `json:"memory_limit"`      // bytes
	MemoryUsed       uint64    `json:"memory_used"`       // bytes
	AvgNetoff        uint64    `json:"avg_netoff"`
	MinNetlen        uint64    `json:"min_netlen"`
	MaxNetlen        uint64    `json:"max_netlen"`
	MinAdjlen        uint64    `json:"min_adjlen"`
	MaxAdjlen        uint64    `json:"max_adjlen"`
	Tins             []CakeTin `json:"tins"`
}

// CakeTin holds one tin's TCA_CAKE_TIN_STATS_* values by field name
// (threshold_rate in bytes/s, the *_us in microseconds).
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

func decodeCake(x []byte) *Cake {
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
