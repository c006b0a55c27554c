package flows

import (
	"context"
	"log/slog"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/internal/tcplife"
)

// CollectorOptions configures a Collector.
type CollectorOptions struct {
	// ProcRoot is the /proc mount ("/proc" when empty); RunDir holds the
	// named namespaces ("/run/netns" when empty).
	ProcRoot string
	RunDir   string
	// Protocols (IPPROTO_TCP, IPPROTO_UDP) and Families (AF_INET,
	// AF_INET6) to dump; both when empty.
	Protocols []uint8
	Families  []uint8
	// States is the bitmask of 1<<state (linux/tcp_states.h) of the flows
	// returned; 0 means all. For UDP, the listening bit also selects
	// unconnected sockets (state CLOSE), as ss -l does.
	States uint32
	// AllNamespaces dumps every network namespace found by netns.List
	// instead of the collector's own.
	AllNamespaces bool
	// Namespaces, when set, replaces the discovery above: the terminal tool
	// and the tests point a collector at chosen namespaces with it.
	Namespaces func() ([]netns.Namespace, error)
	// NoProcesses skips the /proc walk that attributes sockets to
	// processes.
	NoProcesses bool
	Logger      *slog.Logger
	// Tracker, when set, is the eBPF connection tracker: connections that
	// open and close between two collections are reported, final reports
	// carry the counters of TCP_CLOSE, and a new connection's opener is
	// known before its fd table is read.
	Tracker ConnTracker
	// Now is the clock for FirstSeen (time.Now when nil).
	Now func() time.Time
}

// ConnTracker is what the collector needs of *tcplife.Tracker.
type ConnTracker interface {
	// Drain returns the connections closed since the last Drain.
	Drain(ctx context.Context) ([]tcplife.Conn, error)
	// Lookup says who opened a connection that is still open.
	Lookup(cookie uint64) (tcplife.Owner, bool)
}
