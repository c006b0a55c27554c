// Package tcplife follows every TCP connection of the host from its first
// state change to its close with an eBPF program on the
// sock:inet_sock_set_state tracepoint (bpf/tcplife.c), so that a
// connection shorter than a collection period is still seen, with the
// process that opened it and its final counters.
//
// A Tracker delivers closed connections (Conn, one per TCP_CLOSE) and
// answers, by socket cookie (sock_diag's idiag_cookie), who opened a
// connection that is still open. It imports nothing from the agent.
package tcplife
