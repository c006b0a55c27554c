package rdma

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/fleutan/fleutanbeat/input/process"
)

// ErrNotSupported: the kernel has no RDMA netlink family (built without
// CONFIG_INFINIBAND, or ib_core not loaded), or the OS is not Linux.
var ErrNotSupported = errors.New("rdma: the kernel has no RDMA netlink (NETLINK_RDMA)")

// Options configures a Collector. Zero values take the defaults noted.
type Options struct {
	// Netns is a namespace file (/run/netns/NAME, /proc/PID/ns/net) to
	// open the netlink sockets in; "" is the caller's. Devices are seen
	// from every namespace (the RDMA subsystem's default "shared" mode),
	// but the kernel names a port's netdev only to a socket of the
	// netdev's own namespace.
	Netns string
	// ProcRoot is the /proc mount the owners of queue pairs are read
	// from ("/proc").
	ProcRoot string
	// NoCounters skips the per-port hardware counters (one request per
	// port).
	NoCounters bool
	// Timeout bounds each netlink read (5s).
	Timeout time.Duration
	// Logger receives what the collector notices but does not return.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Snapshot is one collection. It shares nothing with the Collector.
type Snapshot struct {
	Time    time.Time `json:"time"`
	Devices []Device  `json:"devices"`
	// QPs are sorted by device index and local QPN.
	QPs []QP `json:"qps"`
	// CMIDs are the RDMA CM identifiers, listeners and those not (yet)
	// bound to a queue pair included.
	CMIDs []CMID `json:"cm_ids"`
}

// Device is one RDMA device (an ib_device).
type Device struct {
	Index uint32 `json:"index"`
	Name  string `json:"name"`
	// Protocol is the kernel's name of the device's transport: "roce",
	// "ib", "iw" or "opa"; "" before Linux 5.6.
	Protocol        string `json:"protocol,omitempty"`
	FirmwareVersion string `json:"firmware_version,omitempty"`
	// NodeGUID in the kernel's byte order as four groups of hex digits.
	NodeGUID string `json:"node_guid,omitempty"`
	// NodeType is enum rdma_node_type (1 CA, 2 switch, 3 router, 4 RNIC,
	// ...).
	NodeType uint8  `json:"node_type,omitempty"`
	Ports    []Port `json:"ports"`
}

// Port is one port of a device. Ports count from 1.
type Port struct {
	Index uint32 `json:"index"`
	// State is enum ib_port_state by name: DOWN, INIT, ARMED, ACTIVE,
	// ACTIVE_DEFER.
	State     string `json:"state"`
	PhysState uint8  `json:"phys_state"`
	// Netdev and NetdevIndex name the RoCE or iWARP port's network
	// device, when it is in the collector's namespace.
	Netdev      string `json:"netdev,omitempty"`
	NetdevIndex uint32 `json:"netdev_index,omitempty"`
	// Counters are the port's hardware counters by the driver's names
	// (rxe: sent_pkts, rcvd_pkts, duplicate_request, out_of_seq_request,
	// retry_exceeded_err, ...), cumulative.
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// QP is one queue pair.
type QP struct {
	DeviceIndex uint32 `json:"device_index"`
	Device      string `json:"device"`
	// Port is 0 until the QP is bound to one (RESET state).
	Port uint32 `json:"port,omitempty"`
	LQPN uint32 `json:"lqpn"`
	// RQPN, RQPSN and PathMigState are reported for connected types (RC,
	// UC) only.
	RQPN  uint32 `json:"rqpn,omitempty"`
	Type  string `json:"type"`
	State string `json:"state"`
	SQPSN uint32 `json:"sq_psn"`
	RQPSN uint32 `json:"rq_psn,omitempty"`
	PDN   uint32 `json:"pdn,omitempty"`
	// PID is the owning process as the collector's pid namespace sees it;
	// 0 for a QP the kernel owns, which KernelOwner then names (a module:
	// "ib_core" for the GSI QP, "rdma_cm", ...).
	PID         int    `json:"pid,omitempty"`
	KernelOwner string `json:"kernel_owner,omitempty"`
	// Process is the owner as /proc showed it; nil when it could not be
	// read.
	Process *process.Process `json:"process,omitempty"`
	// Netns is the inode of the owner's network namespace; 0 unknown.
	Netns uint64 `json:"netns,omitempty"`
	// CM is the RDMA CM identifier the QP is connected through, nil for a
	// QP set up without the CM (verbs and an out-of-band exchange).
	CM *CMID `json:"cm,omitempty"`
}

// Key identifies a queue pair while it lives: a device's QPNs are unique.
type Key struct {
	DeviceIndex uint32
	LQPN        uint32
}

// Key of the QP.
func (q *QP) Key() Key { return Key{q.DeviceIndex, q.LQPN} }

// CMID is one RDMA CM identifier (struct rdma_id_private).
type CMID struct {
	DeviceIndex uint32 `json:"device_index,omitempty"`
	Device      string `json:"device,omitempty"`
	Port        uint32 `json:"port,omitempty"`
	// ID is the kernel's CM_IDN, stable while the identifier lives.
	ID uint32 `json:"id"`
	// LQPN is the queue pair it carries, 0 for none (a listener).
	LQPN uint32 `json:"lqpn,omitempty"`
	// PortSpace is RDMA_PS_* by name: "tcp", "udp", "ib", "ipoib".
	PortSpace string `json:"port_space"`
	// State is enum rdma_cm_state by name: IDLE, ADDR_QUERY,
	// ADDR_RESOLVED, ROUTE_QUERY, ROUTE_RESOLVED, CONNECT, DISCONNECT,
	// ADDR_BOUND, LISTEN, DEVICE_REMOVAL, DESTROYING.
	State string         `json:"state"`
	Src   netip.AddrPort `json:"src"`
	Dst   netip.AddrPort `json:"dst"`
	// Inbound: a listener of this port space has the identifier's source
	// port, so the peer initiated (the passive side of the connection).
	Inbound     bool   `json:"inbound,omitempty"`
	PID         int    `json:"pid,omitempty"`
	KernelOwner string `json:"kernel_owner,omitempty"`
}
