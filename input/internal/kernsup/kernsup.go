// Package kernsup explains kernel features an input could not use: what is
// missing, its likely cause and the fix, in words an operator can act on
// ("load tcp_diag (modprobe tcp_diag) ..."), instead of an errno from deep
// in a netlink dump. A Reporter logs each missing feature once, counts
// every failure on /stats and passes the other errors on, so an input
// goes on with whatever still works and its log does not repeat one
// message every period.
package kernsup

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/fleutan/fleutanbeat/input/internal/sockdiag"
)

// Problem is one kernel feature an input could not use.
type Problem struct {
	// Key names the feature; a Reporter logs each key once.
	Key string
	// Message says what is missing, why it likely is and how to fix it.
	Message string
}

// sockDiagModules is the module that serves sock_diag dumps of a protocol
// (net/ipv4/*_diag.c), by IP protocol number; each needs inet_diag, which
// modprobe loads with it.
var sockDiagModules = map[uint8]struct{ name, module string }{
	6:   {"TCP", "tcp_diag"},
	17:  {"UDP", "udp_diag"},
	136: {"UDP-Lite", "udp_diag"},
	255: {"raw", "raw_diag"},
	132: {"SCTP", "sctp_diag"},
}

// Explain returns the Problem behind err when err says that the kernel
// lacks a feature; ok is false for any other error. It follows err's chain
// of single wrappers only: a joined error is several failures, which
// Reporter.Filter explains one by one.
func Explain(err error) (p Problem, ok bool) {
	for e := err; e != nil; e = single(e) {
		if de, isDump := e.(*sockdiag.DumpError); isDump {
			return sockDiag(de)
		}
		if te, isTC := e.(*TCError); isTC {
			return tc(te)
		}
	}
	return Problem{}, false
}

// single unwraps one level, and not into a joined error.
func single(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return nil
}

func sockDiag(de *sockdiag.DumpError) (Problem, bool) {
	if _, unsupported := sockdiag.Unsupported(de); !unsupported {
		return Problem{}, false
	}
	m, known := sockDiagModules[de.Protocol]
	if !known {
		m.name, m.module = fmt.Sprintf("protocol %d", de.Protocol), "its *_diag module"
	}
	// One key per protocol: IPv4 and IPv6 are served by the same module.
	return Problem{
		Key: "sock_diag " + m.name,
		Message: fmt.Sprintf("the kernel cannot list %s sockets (sock_diag): load %s (modprobe %s; it brings inet_diag) "+
			"or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no %s sockets",
			m.name, m.module, m.module, m.name),
	}, true
}

// TCError is a traffic-control dump (RTM_GETQDISC, RTM_GETTCLASS) that
// failed; the qdisc collector returns it so that Explain can tell a kernel
// without traffic control from a passing failure.
type TCError struct {
	What string // "qdisc" or "class"
	Err  error
}

func (e *TCError) Error() string { return fmt.Sprintf("rtnetlink %s dump: %v", e.What, e.Err) }
func (e *TCError) Unwrap() error { return e.Err }

func tc(te *TCError) (Problem, bool) {
	// rtnetlink answers EOPNOTSUPP for a message type no one registered:
	// RTM_GETQDISC and RTM_GETTCLASS exist only with CONFIG_NET_SCHED.
	if !errors.Is(te.Err, syscall.EOPNOTSUPP) {
		return Problem{}, false
	}
	return Problem{
		Key: "rtnetlink tc",
		Message: "the kernel answers no traffic-control dumps (rtnetlink " + te.What + " dump: operation not supported): " +
			"it was built without CONFIG_NET_SCHED; use a kernel with it (every distribution kernel has it); " +
			"until then the input reports no qdiscs and classes",
	}, true
}

// Hint says what likely keeps an eBPF program from loading or attaching,
// for the one log line with which an input falls back; "" when err does
// not tell.
func Hint(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.ENOSYS):
		return "the kernel has no bpf(2) (built without CONFIG_BPF_SYSCALL)"
	case errors.Is(err, syscall.EPERM):
		return "bpf(2) refused: the agent needs CAP_BPF and CAP_PERFMON (root has them), and a security module may refuse it"
	case strings.Contains(err.Error(), "btf"), strings.Contains(err.Error(), "BTF"):
		return "the kernel has no BTF type information (CONFIG_DEBUG_INFO_BTF, /sys/kernel/btf/vmlinux)"
	case errors.Is(err, syscall.ENOENT):
		return "the kernel lacks the tracepoint or program type (older kernel, or built without CONFIG_TRACEPOINTS / CONFIG_BPF_EVENTS)"
	}
	return ""
}

// HintAttr is Hint as a log attribute: "hint" when there is one, else an
// empty attribute, which slog leaves out.
func HintAttr(err error) slog.Attr {
	if h := Hint(err); h != "" {
		return slog.String("hint", h)
	}
	return slog.Attr{}
}

// NetnsHint says why a network namespace could not be entered.
func NetnsHint(err error) string {
	switch {
	case errors.Is(err, syscall.EPERM):
		return "entering another network namespace needs CAP_SYS_ADMIN (systemctl edit fleutanbeat, see the packaging README)"
	case errors.Is(err, syscall.ENOENT):
		return "the namespace is gone (its last process ended or it was deleted)"
	case errors.Is(err, syscall.EINVAL):
		return "the file is not a network namespace, or the kernel was built without CONFIG_NET_NS"
	}
	return ""
}

// NetnsHintAttr is NetnsHint as a log attribute, left out when empty.
func NetnsHintAttr(err error) slog.Attr {
	if h := NetnsHint(err); h != "" {
		return slog.String("hint", h)
	}
	return slog.Attr{}
}

// Reporter logs each Problem of one input once and counts every failure.
type Reporter struct {
	log   *slog.Logger
	input string
	count *atomic.Int64

	mu     sync.Mutex
	logged map[string]bool
}

// NewReporter reports for input (its name prefixes each message) to log,
// counting into count (input.<type>.kernel_unsupported), which may be nil.
func NewReporter(log *slog.Logger, input string, count *atomic.Int64) *Reporter {
	if count == nil {
		count = new(atomic.Int64)
	}
	return &Reporter{log: log, input: input, count: count, logged: map[string]bool{}}
}

// Filter explains each failure in err's tree that is a missing kernel
// feature: it counts it, logs it the first time its feature fails, and
// returns the other failures (nil when there are none).
func (r *Reporter) Filter(err error) error {
	if err == nil {
		return nil
	}
	rest := r.walk(err)
	if len(rest) == 1 && rest[0] == err {
		return err // nothing explained: keep the error's own text
	}
	return errors.Join(rest...)
}

func (r *Reporter) walk(err error) []error {
	if p, ok := Explain(err); ok {
		r.report(p, err)
		return nil
	}
	// A joined error, or a wrapper of one: look at each failure.
	for e := err; e != nil; e = single(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			var rest []error
			for _, c := range j.Unwrap() {
				rest = append(rest, r.walk(c)...)
			}
			if len(rest) == len(j.Unwrap()) {
				return []error{err} // none explained
			}
			return rest
		}
	}
	return []error{err}
}

func (r *Reporter) report(p Problem, err error) {
	r.count.Add(1)
	r.mu.Lock()
	first := !r.logged[p.Key]
	r.logged[p.Key] = true
	r.mu.Unlock()
	if first {
		r.log.Warn(r.input+": "+p.Message, "error", err.Error())
	}
}
