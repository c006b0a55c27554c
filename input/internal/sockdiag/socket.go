// Package sockdiag dumps inet sockets with NETLINK_SOCK_DIAG
// (linux/inet_diag.h), including tcp_info, the congestion algorithm and
// socket memory, on one reusable netlink socket per network namespace.
package sockdiag

import "net/netip"

// Ext selects inet_diag extensions (INET_DIAG_* attribute bits).
type Ext uint8

const (
	ExtMemInfo    Ext = 1 << (1 - 1) // INET_DIAG_MEMINFO
	ExtInfo       Ext = 1 << (2 - 1) // INET_DIAG_INFO: tcp_info
	ExtCong       Ext = 1 << (4 - 1) // INET_DIAG_CONG
	ExtSkMemInfo  Ext = 1 << (7 - 1) // INET_DIAG_SKMEMINFO
	ExtTCPDefault     = ExtInfo | ExtCong | ExtSkMemInfo
)

// Socket is one entry of a dump. Dump reuses the value it passes to its
// callback: copy what you keep.
type Socket struct {
	Family   uint8 // unix.AF_INET or unix.AF_INET6
	Protocol uint8 // unix.IPPROTO_TCP or unix.IPPROTO_UDP
	// State uses the kernel's TCP state numbers (linux/tcp_states.h) for TCP
	// and UDP alike: a connected UDP socket is ESTABLISHED (1), an
	// unconnected one CLOSE (7).
	State     uint8
	Local     netip.AddrPort // unmapped for AF_INET
	Remote    netip.AddrPort
	Interface uint32
	Cookie    uint64
	// Timer, Retrans and Expires are idiag_timer, idiag_retrans and
	// idiag_expires (ms): the pending timer as ss -o shows it.
	Timer   uint8
	Retrans uint8
	Expires uint32
	UID     uint32
	Inode   uint32
	RQueue  uint32
	WQueue  uint32

	HasTCPInfo bool
	TCPInfo    TCPInfo
	// Congestion is the algorithm name ("cubic"); interned, so it does not
	// allocate per socket.
	Congestion string
	HasMem     bool
	Mem        SkMemInfo
	// HasMemInfo and MemInfo are the older INET_DIAG_MEMINFO (ExtMemInfo).
	HasMemInfo bool
	MemInfo    MemInfo
}

// MemInfo is struct inet_diag_meminfo (linux/inet_diag.h).
type MemInfo struct {
	Rmem, Wmem, Fmem, Tmem uint32
}

// SkMemInfo is INET_DIAG_SKMEMINFO (SK_MEMINFO_* in linux/sock_diag.h).
type SkMemInfo struct {
	RmemAlloc, Rcvbuf, WmemAlloc, Sndbuf, FwdAlloc, WmemQueued, Optmem, Backlog, Drops uint32
}

// TCPInfo is struct tcp_info (linux/tcp.h). Fields newer than the running
// kernel's struct stay zero; Len says how many bytes the kernel sent.
type TCPInfo struct {
	Len int

	State, CAState, Retransmits, Probes, Backoff, Options uint8
	SndWScale, RcvWScale                                  uint8
	DeliveryRateAppLimited                                bool

	RTO, ATO, SndMSS, RcvMSS                   uint32
	Unacked, Sacked, Lost, Retrans, Fackets    uint32
	LastDataSent, LastAckSent                  uint32
	LastDataRecv, LastAckRecv                  uint32
	PMTU, RcvSsthresh, RTT, RTTVar             uint32 // RTT and RTTVar in µs
	SndSsthresh, SndCwnd, AdvMSS, Reordering   uint32
	RcvRTT, RcvSpace, TotalRetrans             uint32
	PacingRate, MaxPacingRate                  uint64 // bytes/s
	BytesAcked, BytesReceived                  uint64
	SegsOut, SegsIn, NotsentBytes, MinRTT      uint32 // MinRTT in µs
	DataSegsIn, DataSegsOut                    uint32
	DeliveryRate                               uint64 // bytes/s
	BusyTime, RwndLimited, SndbufLimited       uint64
	Delivered, DeliveredCE                     uint32
	BytesSent, BytesRetrans                    uint64
	DSackDups, ReordSeen, RcvOOOPack, SndWnd   uint32
	RcvWnd, Rehash                             uint32
	TotalRTO, TotalRTORecoveries, TotalRTOTime uint32
}
