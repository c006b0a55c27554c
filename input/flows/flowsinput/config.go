package flowsinput

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input/flows"
)

// Config is the flows input's section of fleutanbeat.inputs.
type Config struct {
	Period config.Duration `yaml:"period"`
	// Protocols: tcp, udp.
	Protocols []string `yaml:"protocols"`
	// Families: ipv4, ipv6.
	Families []string `yaml:"families"`
	// States are ss(8) state names or groups (see stateNames); "all" takes
	// every state. For UDP, "listening" also selects unconnected sockets.
	States []string `yaml:"states"`
	// IncludeLoopback keeps flows with a loopback local or remote address.
	IncludeLoopback bool `yaml:"include_loopback"`
	// CIDRs match the remote address (the local one of listening sockets).
	CIDRs CIDRFilter `yaml:"cidrs"`
	// Ports match the local or the remote port: "443" or "8000-8100".
	Ports PortFilter `yaml:"ports"`
	// Processes are regular expressions matched against the whole process
	// name (comm); when set, flows without a matching known process are
	// left out.
	Processes []string `yaml:"processes"`
	// Namespaces is "host" (the agent's own network namespace) or "all"
	// (every namespace that a process or /run/netns holds).
	Namespaces string `yaml:"namespaces"`
	// MaxFlows caps the events of one period; the rest are counted and
	// logged.
	MaxFlows int `yaml:"max_flows"`
	// Method is how TCP connections are seen: "ebpf" follows each one
	// from its first state change to its close (tracepoint
	// sock:inet_sock_set_state), so connections shorter than a period are
	// reported; "procfs" only takes the sock_diag snapshot of each
	// period; "auto" is ebpf where it loads, else procfs.
	Method string `yaml:"method"`
	// MaxTrackedConnections bounds the kernel map of open TCP connections
	// (method ebpf); connections beyond it are counted on /stats and still
	// reported at their close, without their process.
	MaxTrackedConnections int `yaml:"max_tracked_connections"`
	// Report is which flows get an event each period: "all", or
	// "active": new flows, flows whose counters or state changed, final
	// events, and the others once every Heartbeat periods.
	Report string `yaml:"report"`
	// Heartbeat is how many periods an unchanged flow goes without an
	// event in report: active.
	Heartbeat int `yaml:"heartbeat"`
	// Rollup adds, each period, one event per process owning flows
	// (fleutan.flow.scope: process) that sums all of its flows of the
	// period, also those report: active leaves without an event.
	Rollup bool `yaml:"rollup"`
	// Routes adds each connected flow's route to its peer
	// (fleutan.flow.route): one RTM_GETROUTE per distinct peer and
	// namespace, cached for RouteTTL or until the namespace announces a
	// route change.
	Routes   bool            `yaml:"routes"`
	RouteTTL config.Duration `yaml:"route_ttl"`
}

// Methods.
const (
	MethodAuto   = "auto"
	MethodEBPF   = "ebpf"
	MethodProcfs = "procfs"
)

// CIDRFilter keeps addresses in an Include prefix (any, when empty) and in
// no Exclude prefix.
type CIDRFilter struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// PortFilter keeps flows with a port in an Include range (any, when empty)
// and no port in an Exclude range.
type PortFilter struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// Namespace selections.
const (
	NamespacesHost = "host"
	NamespacesAll  = "all"
)

// DefaultConfig is the configuration of an input section that sets nothing.
func DefaultConfig() Config {
	return Config{
		Period:          config.Duration(10 * time.Second),
		Protocols:       []string{"tcp", "udp"},
		Families:        []string{"ipv4", "ipv6"},
		States:          []string{"established", "listening"},
		IncludeLoopback: true,
		Namespaces:      NamespacesHost,
		MaxFlows:        100000,
		Method:          MethodAuto,

		MaxTrackedConnections: 65536,
		Report:                ReportActive,
		Heartbeat:             30,
		Rollup:                true,
		Routes:                true,
		RouteTTL:              config.Duration(time.Minute),
	}
}

// Validate checks the values; it does not touch the system.
func (c *Config) Validate() error {
	var errs []error
	if c.Period.D() <= 0 {
		errs = append(errs, config.Errorf("period", "must be positive, got %s", c.Period.D()))
	}
	if len(c.Protocols) == 0 {
		errs = append(errs, config.Errorf("protocols", "must name at least one protocol (tcp, udp)"))
	}
	for i, p := range c.Protocols {
		if _, err := parseProtocol(p); err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("protocols.%d", i), "%v", err))
		}
	}
	if len(c.Families) == 0 {
		errs = append(errs, config.Errorf("families", "must name at least one family (ipv4, ipv6)"))
	}
	for i, f := range c.Families {
		if _, err := parseFamily(f); err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("families.%d", i), "%v", err))
		}
	}
	if len(c.States) == 0 {
		errs = append(errs, config.Errorf("states", "must name at least one state (established, listening, all, ...)"))
	}
	for i, s := range c.States {
		if _, ok := flows.StateMask(s); !ok {
			errs = append(errs, config.Errorf(fmt.Sprintf("states.%d", i), "%q is not a socket state (use an ss state name such as established, listening, time-wait, or a group: all, connected, synchronized, bucket, big)", s))
		}
	}
	for _, l := range []struct {
		key  string
		vals []string
	}{{"cidrs.include", c.CIDRs.Include}, {"cidrs.exclude", c.CIDRs.Exclude}} {
		for i, v := range l.vals {
			if _, err := parseCIDR(v); err != nil {
				errs = append(errs, config.Errorf(fmt.Sprintf("%s.%d", l.key, i), "%v", err))
			}
		}
	}
	for _, l := range []struct {
		key  string
		vals []string
	}{{"ports.include", c.Ports.Include}, {"ports.exclude", c.Ports.Exclude}} {
		for i, v := range l.vals {
			if _, err := parsePortRange(v); err != nil {
				errs = append(errs, config.Errorf(fmt.Sprintf("%s.%d", l.key, i), "%v", err))
			}
		}
	}
	for i, p := range c.Processes {
		if _, err := compileProcess(p); err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("processes.%d", i), "%v", err))
		}
	}
	if c.Namespaces != NamespacesHost && c.Namespaces != NamespacesAll {
		errs = append(errs, config.Errorf("namespaces", "%q is not a namespace selection (use host or all)", c.Namespaces))
	}
	if c.MaxFlows <= 0 {
		errs = append(errs, config.Errorf("max_flows", "must be positive, got %d", c.MaxFlows))
	}
	switch c.Method {
	case MethodAuto, MethodEBPF, MethodProcfs:
	default:
		errs = append(errs, config.Errorf("method", "%q is not a method (use auto, ebpf or procfs)", c.Method))
	}
	// The map's memory is allocated up front (BPF_MAP_TYPE_HASH,
	// preallocated): about 100 bytes an entry.
	if c.MaxTrackedConnections < 1024 || c.MaxTrackedConnections > 1<<22 {
		errs = append(errs, config.Errorf("max_tracked_connections", "must be between 1024 and 4194304, got %d", c.MaxTrackedConnections))
	}
	if c.Report != ReportAll && c.Report != ReportActive {
		errs = append(errs, config.Errorf("report", "%q is not a report mode (use active or all)", c.Report))
	}
	if c.Heartbeat < 1 {
		errs = append(errs, config.Errorf("heartbeat", "must be at least 1 period, got %d", c.Heartbeat))
	}
	if c.RouteTTL.D() <= 0 {
		errs = append(errs, config.Errorf("route_ttl", "must be positive, got %s", c.RouteTTL.D()))
	}
	return errors.Join(errs...)
}

func parseProtocol(s string) (uint8, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return flows.ProtocolTCP, nil
	case "udp":
		return flows.ProtocolUDP, nil
	}
	return 0, fmt.Errorf("%q is not a protocol (use tcp or udp)", s)
}

func parseFamily(s string) (uint8, error) {
	switch strings.ToLower(s) {
	case "ipv4":
		return flows.FamilyIPv4, nil
	case "ipv6":
		return flows.FamilyIPv6, nil
	}
	return 0, fmt.Errorf("%q is not an address family (use ipv4 or ipv6)", s)
}

// parseCIDR takes a prefix or a single address (a /32 or /128).
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (use an address with an optional prefix length: 10.0.0.0/8, fd00::/8, 192.0.2.1)", s)
}

func parsePortRange(s string) (flows.PortRange, error) {
	bad := fmt.Errorf("%q is not a port or port range (use 443 or 8000-8100, ports 0 to 65535)", s)
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	l, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	if err != nil {
		return flows.PortRange{}, bad
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16); err != nil || h < l {
			return flows.PortRange{}, bad
		}
	}
	return flows.PortRange{Lo: uint16(l), Hi: uint16(h)}, nil
}

func compileProcess(s string) (*regexp.Regexp, error) {
	// Compiled alone first so that the error shows the user's text, not the
	// anchored one.
	if _, err := regexp.Compile(s); err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = se.Code.String()
		}
		return nil, fmt.Errorf("%q is not a regular expression: %s", s, msg)
	}
	return regexp.Compile("^(?:" + s + ")$")
}

// newFilter compiles a validated Config into the library's Filter.
func newFilter(c *Config) (*flows.Filter, error) {
	f := &flows.Filter{ExcludeLoopback: !c.IncludeLoopback}
	for _, s := range c.CIDRs.Include {
		p, err := parseCIDR(s)
		if err != nil {
			return nil, err
		}
		f.CIDRInclude = append(f.CIDRInclude, p)
	}
	for _, s := range c.CIDRs.Exclude {
		p, err := parseCIDR(s)
		if err != nil {
			return nil, err
		}
		f.CIDRExclude = append(f.CIDRExclude, p)
	}
	for _, s := range c.Ports.Include {
		r, err := parsePortRange(s)
		if err != nil {
			return nil, err
		}
		f.PortInclude = append(f.PortInclude, r)
	}
	for _, s := range c.Ports.Exclude {
		r, err := parsePortRange(s)
		if err != nil {
			return nil, err
		}
		f.PortExclude = append(f.PortExclude, r)
	}
	for _, s := range c.Processes {
		re, err := compileProcess(s)
		if err != nil {
			return nil, err
		}
		f.Processes = append(f.Processes, re)
	}
	return f, nil
}
