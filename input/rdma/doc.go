// Package rdma collects RDMA devices, ports, queue pairs and connections
// from the kernel's RDMA netlink family (NETLINK_RDMA, client
// RDMA_NL_NLDEV; include/uapi/rdma/rdma_netlink.h), for soft-RoCE (rxe),
// RoCE, InfiniBand and iWARP devices alike.
//
// New(Options) opens a Collector, Collect returns a Snapshot: every device
// with its ports (state, the netdev of a RoCE port, the port's hardware
// counters), every queue pair (local and remote QPN, type, state, send and
// receive PSN, port, owning process or kernel module, the owner's network
// namespace) and every RDMA CM identifier (source and destination address
// and port, port space, state), each connection joined to its queue pair.
// Diff(prev, cur) is pure: counter deltas and rates per port, PSN deltas
// per queue pair, and the queue pairs that are gone.
//
// A kernel without RDMA (no CONFIG_INFINIBAND, "protocol not supported")
// makes New fail with ErrNotSupported; a kernel with RDMA but no device
// gives snapshots without devices.
//
// The package imports nothing of the agent: the rdma input
// (input/rdma/rdmainput) and cmd/fleutan use it.
package rdma
