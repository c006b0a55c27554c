package flows

import (
	"net/netip"
	"regexp"
)

// filter applies the address, port and process options of a Config to
// collected flows. Protocols, families and states are not here: they shape
// the sock_diag requests themselves.
type filter struct {
	includeLoopback bool
	cidrInclude     []netip.Prefix
	cidrExclude     []netip.Prefix
	portInclude     []portRange
	portExclude     []portRange
	processes       []*regexp.Regexp
}

// newFilter compiles a validated Config.
func newFilter(c *Config) (*filter, error) {
	f := &filter{includeLoopback: c.IncludeLoopback}
	for _, s := range c.CIDRs.Include {
		p, err := parseCIDR(s)
		if err != nil {
			return nil, err
		}
		f.cidrInclude = append(f.cidrInclude, p)
	}
	for _, s := range c.CIDRs.Exclude {
		p, err := parseCIDR(s)
		if err != nil {
			return nil, err
		}
		f.cidrExclude = append(f.cidrExclude, p)
	}
	for _, s := range c.Ports.Include {
		r, err := parsePortRange(s)
		if err != nil {
			return nil, err
		}
		f.portInclude = append(f.portInclude, r)
	}
	for _, s := range c.Ports.Exclude {
		r, err := parsePortRange(s)
		if err != nil {
			return nil, err
		}
		f.portExclude = append(f.portExclude, r)
	}
	for _, s := range c.Processes {
		re, err := compileProcess(s)
		if err != nil {
			return nil, err
		}
		f.processes = append(f.processes, re)
	}
	return f, nil
}

func (f *filter) keep(fl *Flow) bool {
	local, remote := fl.Local.Addr().Unmap(), fl.Remote.Addr().Unmap()
	if !f.includeLoopback && (local.IsLoopback() || remote.IsLoopback()) {
		return false
	}
	peer := remote
	if fl.Direction == Listening {
		peer = local
	}
	if len(f.cidrInclude) > 0 && !inPrefixes(f.cidrInclude, peer) {
		return false
	}
	if inPrefixes(f.cidrExclude, peer) {
		return false
	}
	lp, rp := fl.Local.Port(), fl.Remote.Port()
	if len(f.portInclude) > 0 && !inRanges(f.portInclude, lp) && !inRanges(f.portInclude, rp) {
		return false
	}
	if inRanges(f.portExclude, lp) || inRanges(f.portExclude, rp) {
		return false
	}
	if len(f.processes) > 0 {
		if fl.Process == nil {
			return false
		}
		matched := false
		for _, re := range f.processes {
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
func inRanges(rs []portRange, p uint16) bool {
	if p == 0 {
		return false
	}
	for _, r := range rs {
		if p >= r.lo && p <= r.hi {
			return true
		}
	}
	return false
}
