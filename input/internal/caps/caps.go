// Package caps reads the agent's effective capabilities and names the ones
// each feature needs, so that an input running without one can say in one
// log line which capability is missing and what it gives up.
//
// The requirements were measured, not guessed: the packaging tests run the
// agent as an unprivileged user under setpriv(1) with exactly these
// capabilities, then with each one removed (cmd/fleutanbeat/packaging).
package caps

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Cap is a capability number from include/uapi/linux/capability.h.
type Cap uint8

// The capabilities the agent may use.
const (
	// DACReadSearch opens /proc/PID/fd of other users (mode 0500, owned by
	// the process's user) and /sys/kernel/tracing (0700 root).
	DACReadSearch Cap = 2
	// NetAdmin is listed for completeness: no dump the agent makes needs it
	// (inet_diag checks it only for socket marks and class ids,
	// net/ipv4/inet_diag.c; tc dumps are unprivileged).
	NetAdmin Cap = 12
	// SysPtrace passes the ptrace access check (PTRACE_MODE_READ_FSCREDS)
	// that guards /proc/PID/fd, /proc/PID/exe and /proc/PID/ns of other
	// users' processes (fs/proc/base.c proc_fd_access_allowed,
	// proc_ns_get_link).
	SysPtrace Cap = 19
	// SysAdmin is what setns(2) into a network namespace checks
	// (net/core/net_namespace.c netns_install).
	SysAdmin Cap = 21
	// Perfmon loads tracing programs and attaches them to tracepoints
	// (kernel/bpf/syscall.c bpf_prog_load: is_perfmon_prog_type).
	Perfmon Cap = 38
	// BPF creates maps and loads programs (kernel/bpf/syscall.c
	// bpf_capable), since Linux 5.8.
	BPF Cap = 39
)

var names = map[Cap]string{
	DACReadSearch: "CAP_DAC_READ_SEARCH",
	NetAdmin:      "CAP_NET_ADMIN",
	SysPtrace:     "CAP_SYS_PTRACE",
	SysAdmin:      "CAP_SYS_ADMIN",
	Perfmon:       "CAP_PERFMON",
	BPF:           "CAP_BPF",
}

// String is the capability's name as capabilities(7) writes it.
func (c Cap) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Set is a capability bit mask as /proc/PID/status shows it.
type Set uint64

// Has reports whether c is in the set.
func (s Set) Has(c Cap) bool { return c < 64 && s&(1<<c) != 0 }

// Missing returns the capabilities of want that are not in the set, in
// the order given.
func (s Set) Missing(want ...Cap) []Cap {
	var out []Cap
	for _, c := range want {
		if !s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// Names joins capability names with ", " for log lines.
func Names(cs []Cap) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// ErrNoCapEff means the status file has no CapEff line.
var ErrNoCapEff = errors.New("caps: no CapEff line")

// Effective reads the effective set of the calling process from
// procRoot/self/status ("" means /proc). Threads of a Go program share
// their capabilities unless one of them changed its own, which the agent
// never does.
func Effective(procRoot string) (Set, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	p := filepath.Join(procRoot, "self", "status")
	f, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("caps: %w", err)
	}
	defer f.Close()
	s, err := ParseStatus(f)
	if err != nil {
		return 0, fmt.Errorf("caps: %s: %w", p, err)
	}
	return s, nil
}

// ParseStatus finds the CapEff line of a /proc/PID/status file
// (fs/proc/array.c render_cap_t: "CapEff:\t%016llx").
func ParseStatus(r io.Reader) (Set, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 16 {
			return 0, fmt.Errorf("caps: bad CapEff value %q", v)
		}
		n, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return 0, fmt.Errorf("caps: bad CapEff value %q", v)
		}
		return Set(n), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("caps: read status: %w", err)
	}
	return 0, ErrNoCapEff
}

// Requirement is one feature that needs capabilities.
type Requirement struct {
	Feature string // what the log line and the docs call it
	Caps    []Cap
	// Without says what happens when one of Caps is missing.
	Without string
}

// ProcessAttribution is the owner lookup of sockets in /proc (flows, the
// network process selection of cpu, flows behind qdisc TX queues).
func ProcessAttribution() Requirement {
	return Requirement{
		Feature: "process attribution",
		Caps:    []Cap{SysPtrace, DACReadSearch},
		Without: "only sockets of the agent's own user get a process",
	}
}

// EBPF is loading and attaching the cpu and qdisc tracing programs.
func EBPF() Requirement {
	return Requirement{
		Feature: "eBPF",
		Caps:    []Cap{BPF, Perfmon},
		Without: "cpu samples /proc instead; qdisc reports no flows per TX queue; flows miss TCP connections shorter than a period",
	}
}

// OtherNamespaces is namespaces: all of flows and qdisc.
func OtherNamespaces() Requirement {
	return Requirement{
		Feature: "other network namespaces",
		Caps:    []Cap{SysAdmin, SysPtrace},
		Without: "only the agent's own network namespace is collected",
	}
}

// Documented is every requirement, as the README, the systemd unit and
// the Kubernetes manifest list them.
func Documented() []Requirement {
	return []Requirement{ProcessAttribution(), EBPF(), OtherNamespaces()}
}

// Missing returns the capabilities of r that have lacks.
func (r Requirement) Missing(have Set) []Cap { return have.Missing(r.Caps...) }

// Message is the one log line of a degraded feature: input names the
// input ("flows"), missing is what Missing returned and effect says what
// that input gives up.
func (r Requirement) Message(input string, missing []Cap, effect string) string {
	return fmt.Sprintf("%s: %s needs %s, which the agent lacks: %s", input, r.Feature, Names(missing), effect)
}

// AllNamespaces decides whether `namespaces: all` can be honoured with the
// capabilities in have, logging one line for input when it cannot (or can
// only in part). It returns false when the input must fall back to its own
// namespace: without CAP_SYS_ADMIN every setns(2) would fail.
func AllNamespaces(input string, have Set, log *slog.Logger) bool {
	r := OtherNamespaces()
	m := r.Missing(have)
	switch {
	case !have.Has(SysAdmin):
		log.Warn(r.Message(input, m, "collecting the agent's own network namespace only"), "missing", Names(m))
		return false
	case len(m) > 0:
		log.Warn(r.Message(input, m, "namespaces held only by other users' processes and not named in /run/netns are not found"), "missing", Names(m))
	}
	return true
}
