package kernsup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
	"github.com/fleutan/fleutanbeat/input/internal/sockdiag"
)

// dumpErr is what sockdiag.Dumper.Dump returns when the kernel answers a
// dump with errno, wrapped as the flows collector wraps it.
func dumpErr(family, protocol uint8, errno syscall.Errno) error {
	de := &sockdiag.DumpError{Family: family, Protocol: protocol, Err: &netlink.KernelError{Errno: errno}}
	return fmt.Errorf("flows: sock_diag dump: %w", de)
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		ok      bool
		key     string
		message string
	}{
		{
			name: "tcp without tcp_diag", err: dumpErr(2, 6, syscall.ENOENT), ok: true, key: "sock_diag TCP",
			message: "the kernel cannot list TCP sockets (sock_diag): load tcp_diag (modprobe tcp_diag; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no TCP sockets",
		},
		{
			name: "tcp over IPv6 shares the key", err: dumpErr(10, 6, syscall.ENOENT), ok: true, key: "sock_diag TCP",
			message: "the kernel cannot list TCP sockets (sock_diag): load tcp_diag (modprobe tcp_diag; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no TCP sockets",
		},
		{
			name: "udp without udp_diag", err: dumpErr(2, 17, syscall.ENOENT), ok: true, key: "sock_diag UDP",
			message: "the kernel cannot list UDP sockets (sock_diag): load udp_diag (modprobe udp_diag; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no UDP sockets",
		},
		{
			name: "raw without raw_diag", err: dumpErr(2, 255, syscall.ENOENT), ok: true, key: "sock_diag raw",
			message: "the kernel cannot list raw sockets (sock_diag): load raw_diag (modprobe raw_diag; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no raw sockets",
		},
		{
			name: "an unknown protocol", err: dumpErr(2, 99, syscall.ENOENT), ok: true, key: "sock_diag protocol 99",
			message: "the kernel cannot list protocol 99 sockets (sock_diag): load its *_diag module (modprobe its *_diag module; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no protocol 99 sockets",
		},
		{name: "a dump broken off is no missing feature", err: dumpErr(2, 6, syscall.ENOBUFS)},
		{name: "a refused dump is no missing feature", err: dumpErr(2, 6, syscall.EPERM)},
		{
			name: "tc dumps without CONFIG_NET_SCHED", ok: true, key: "rtnetlink tc",
			err:     fmt.Errorf("qdisc: %w", &TCError{What: "qdisc", Err: &netlink.KernelError{Errno: syscall.EOPNOTSUPP}}),
			message: "the kernel answers no traffic-control dumps (rtnetlink qdisc dump: operation not supported): it was built without CONFIG_NET_SCHED; use a kernel with it (every distribution kernel has it); until then the input reports no qdiscs and classes",
		},
		{name: "a tc dump that failed otherwise", err: &TCError{What: "class", Err: &netlink.KernelError{Errno: syscall.EINVAL}}},
		{name: "another error", err: errors.New("flows: process index: boom")},
		{name: "nil"},
		{
			// Several failures are Filter's to take apart: Explain does
			// not pick one of them.
			name: "joined errors", err: errors.Join(dumpErr(2, 6, syscall.ENOENT), errors.New("other")),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := Explain(tc.err)
			if ok != tc.ok || p.Key != tc.key || p.Message != tc.message {
				t.Errorf("Explain(%v) = %q, %q, %v; want %q, %q, %v", tc.err, p.Key, p.Message, ok, tc.key, tc.message, tc.ok)
			}
		})
	}
}

func TestHints(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(error) string
		err  error
		want string
	}{
		{"no bpf syscall", Hint, fmt.Errorf("load: %w", syscall.ENOSYS), "the kernel has no bpf(2) (built without CONFIG_BPF_SYSCALL)"},
		{"bpf refused", Hint, fmt.Errorf("load: %w", syscall.EPERM), "bpf(2) refused: the agent needs CAP_BPF and CAP_PERFMON (root has them), and a security module may refuse it"},
		{"no BTF", Hint, errors.New("load kernel spec: btf: not found"), "the kernel has no BTF type information (CONFIG_DEBUG_INFO_BTF, /sys/kernel/btf/vmlinux)"},
		{"no tracepoint", Hint, fmt.Errorf("attach: %w", syscall.ENOENT), "the kernel lacks the tracepoint or program type (older kernel, or built without CONFIG_TRACEPOINTS / CONFIG_BPF_EVENTS)"},
		{"bpf: nothing known", Hint, errors.New("verifier says no"), ""},
		{"bpf: nil", Hint, nil, ""},
		{"netns without CAP_SYS_ADMIN", NetnsHint, fmt.Errorf("setns: %w", syscall.EPERM), "entering another network namespace needs CAP_SYS_ADMIN (systemctl edit fleutanbeat, see the packaging README)"},
		{"netns gone", NetnsHint, fmt.Errorf("open: %w", syscall.ENOENT), "the namespace is gone (its last process ended or it was deleted)"},
		{"not a netns", NetnsHint, fmt.Errorf("setns: %w", syscall.EINVAL), "the file is not a network namespace, or the kernel was built without CONFIG_NET_NS"},
		{"netns: nothing known", NetnsHint, errors.New("boom"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn(tc.err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReporterLogsOnceCountsEach runs four periods of the failures of a
// kernel without tcp_diag and udp_diag, with another failure in the
// second: two lines about the modules in all, each failure counted, and
// only the other failure passed on.
func TestReporterLogsOnceCountsEach(t *testing.T) {
	var buf bytes.Buffer
	var count atomic.Int64
	r := NewReporter(slog.New(slog.NewJSONHandler(&buf, nil)), "flows", &count)
	other := errors.New("flows: process index: boom")
	for period := range 4 {
		errs := []error{dumpErr(2, 6, syscall.ENOENT), dumpErr(10, 6, syscall.ENOENT), dumpErr(2, 17, syscall.ENOENT), dumpErr(10, 17, syscall.ENOENT)}
		if period == 1 {
			errs = append(errs, other)
		}
		rest := r.Filter(fmt.Errorf("flows: %w", errors.Join(errs...)))
		if period == 1 {
			if rest == nil || rest.Error() != other.Error() {
				t.Errorf("period %d: Filter passed on %v, want %v", period, rest, other)
			}
		} else if rest != nil {
			t.Errorf("period %d: Filter passed on %v, want nil", period, rest)
		}
	}
	if got := count.Load(); got != 16 {
		t.Errorf("counted %d failures, want 16", got)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec struct{ Msg, Error string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msgs = append(msgs, rec.Msg)
	}
	want := []string{
		"flows: the kernel cannot list TCP sockets (sock_diag): load tcp_diag (modprobe tcp_diag; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no TCP sockets",
		"flows: the kernel cannot list UDP sockets (sock_diag): load udp_diag (modprobe udp_diag; it brings inet_diag) or enable module autoloading (kernel.modprobe, CONFIG_MODULES); until then the input reports no UDP sockets",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

func TestFilterKeepsUnexplainedErrorsAsTheyAre(t *testing.T) {
	r := NewReporter(slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)), "cpu", nil)
	for _, err := range []error{
		errors.New("cpu: boom"),
		fmt.Errorf("cpu: %w", errors.Join(errors.New("a"), errors.New("b"))),
		dumpErr(2, 6, syscall.EPERM),
	} {
		if got := r.Filter(err); got != err {
			t.Errorf("Filter(%v) = %v, want the error itself", err, got)
		}
	}
	if r.Filter(nil) != nil {
		t.Error("Filter(nil) is not nil")
	}
}

// TestHintAttrsLeftOutWhenEmpty: a line without a hint keeps its old
// attributes exactly.
func TestHintAttrsLeftOutWhenEmpty(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Warn("m", HintAttr(errors.New("x")), NetnsHintAttr(errors.New("y")))
	log.Warn("m", HintAttr(syscall.ENOSYS), NetnsHintAttr(syscall.EPERM))
	want := "level=WARN msg=m\n" +
		`level=WARN msg=m hint="the kernel has no bpf(2) (built without CONFIG_BPF_SYSCALL)" hint="entering another network namespace needs CAP_SYS_ADMIN (systemctl edit fleutanbeat, see the packaging README)"` + "\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
