// Package paths discovers the hop path to a peer with TTL-limited probes,
// Paris-traceroute style: every probe of one path carries the same flow
// identifier (addresses, protocol and ports), so routers that spread
// flows over equal-cost next hops send all of them the same way and the
// path found is the one that flow takes.
//
// This package holds the prober, the library under the paths input:
// New(Options), then Trace per peer. By default probes are UDP datagrams
// from an unprivileged socket with IP_RECVERR (IPV6_RECVERR): the ICMP
// time exceeded and destination unreachable replies arrive on the
// socket's error queue with the address of the router that sent them, so
// no CAP_NET_RAW is needed. Options.Method asks for ICMP echo requests
// (one identifier and one checksum per flow identifier) or TCP SYNs to
// the flow's own destination port (one source port per flow identifier)
// instead, sent and answered on raw sockets: they need CAP_NET_RAW, and
// without it New logs one line naming it and probes with UDP. A global
// token bucket (Options.Rate) bounds the packets sent, and a probe goes
// only to the target the caller names.
package paths
