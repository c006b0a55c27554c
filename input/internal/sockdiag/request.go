package sockdiag

import (
	"fmt"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
)

// Request selects the sockets of one dump.
type Request struct {
	Family   uint8  // unix.AF_INET or unix.AF_INET6
	Protocol uint8  // unix.IPPROTO_TCP, unix.IPPROTO_UDP, ...
	States   uint32 // bitmask of 1<<state (TCP_*); 0 means all
	Ext      Ext
}

// extFor drops the extensions that only TCP answers: udp_diag has no
// idiag_get_info, so asking for INET_DIAG_INFO (or the congestion name) on
// UDP only costs the kernel a lookup.
func (r Request) extFor() Ext {
	if r.Protocol != ipprotoTCP {
		return r.Ext &^ (ExtInfo | ExtCong)
	}
	return r.Ext
}

// marshal appends the nlmsghdr and struct inet_diag_req_v2
// (linux/inet_diag.h) of a dump request to b.
func (r Request) marshal(b []byte, seq uint32) ([]byte, error) {
	if r.Family != afInet && r.Family != afInet6 {
		return b, fmt.Errorf("request family %d: want AF_INET (%d) or AF_INET6 (%d)", r.Family, afInet, afInet6)
	}
	states := r.States
	if states == 0 {
		states = AllStates
	}
	b = netlink.AppendHeader(b, sockDiagByFamily, netlink.FlagRequest|netlink.FlagDump, seq, inetDiagReqLen)
	b = append(b, r.Family, r.Protocol, uint8(r.extFor()), 0)
	b = ne.AppendUint32(b, states)
	// struct inet_diag_sockid, all zero for a dump: no filter, and
	// idiag_cookie {0, 0} rather than INET_DIAG_NOCOOKIE, which only
	// matters for single-socket lookups.
	var id [inetDiagReqLen - 8]byte
	return append(b, id[:]...), nil
}
