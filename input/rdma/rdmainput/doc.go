// Package rdmainput is the rdma input (dataset fleutan.rdma), off unless
// configured: once a period it collects the RDMA devices, queue pairs and
// CM identifiers with the rdma library (input/rdma) and publishes
//
//   - per queue pair (fleutan.rdma.scope "qp"): its numbers, type, state,
//     send and receive PSNs and how far they moved in the period, the
//     device, port and netdev, the owner as process.* and user.* (as the
//     flows input names a socket's owner) or the kernel module owning it,
//     and, for a queue pair connected through the RDMA CM, source.* and
//     destination.* (the initiator is the source), network.direction and
//     fleutan.rdma.local/remote; network.transport is "roce",
//     "infiniband", "iwarp" or "opa" by the device's protocol;
//     fleutan.rdma.flow_id names the connection the same from both ends;
//     a queue pair that is gone gets one last event with
//     fleutan.rdma.final true;
//   - per port and hardware counter (scope "counter"): the counter's
//     name, cumulative value, delta and rate over the period.
//
// Without RDMA (a kernel without CONFIG_INFINIBAND, or no device) it logs
// that once and publishes nothing until devices appear.
package rdmainput
