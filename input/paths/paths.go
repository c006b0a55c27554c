package paths

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Method is the kind of probe.
type Method string

const (
	// MethodUDP: UDP datagrams to Options.Port from an unprivileged
	// socket, answers read from its error queue (IP_RECVERR).
	MethodUDP Method = "udp"
	// MethodICMP: ICMP echo requests with one identifier and one
	// checksum per flow identifier (the sequence number changes, a
	// payload word makes up for it), from a raw socket (CAP_NET_RAW).
	MethodICMP Method = "icmp"
	// MethodTCP: TCP SYNs to the flow's own destination port
	// (Target.Port) from one source port per flow identifier (the
	// sequence number tells probes apart), from a raw socket
	// (CAP_NET_RAW). The target answers SYN-ACK or RST; the kernel
	// resets a SYN-ACK itself, as for any port without a connection.
	MethodTCP Method = "tcp"
)

// ParseMethod checks a method name.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MethodUDP, MethodICMP, MethodTCP:
		return m, nil
	}
	return "", fmt.Errorf("paths: probe method %q is not udp, icmp or tcp", s)
}

// Options configures a Prober. Zero values take the defaults noted.
type Options struct {
	// Method is the kind of probe (MethodUDP). ICMP and TCP need
	// CAP_NET_RAW: without it New logs one line and falls back to UDP.
	Method Method
	// ProbesPerHop is how many probes each TTL gets (3).
	ProbesPerHop int
	// MaxTTL is the last TTL probed (30).
	MaxTTL int
	// Timeout is how long a probe's reply is awaited (1s).
	Timeout time.Duration
	// Rate is the global budget of probe packets per second (20); Burst
	// how many may go at once (1).
	Rate  float64
	Burst int
	// Port is the UDP destination port of the probes (33434, the
	// traceroute port): one constant port, so a path's flow identifier
	// does not change between probes.
	Port uint16
	// FlowIDs is how many flow identifiers (source ports) each path is
	// probed with (1): with more, a hop that spreads flows over
	// equal-cost next hops shows them all in its address set, while each
	// identifier's own probes still all go one way.
	FlowIDs int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger takes the one line about a fallback to UDP (discarded when
	// nil).
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.ProbesPerHop == 0 {
		o.ProbesPerHop = 3
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = 30
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Rate == 0 {
		o.Rate = 20
	}
	if o.Burst == 0 {
		o.Burst = 1
	}
	if o.Port == 0 {
		o.Port = 33434
	}
	if o.FlowIDs == 0 {
		o.FlowIDs = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Method == "" {
		o.Method = MethodUDP
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := ParseMethod(string(o.Method)); err != nil {
		return err
	}
	switch {
	case o.ProbesPerHop < 0 || o.ProbesPerHop > 10:
		return fmt.Errorf("paths: probes per hop %d is not between 1 and 10", o.ProbesPerHop)
	case o.MaxTTL < 0 || o.MaxTTL > 255:
		return fmt.Errorf("paths: max TTL %d is not between 1 and 255", o.MaxTTL)
	case o.Timeout < 0:
		return fmt.Errorf("paths: probe timeout %s is negative", o.Timeout)
	case o.FlowIDs < 0 || o.FlowIDs > 64:
		return fmt.Errorf("paths: flow identifiers %d is not between 1 and 64", o.FlowIDs)
	case o.Rate < 0 || o.Burst < 0:
		return fmt.Errorf("paths: rate %g and burst %d must be positive", o.Rate, o.Burst)
	}
	return nil
}

// Target is one peer to trace.
type Target struct {
	// Netns is the namespace file to probe from (/run/netns/NAME,
	// /proc/PID/ns/net); "" is the caller's own.
	Netns string
	Dst   netip.Addr
	// SrcPort, when not 0, is the source port of the first flow
	// identifier (the next ones count up from it): the same port in every
	// round keeps a path's flow identifier across rounds. 0 lets the
	// kernel choose. With ICMP probes it is the echo identifier.
	SrcPort uint16
	// Port is the destination port of TCP probes: the flow's own, so
	// the probes take the flow's path through routers that hash ports.
	Port uint16
}

// Hop is what one TTL found.
type Hop struct {
	TTL int `json:"ttl"`
	// Addrs are the addresses that answered, sorted: more than one when
	// the hop spreads flows over equal-cost next hops. Empty when nothing
	// answered.
	Addrs []netip.Addr `json:"addrs"`
	Sent  int          `json:"sent"`
	// Received counts the probes answered; Sent - Received were lost.
	Received int           `json:"received"`
	RTTMin   time.Duration `json:"rtt_min_ns"`
	RTTMean  time.Duration `json:"rtt_mean_ns"`
	// ICMPType and ICMPCode are those of the last answer (ICMP or
	// ICMPv6 numbering, by the target's family).
	ICMPType uint8 `json:"icmp_type"`
	ICMPCode uint8 `json:"icmp_code"`
	// TCPFlags are those of the target's answer to a TCP probe (SYN-ACK
	// 0x12, RST-ACK 0x14); then ICMPType and ICMPCode are 0.
	TCPFlags uint8 `json:"tcp_flags,omitempty"`
}

// Loss is the fraction of the hop's probes left unanswered.
func (h *Hop) Loss() float64 {
	if h.Sent == 0 {
		return 0
	}
	return float64(h.Sent-h.Received) / float64(h.Sent)
}

// Path is one trace of a target.
type Path struct {
	Dst netip.Addr `json:"dst"`
	// Method is the kind of probes; Port their destination port (UDP
	// and TCP).
	Method Method `json:"method"`
	Port   uint16 `json:"port,omitempty"`
	Hops   []Hop  `json:"hops"`
	// Reached: the target itself answered (the last hop is it).
	Reached bool `json:"reached"`
	// SrcPorts are the source ports of the probes (ICMP: the echo
	// identifiers), one per flow identifier, each constant over its
	// probes.
	SrcPorts []uint16 `json:"src_ports"`
}

// Hash identifies the path by its hops' address sets in order (a hop
// that did not answer counts as "*"): two traces with the same hash
// went the same way. 16 hex digits of FNV-1a.
func (p *Path) Hash() string {
	h := fnv.New64a()
	for _, hop := range p.Hops {
		if len(hop.Addrs) == 0 {
			h.Write([]byte("*"))
		}
		for i, a := range hop.Addrs {
			if i > 0 {
				h.Write([]byte(","))
			}
			h.Write([]byte(a.String()))
		}
		h.Write([]byte(";"))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

func (h *Hop) add(a netip.Addr) {
	if i, found := slices.BinarySearchFunc(h.Addrs, a, netip.Addr.Compare); !found {
		h.Addrs = slices.Insert(h.Addrs, i, a)
	}
}

// String is the path as traceroute prints it, one hop per line.
func (p *Path) String() string {
	var b []byte
	for _, h := range p.Hops {
		b = strconv.AppendInt(b, int64(h.TTL), 10)
		if len(h.Addrs) == 0 {
			b = append(b, " *"...)
		}
		for _, a := range h.Addrs {
			b = append(b, ' ')
			b = a.AppendTo(b)
		}
		b = append(b, '\n')
	}
	return string(b)
}
