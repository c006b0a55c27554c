// Package qdisc reads the traffic control tree of each network device of
// one or all network namespaces (queueing disciplines and their classes,
// with rtnetlink RTM_GETQDISC and RTM_GETTCLASS dumps, linux/rtnetlink.h
// and linux/pkt_sched.h) and, with an XmitCounter, the flows behind each
// TX queue (an eBPF program on the net:net_dev_start_xmit tracepoint,
// joined with the sockets and processes of the flows library). It is the
// library under the fleutan.qdisc input (input/qdisc/qdiscinput), the
// local query API and the terminal tool.
//
// Use: New(Options) once, then Collect each period; Diff(prev, cur) gives
// each qdisc's and class's change since the previous collection, the
// collector keeps no deltas of its own.
//
// # Stable
//
// Options, XmitOptions, XmitCounter, Snapshot, Qdisc, Device, Counters,
// KindStats and the kind types, QueueFlow, Namespace, QdiscDelta and their
// fields with the units documented on them; New, Collect, Close, Diff,
// OpenXmitCounter, MatchDevice, FormatHandle, Qdisc.Series and the
// constants. New fields and kinds may be added. Anything else may change.
//
// # Counters
//
//   - Counters are cumulative: bytes and packets are the qdisc's struct
//     gnet_stats_basic (64-bit bytes, packets widened by TCA_STATS_PKT64
//     when the kernel sends it); drops, overlimits and requeues come from
//     struct gnet_stats_queue (32 bits in the kernel ABI: Diff takes one
//     wrap between two collections for what it is); Backlog (bytes) and
//     Qlen (packets) are gauges.
//   - A qdisc counts what it dequeued: qdisc_pkt_len, the frame with its
//     link-layer header, and a GSO packet as gso_segs packets with the
//     headers of each segment (qdisc_pkt_len_init in net/core/dev.c).
//   - The root of a multiqueue device (mq, mqprio) reports the sum of its
//     per-queue children, which the kernel adds up when dumping (mq_dump
//     in net/sched/sch_mq.c): never add both. The children of mq and
//     mqprio carry TxQueue, the index of the TX queue they feed (their
//     parent's minor number less one).
//   - A series (Qdisc.Series) is a (namespace, device, scope, handle,
//     parent, kind). A series whose counters go backwards was recreated
//     (a qdisc deleted and added again with the same handle): Diff gives
//     Reset and its new cumulative value, as for a series born during the
//     period. Deltas are never negative.
//
// QueueFlow counts skb->len over the period, the frame as handed to the
// driver (a GSO packet is one skb of gso_segs packets whose headers are
// counted once), so for TCP with segmentation offload a flow's bytes are
// below the qdisc's by the headers of the segments after the first; for
// traffic without GSO (UDP here) the figures agree exactly.
package qdisc
