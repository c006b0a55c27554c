// Package paths discovers the hop path to a peer with TTL-limited probes,
// Paris-traceroute style: every probe of one path carries the same flow
// identifier (addresses, protocol and ports), so routers that spread
// flows over equal-cost next hops send all of them the same way and the
// path found is the one that flow takes.
//
// This package holds the prober, the library under the planned paths
// input: New(Options), then Trace per peer. Probes are UDP datagrams from
// an unprivileged socket with IP_RECVERR (IPV6_RECVERR): the ICMP time
// exceeded and destination unreachable replies arrive on the socket's
// error queue with the address of the router that sent them, so no
// CAP_NET_RAW is needed. A global token bucket (Options.Rate) bounds the
// packets sent, and a probe goes only to the target the caller names.
package paths
