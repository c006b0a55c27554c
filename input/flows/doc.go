// Package flows reads the TCP and UDP sockets of one or all network
// namespaces with NETLINK_SOCK_DIAG (linux/inet_diag.h), attributes each
// to the process that holds it through /proc, and optionally follows
// every TCP connection from its first state change to its close with eBPF
// (Tracker). It is the library under the fleutan.flows input
// (input/flows/flowsinput), the qdisc collector's flow join, the local
// query API and the terminal tool.
//
// Use: New(Options) once, then Collect each period; each Snapshot holds
// the live flows with cumulative counters plus one Final flow for each
// flow that ended since the previous collection. Diff(prev, cur) gives the
// change of each flow's counters over the period; the collector keeps no
// deltas of its own.
//
// # Stable
//
// Options, Filter, Tracker/TrackerOptions/TrackerStats, Snapshot, Flow,
// TCPInfo, Delta, FlowDelta, Namespace, Unattributed, Key and their
// fields with the units documented on them; New, Collect, Close, Diff,
// AppendDiff, Clone, StateMask, StateName, TransportName, FamilyName and
// the constants. New fields may be added. Anything else (Options.AfterDump,
// the JSON of unexported state) may change.
//
// # Units and counter semantics
//
// Checked against a real kernel in the tests:
//
//   - TCPInfo holds the kernel's struct tcp_info values as read:
//     RTTs in microseconds, rates in bytes per second, counters cumulative.
//     A field past the end of an older kernel's shorter struct is absent
//     (TCPInfo.Has), never 0 (bytes_sent and bytes_retrans need 4.19,
//     delivery_rate 4.9). TCPInfo.BDPBytes is the bandwidth-delay product
//     estimate delivery_rate × min_rtt, as BBR uses it.
//   - tcpi_bytes_acked and tcpi_bytes_received (RFC 4898) count sequence
//     space, so they include the SYN of the active opener and an
//     acknowledged or received FIN. Flow.BytesOut and Flow.BytesIn take
//     those out: they and Delta's bytes are application payload. An
//     accepted socket whose listener has gone is taken as outbound and
//     reads one byte short (never below zero).
//   - Segment counters count segments, control segments included. UDP
//     sockets carry no counters in sock_diag: UDP flows have no TCPInfo
//     and no delta.
//
// # Processes
//
// A socket's process is the lowest-pid process whose /proc/PID/fd holds
// it, from the first collection on; Snapshot.Unattributed counts the
// sockets left without one, by reason.
//
// # Direction
//
// A TCP LISTEN socket or an unconnected UDP socket (state CLOSE, no
// remote) is Listening; a connected socket whose local port is the port
// of a listener of the same namespace and protocol, bound to the same
// address or to the wildcard, is Inbound; anything else is Outbound.
//
// # Lifecycle and Diff
//
// A snapshot per period misses TCP connections that open and close
// between two snapshots. With a Tracker:
//
//   - a connection born and closed between two collections is one flow,
//     Final and Closed, in the collection that follows its close, with
//     the counters of TCP_CLOSE (CloseCounters) and, when the tracker saw
//     it start (Started), its whole count as delta;
//   - a flow that leaves the dump is reported Final once it reaches
//     TCP_CLOSE, with the counters the kernel had then and its delta since
//     its last live report; while the kernel still tracks it (FIN-WAIT,
//     CLOSE-WAIT outside the state selection) it waits in
//     Snapshot.Lingering;
//   - a new connection's opener names the owner of a socket no fd table
//     showed yet.
//
// Without a tracker, a flow that leaves the dump is reported Final once,
// with the values of its last snapshot and no delta. A flow new in a
// namespace that an earlier collection dumped completely (Namespace.Known)
// was born since: its delta is its whole count; a flow present at the
// first collection of its namespace has none.
//
// UDP sockets that are bound and closed within a period are not seen.
package flows
