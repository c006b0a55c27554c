package flows

import (
	"log/slog"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
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
	// Now is the clock for FirstSeen (time.Now when nil).
	Now func() time.Time
}
