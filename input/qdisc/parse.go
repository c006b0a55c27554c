package qdisc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// rtnetlink message types (linux/rtnetlink.h); the framing is package
// netlink's. Constants are spelled out so the parser builds and is fuzzed
// on every OS.
const (
	rtmNewLink   = 16
	rtmNewQdisc  = 36
	rtmNewTclass = 40

	tcmsgLen    = 20 // struct tcmsg
	ifinfomsgLn = 16 // struct ifinfomsg

	nlaTypeMask = 0x3FFF // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

	// TCA_* (linux/rtnetlink.h)
	tcaKind   = 1
	tcaOpts   = 2
	tcaStats  = 3
	tcaXstats = 4
	tcaStats2 = 7
	// TCA_STATS_* (linux/gen_stats.h)
	tcaStatsBasic = 1
	tcaStatsQueue = 3
	tcaStatsApp   = 4
	tcaStatsPkt64 = 8
)

var errShort = errors.New("message too short")

// tcMsg is one RTM_NEWQDISC or RTM_NEWTCLASS message. Options and Xstats
// alias the receive buffer: decode them before the next read.
type tcMsg struct {
	Ifindex        int32
	Handle, Parent uint32
	Kind           string
	Options        []byte // TCA_OPTIONS payload
	Xstats         []byte // TCA_STATS_APP, else TCA_XSTATS
	Counters
	Backlog, Qlen uint32
	HasStats      bool
}

// linkMsg is the part of an RTM_NEWLINK message the collector uses
// (decoded by vishvananda/netlink, see decodeLink).
type linkMsg struct {
	Index    int32
	Name     string
	Loopback bool
	TxQueues uint32
}

// attrs walks the netlink attributes of b, calling fn with each type
// (flags stripped) and payload. Malformed lengths stop the walk with an
// error; fn's error is returned as is.
func attrs(b []byte, fn func(typ uint16, val []byte) error) error {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			return fmt.Errorf("attribute %d: length %d of %d bytes", typ, l, len(b))
		}
		if err := fn(typ, b[4:l]); err != nil {
			return err
		}
		a := (l + 3) &^ 3
		if a >= len(b) {
			return nil
		}
		b = b[a:]
	}
	return nil
}

func u32(b []byte, off int) uint32 {
	if off+4 > len(b) {
		return 0
	}
	return binary.NativeEndian.Uint32(b[off:])
}

func u64(b []byte, off int) uint64 {
	if off+8 > len(b) {
		return 0
	}
	return binary.NativeEndian.Uint64(b[off:])
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// parseTC decodes the payload of an RTM_NEWQDISC or RTM_NEWTCLASS message
// (struct tcmsg and its attributes).
func parseTC(b []byte) (tcMsg, error) {
	var m tcMsg
	if len(b) < tcmsgLen {
		return m, errShort
	}
	m.Ifindex = int32(binary.NativeEndian.Uint32(b[4:]))
	m.Handle = binary.NativeEndian.Uint32(b[8:])
	m.Parent = binary.NativeEndian.Uint32(b[12:])
	var oldStats []byte
	err := attrs(b[tcmsgLen:], func(typ uint16, v []byte) error {
		switch typ {
		case tcaKind:
			m.Kind = cstring(v)
		case tcaOpts:
			m.Options = v
		case tcaStats:
			oldStats = v
		case tcaXstats:
			if m.Xstats == nil {
				m.Xstats = v
			}
		case tcaStats2:
			return attrs(v, func(typ uint16, v []byte) error {
				switch typ {
				case tcaStatsBasic:
					// struct gnet_stats_basic { __u64 bytes; __u32 packets; }
					if len(v) < 12 {
						return fmt.Errorf("TCA_STATS_BASIC: %w", errShort)
					}
					m.HasStats = true
					m.Bytes = u64(v, 0)
					if m.Packets == 0 {
						m.Packets = uint64(u32(v, 8))
					}
				case tcaStatsPkt64:
					// Sent only when packets overflow 32 bits
					// (gnet_stats_copy_basic, net/core/gen_stats.c).
					if len(v) >= 8 {
						m.Packets = u64(v, 0)
					}
				case tcaStatsQueue:
					// struct gnet_stats_queue { qlen, backlog, drops,
					// requeues, overlimits }, all __u32.
					if len(v) < 20 {
						return fmt.Errorf("TCA_STATS_QUEUE: %w", errShort)
					}
					m.Qlen, m.Backlog = u32(v, 0), u32(v, 4)
					m.Drops, m.Requeues, m.Overlimits = uint64(u32(v, 8)), uint64(u32(v, 12)), uint64(u32(v, 16))
				case tcaStatsApp:
					m.Xstats = v
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	if !m.HasStats && len(oldStats) >= 36 {
		// struct tc_stats { __u64 bytes; __u32 packets, drops, overlimits,
		// bps, pps, qlen, backlog; } from kernels without TCA_STATS2.
		m.HasStats = true
		m.Bytes, m.Packets = u64(oldStats, 0), uint64(u32(oldStats, 8))
		m.Drops, m.Overlimits = uint64(u32(oldStats, 12)), uint64(u32(oldStats, 16))
		m.Qlen, m.Backlog = u32(oldStats, 28), u32(oldStats, 32)
	}
	return m, nil
}
