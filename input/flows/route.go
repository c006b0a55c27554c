package flows

import (
	"net/netip"
	"time"
)

// Route is how the flow's namespace routes packets to its peer, as
// `ip route get PEER` answers (RTM_GETROUTE): the egress device, the
// gateway (invalid for a peer on a connected network) and the source
// address the kernel prefers.
type Route struct {
	Device  string     `json:"device"`
	Gateway netip.Addr `json:"gateway,omitzero"`
	Src     netip.Addr `json:"src,omitzero"`
}

// defaultRouteTTL is how long a looked-up route is trusted when no route
// change notification says otherwise. Notifications make a change visible
// at the next collection; the TTL only bounds the damage of a lost one.
const defaultRouteTTL = time.Minute
