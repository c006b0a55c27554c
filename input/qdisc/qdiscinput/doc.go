// Package qdiscinput is the fleutan.qdisc input: the traffic control tree
// of each network device (queueing disciplines and their classes) and,
// when eBPF is available, the flows behind each TX queue, from the
// snapshots of the qdisc library (input/qdisc). The input parses its
// configuration into the library's Options, attaches the transmit counter
// (flow_attribution), keeps the previous snapshot for qdisc.Diff and turns
// each qdisc, class and queue flow into an event.
//
// Counters and their semantics:
//
//   - bytes and packets are the qdisc's struct gnet_stats_basic (64-bit
//     bytes, packets widened by TCA_STATS_PKT64 when the kernel sends it);
//     drops, overlimits, requeues, backlog and qlen come from struct
//     gnet_stats_queue (32 bits in the kernel ABI, unsigned subtraction
//     absorbs one wrap between two periods).
//   - A qdisc counts what it dequeued: qdisc_pkt_len, i.e. the frame with
//     its link-layer header, and a GSO packet as gso_segs packets with the
//     headers of each segment (qdisc_pkt_len_init in net/core/dev.c).
//   - The root of a multiqueue device (mq, mqprio) reports the sum of its
//     per-queue children, which the kernel adds up when dumping
//     (mq_dump in net/sched/sch_mq.c); events never add both again. The
//     children of mq and mqprio carry fleutan.qdisc.tx_queue, the index
//     of the TX queue they feed (their parent's minor number less one).
//   - A series is a (namespace, device, scope, handle, parent, kind). A
//     series whose counters go backwards was recreated (a qdisc deleted
//     and added again with the same handle): its delta is then its new
//     cumulative value, as for a series born during the period. Deltas
//     are never negative.
//
// Flow attribution counts skb->len, the frame as handed to the driver
// (a GSO packet is one skb of gso_segs packets whose headers are counted
// once), so for TCP with segmentation offload a flow's bytes are below
// the qdisc's by the headers of the segments after the first; for
// traffic without GSO (UDP here) the figures agree exactly.
package qdiscinput
