package flows

import (
	"fmt"
	"log/slog"
	"time"
)

// Options configures a Collector. The zero Options collects TCP and UDP,
// IPv4 and IPv6, every state, in the caller's own network namespace, with
// processes and without the eBPF tracker.
type Options struct {
	// ProcRoot is the /proc mount ("/proc" when empty); RunDir holds the
	// named namespaces ("/run/netns" when empty).
	ProcRoot string
	RunDir   string
	// Protocols (ProtocolTCP, ProtocolUDP) and Families (FamilyIPv4,
	// FamilyIPv6) to dump; both when empty.
	Protocols []uint8
	Families  []uint8
	// States is the bitmask of 1<<state (linux/tcp_states.h; StateMask
	// takes ss(8) names) of the flows returned; 0 means all. For UDP,
	// the listening bit also selects unconnected sockets (state CLOSE),
	// as ss -l does.
	States uint32
	// AllNamespaces dumps every network namespace that a process or
	// RunDir holds instead of the collector's own.
	AllNamespaces bool
	// Namespaces, when set, replaces the discovery above: it is called at
	// each collection and names the namespaces to dump (Path must be
	// openable; Inode identifies it).
	Namespaces func() ([]Namespace, error)
	// NoProcesses skips the /proc walk that attributes sockets to
	// processes.
	NoProcesses bool
	// Logger receives warnings about namespaces that cannot be opened
	// (discarded when nil).
	Logger *slog.Logger
	// Tracker, when set, is the eBPF connection tracker (OpenTracker):
	// connections that open and close between two collections are
	// reported, final reports carry the counters of TCP_CLOSE, and a new
	// connection's opener is known before its fd table is read. The
	// caller closes it after the Collector.
	Tracker *Tracker
	// Routes looks up each connected flow's route to its peer in the
	// flow's namespace (Flow.Route): one RTM_GETROUTE per distinct peer,
	// cached for RouteTTL (a minute when 0) or until the namespace
	// announces a route or link change, whichever comes first, so a
	// change shows from the next collection on.
	Routes   bool
	RouteTTL time.Duration
	// Now is the clock for FirstSeen and Snapshot.Time (time.Now when nil).
	Now func() time.Time
	// NoHistory keeps nothing of a collection once Collect has returned
	// it, for callers that look flows up in a snapshot and drop it: each
	// collection sees every flow as new (FirstSeen is its time), reports
	// no final flows, and Diff between its snapshots has no reference.
	// Between collections the collector then holds its sockets and
	// process index only, not the two generations of flows and indexes
	// (about 14 MB per 36,000 flows) that deltas need.
	NoHistory bool
	// Keep, when set, is asked about each socket of a dump, as a Flow with
	// its namespace, key, state and tcp_info (no direction or process
	// yet); a socket it refuses is left out of the collection, of the
	// process attribution and of the collector's memory. A flow that was
	// kept and is refused later counts as gone (its final report), so a
	// collector with history wants a Keep that does not change its mind;
	// with NoHistory, Keep may narrow each collection to the few sockets a
	// caller looks for.
	Keep func(*Flow) bool
	// AfterDump is called between the dump and the /proc walk: tests make
	// a process exit there. Not stable.
	AfterDump func()
}

// validate checks the values that New cannot default.
func (o *Options) validate() error {
	for _, p := range o.Protocols {
		if p != protoTCP && p != protoUDP {
			return fmt.Errorf("flows: protocol %d is not TCP (6) or UDP (17)", p)
		}
	}
	for _, f := range o.Families {
		if f != afInet && f != afInet6 {
			return fmt.Errorf("flows: address family %d is not AF_INET (2) or AF_INET6 (10)", f)
		}
	}
	if o.States&^allStates != 0 {
		return fmt.Errorf("flows: states %#x has bits outside the TCP states 1 to 11", o.States)
	}
	if o.RouteTTL < 0 {
		return fmt.Errorf("flows: route TTL %s is negative", o.RouteTTL)
	}
	return nil
}
