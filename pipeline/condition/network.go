package condition

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

// namedRanges are the network names Beats accepts besides CIDRs. "private"
// is RFC 1918 plus fc00::/7 (RFC 4193), as netip.Addr.IsPrivate; "public"
// is everything that is neither private nor local in the sense of Beats'
// network condition (loopback, unspecified, link-local, interface-local
// multicast, the limited broadcast address).
var namedRanges = []struct {
	name string
	fn   func(netip.Addr) bool
}{
	{"loopback", netip.Addr.IsLoopback},
	{"unicast", netip.Addr.IsGlobalUnicast},
	{"multicast", netip.Addr.IsMulticast},
	{"interface_local_multicast", netip.Addr.IsInterfaceLocalMulticast},
	{"link_local_unicast", netip.Addr.IsLinkLocalUnicast},
	{"link_local_multicast", netip.Addr.IsLinkLocalMulticast},
	{"private", netip.Addr.IsPrivate},
	{"public", isPublic},
	{"unspecified", netip.Addr.IsUnspecified},
}

var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func isPublic(a netip.Addr) bool {
	return !(a.IsPrivate() || a.IsLoopback() || a.IsUnspecified() || a == broadcast4 ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast())
}

// network is one accepted range: a named class or a prefix.
type network struct {
	name   string
	fn     func(netip.Addr) bool
	prefix netip.Prefix
}

func (n network) contains(a netip.Addr) bool {
	if n.fn != nil {
		return n.fn(a)
	}
	return n.prefix.Contains(a)
}

func (n network) String() string {
	if n.fn != nil {
		return n.name
	}
	return n.prefix.String()
}

type fieldNetworks struct {
	field string
	nets  []network
}

// networks matches IP fields against ranges; several ranges for one field
// are alternatives, several fields must all match.
type networks []fieldNetworks

func (b *builder) newNetwork(cfg config.Raw) (Condition, error) {
	leaves, err := b.fieldLeaves(cfg)
	if err != nil {
		return nil, err
	}
	var (
		out  networks
		errs []error
	)
	for _, l := range leaves {
		f := fieldNetworks{field: l.field}
		items := []config.Raw{l.raw}
		if n := deref(l.raw.Node()); n != nil && n.Kind == yaml.SequenceNode {
			items = items[:0]
			for i, el := range n.Content {
				items = append(items, sub(l.raw, itoa(i), el))
			}
			if len(items) == 0 {
				errs = append(errs, l.raw.Errorf("expected a CIDR, a named range or a list of them, got an empty list"))
				continue
			}
		}
		for _, it := range items {
			nw, err := parseNetwork(it)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.nets = append(f.nets, nw)
		}
		out = append(out, f)
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return out, nil
}

func parseNetwork(r config.Raw) (network, error) {
	s, err := scalarText(r, "a CIDR or a named range (loopback, private, ...)")
	if err != nil {
		return network{}, err
	}
	for _, nr := range namedRanges {
		if s == nr.name {
			return network{name: nr.name, fn: nr.fn}, nil
		}
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return network{prefix: unmapPrefix(p.Masked())}, nil
	}
	// A bare address is the one-address network, a convenience over Beats.
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return network{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	return network{}, r.Errorf("%q is not a CIDR or a named range (loopback, private, ...)", s)
}

// unmapPrefix turns ::ffff:10.0.0.0/104 into 10.0.0.0/8 so that it matches
// the unmapped addresses Check compares.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func (n networks) Check(m pipeline.M) bool {
	for _, f := range n {
		v, ok := m.GetMember(f.field)
		if !ok {
			return false
		}
		var a netip.Addr
		if v.Kind() == pipeline.KindString {
			a, ok = parseAddress(v.Str())
		} else {
			a, ok = address(v.Value())
		}
		if !ok {
			return false
		}
		match := false
		for _, nw := range f.nets {
			if nw.contains(a) {
				match = true
				break
			}
		}
		if !match {
			return false
		}
	}
	return true
}

func (n networks) String() string {
	parts := make([]string, len(n))
	for i, f := range n {
		ns := make([]string, len(f.nets))
		for j, nw := range f.nets {
			ns[j] = nw.String()
		}
		parts[i] = f.field + ": " + strings.Join(ns, " | ")
	}
	return "network(" + strings.Join(parts, ", ") + ")"
}

func itoa(i int) string { return strconv.Itoa(i) }
