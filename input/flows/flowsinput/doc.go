// Package flowsinput is the fleutan.flows input: events of TCP and UDP
// sockets each period (every socket, or those new, changed, ended or due
// a heartbeat: the report option), from the snapshots of the flows library
// (input/flows), which reads them with NETLINK_SOCK_DIAG
// (linux/inet_diag.h) in one or all network namespaces and attributes them
// to processes through /proc. The input parses its configuration into the
// library's Options and Filter, chooses the method, keeps the previous
// snapshot for flows.Diff and turns each flow and its delta into an event.
// With report: active (the default) a small reporter picks the flows of a
// period (new, changed, final, heartbeat due); it keeps about 60 bytes of
// heap per live flow, keyed by socket cookie, and no deltas: a skipped
// period's delta is zero, so the next event's delta is exact
// (BenchmarkReporter: 3.2 ms of CPU per period at 36,000 flows).
//
// Rollups (rollup: true, the default): each period, one event per process
// owning flows, fleutan.flow.scope: process, sums all of that process's
// flows the filters keep, whether report: active gave them an event or
// not and whether max_flows dropped them: flows by state and direction,
// final ones, the sums of their Diff deltas for the period (so, in either
// mode, the sum of the delta of the process's flow events of the same
// collection), min/mean/max smoothed RTT of its TCP flows with a measured
// RTT, distinct remote addresses, and its cores from the cpu input's
// latest period (input.ProcessCores) when that input runs. Flows without
// a process have no rollup (BenchmarkRollup: about 1.5 ms of CPU per
// period at 36,000 flows of 200 processes).
//
// Units and counter semantics, checked against a real kernel in the tests:
//
//   - fleutan.flow.tcp.* are the kernel's struct tcp_info values as read,
//     except delivery_rate_bps and pacing_rate_bps, which the kernel gives in
//     bytes per second and which are converted to bits per second (×8), as
//     ss(8) prints them. rtt_us, rttvar_us and min_rtt_us are microseconds.
//     A field past the end of an older kernel's shorter struct is absent,
//     never 0 (bytes_sent and bytes_retrans need 4.19, delivery_rate 4.9).
//   - bdp_bytes is the bandwidth-delay product estimate
//     tcpi_delivery_rate [bytes/s] × tcpi_min_rtt [µs] / 1e6, the same
//     product of bottleneck bandwidth and round-trip propagation time that
//     BBR uses (draft-cardwell-iccrg-bbr-congestion-control).
//   - tcpi_bytes_acked and tcpi_bytes_received (RFC 4898
//     tcpEStatsAppHCThruOctetsAcked/Received) count sequence space, so they
//     include the control flags: the active opener's SYN is counted in its
//     bytes_acked (the passive side starts snd_una after its SYN-ACK, see
//     tcp_create_openreq_child), an acknowledged FIN adds one to the sender's
//     bytes_acked (FIN-WAIT-2, TIME-WAIT) and a received FIN one to the
//     receiver's bytes_received (CLOSE-WAIT, LAST-ACK, CLOSING, TIME-WAIT).
//     The payload figures (source/destination.bytes, network.bytes and
//     fleutan.flow.delta.bytes_*) take those out and are application bytes;
//     fleutan.flow.tcp.bytes_* stay raw. The SYN is attributed by
//     direction: an accepted socket whose listener has gone is taken as
//     outbound and reads one byte short (never below zero).
//   - packets are segments (tcpi_segs_out/segs_in), control segments
//     included. UDP sockets carry no counters in sock_diag, so UDP flows
//     have no bytes, packets or deltas.
//
// Process attribution: a socket's process is the lowest-pid process whose
// /proc/PID/fd holds it, among those ss -tnp lists for it at the same
// moment, from the first collection on (input/internal/procindex says how
// the index stays exact cheaply, also when a socket takes the fd number of
// a closed file). Sockets left without a process are counted per
// collection on /stats as input.flows.unattributed, by reason: exited (its
// known holders exited), unreadable (a process's fd table could not be
// read, without CAP_SYS_PTRACE for instance) and no_owner (no readable
// process holds it: kernel sockets, sockets in flight in SCM_RIGHTS, an
// owner that exited before it was found).
//
// Direction: a TCP LISTEN socket or an unconnected UDP socket (state CLOSE,
// no remote) is listening; a connected socket whose local port is the port
// of a listener of the same namespace and protocol, bound to the same
// address or to the wildcard, is inbound; anything else is outbound. That
// host-centric direction is fleutan.flow.direction; network.direction
// carries ECS's host-based values, ingress (inbound) and egress
// (outbound), and unknown for listening sockets.
//
// Route (routes: true, the default): fleutan.flow.route.device, gateway and
// src are what `ip route get REMOTE` answers in the flow's namespace, looked
// up once per distinct peer and cached for route_ttl; a route or link
// change in that namespace drops its cache, so the next collection shows
// the new route. A peer on a connected network has no gateway; a peer
// without a route (unreachable, prohibit) has no route object. Listening
// sockets have none either. The cache makes the steady cost a map lookup
// per flow; on a host whose routes change every period each distinct peer
// is looked up again, about 3 µs each (BenchmarkRouteAssign in
// input/flows).
//
// Method (method: auto | ebpf | procfs). A snapshot per period misses TCP
// connections that open and close between two snapshots. With ebpf, the
// tcplife tracker (input/internal/tcplife) follows every TCP connection on
// the sock:inet_sock_set_state tracepoint, keyed by socket cookie (the
// idiag_cookie of sock_diag):
//
//   - a connection born and closed between two collections gives exactly
//     one event, final, in the collection that follows its close: state
//     close, the counters of TCP_CLOSE, deltas equal to them, event.duration
//     its lifetime (first state change to TCP_CLOSE) and the process that
//     called connect(2), or that owns the listener for an accepted one
//     (read from /proc while it lives, else the pid and comm the kernel
//     saw, without user);
//   - a flow that leaves the dump is reported final once it reaches
//     TCP_CLOSE, with the counters the kernel had then and the delta since
//     its last report; while the kernel still tracks it (FIN-WAIT,
//     CLOSE-WAIT) its final report waits;
//   - at TCP_CLOSE the payload takes out the SYN when this side connected
//     and an acknowledged FIN (snd_una reached write_seq after our FIN was
//     queued) and a received FIN (SOCK_DONE, set by tcp_fin);
//   - a new connection's tgid makes the process index rescan that process
//     (procindex.Index.Hint), and names the owner of a socket no fd table
//     showed yet.
//
// UDP sockets that are bound and closed within a period are not seen with
// either method.
package flowsinput
