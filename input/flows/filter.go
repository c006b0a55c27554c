package flows

import (
	"net/netip"
	"regexp"
)

// Filter selects flows by address, port and process. The zero Filter
// keeps every flow. Protocols, families and states are not here: they
// shape the sock_diag requests themselves (Options).
type Filter struct {
	// ExcludeLoopback leaves out flows with a loopback local or remote
	// address.
	ExcludeLoopback bool
	// CIDRInclude and CIDRExclude match the remote address (the local one
	// of listening sockets): a flow is kept when it is in an include
	// prefix (any, when none) and in no exclude prefix. IPv4-mapped
	// addresses match as IPv4.
	CIDRInclude, CIDRExclude []netip.Prefix
	// PortInclude and PortExclude match the local or the remote port; port
	// 0 (no port) matches nothing.
	PortInclude, PortExclude []PortRange
	// Processes match the whole process name (comm); when set, flows
	// without a matching known process are left out. Anchor the
	// expressions (^(?:...)$) to match the whole name.
	Processes []*regexp.Regexp
}

// PortRange is the ports Lo to Hi, both included.
type PortRange struct{ Lo, Hi uint16 }

// Keep reports whether fl passes the filter.
func (f *Filter) Keep(fl *Flow) bool {
	local, remote := fl.Local.Addr().Unmap(), fl.Remote.Addr().Unmap()
	if f.ExcludeLoopback && (local.IsLoopback() || remote.IsLoopback()) {
		return false
	}
	peer := remote
	if fl.Direction == Listening {
		peer = local
	}
	if len(f.CIDRInclude) > 0 && !inPrefixes(f.CIDRInclude, peer) {
		return false
	}
	if inPrefixes(f.CIDRExclude, peer) {
		return false
	}
	lp, rp := fl.Local.Port(), fl.Remote.Port()
	if len(f.PortInclude) > 0 && !inRanges(f.PortInclude, lp) && !inRanges(f.PortInclude, rp) {
		return false
	}
	if inRanges(f.PortExclude, lp) || inRanges(f.PortExclude, rp) {
		return false
	}
	if len(f.Processes) > 0 {
		if fl.Process == nil {
			return false
		}
		matched := false
		for _, re := range f.Processes {
			if re.MatchString(fl.Process.Name) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	return true
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// inRanges ignores port 0: a listening socket's remote port and an
// unbound one mean no port.
func inRanges(rs []PortRange, p uint16) bool {
	if p == 0 {
		return false
	}
	for _, r := range rs {
		if p >= r.Lo && p <= r.Hi {
			return true
		}
	}
	return false
}
