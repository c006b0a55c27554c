// Package pathsinput is the fleutan.paths input, off unless configured:
// it sends probes to the peers of the host's flows. Each interval it
// collects the established flows with the flows library (input/flows),
// keeps those its own filters select (cidrs, ports, processes; never
// loopback peers), groups them by peer and namespace, and traces the
// busiest max_peers peers with the paths prober (input/paths) from the
// flows' own namespace, Paris-style, at most rate packets a second over
// all peers. method udp (the default) needs no privilege; icmp (echo
// requests) and tcp (SYNs to the destination port of the peer's first
// outbound flow, else of its first flow) need CAP_NET_RAW, and without
// it the input logs one line naming the capability and probes with udp.
//
// Events, dataset fleutan.paths, as each peer's trace ends:
//
//   - one with fleutan.paths.type "path": the hops as an array of
//     objects (ttl, addrs: the set of addresses that answered, sent,
//     received, loss.pct, rtt_min_us, rtt_mean_us, icmp.type and icmp.code,
//     or tcp_flags when the target answered a SYN), hop_count, method,
//     port (udp and tcp), reached, hash, changed (the hash differs from
//     the peer's previous round) with previous_hash and, when changed,
//     first_divergent_hop (the first TTL whose address set differs from
//     the previous path's: ttl, addrs, previous_addrs), and the flows (count,
//     community_ids) and processes (name, pid) that use the peer;
//   - one per hop with type "hop" and the hop object as fleutan.paths.hop,
//     so that hops aggregate by address.
//
// A peer keeps its probes' source ports from round to round, so its flow
// identifiers, and with them the equal-cost next hops it takes, stay the
// same unless the route changes.
package pathsinput
