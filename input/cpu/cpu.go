package cpu

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fleutan/fleutanbeat/input/process"
)

// Methods of measuring processes (Options.Method, Collector.Method).
const (
	// MethodAuto is eBPF where the kernel allows it, else sampling.
	MethodAuto = "auto"
	// MethodEBPF counts every on-CPU slice with an eBPF program on the
	// sched_switch and sched_migrate_task raw tracepoints; New fails when
	// the kernel refuses it.
	MethodEBPF = "ebpf"
	// MethodSampling reads each tracked thread's last-run core every
	// SampleInterval.
	MethodSampling = "sampling"
)

// MinSampleInterval is the shortest Options.SampleInterval: below the
// 4 ms tick of common kernels samples mostly see no change, and the
// sampler would become the busiest process.
const MinSampleInterval = 10 * time.Millisecond

// ErrNotSupported is New's error on a system without /proc and eBPF.
var ErrNotSupported = errors.New("cpu: the cpu collector reads /proc and eBPF maps, which only Linux has: not supported on this OS")

// EBPFError is New's error when Options.Method is MethodEBPF and the
// kernel refused the program. Err is what it refused, e.g. "attach raw
// tracepoint sched_switch: operation not permitted".
type EBPFError struct{ Err error }

func (e *EBPFError) Error() string { return "cpu: method ebpf: " + e.Err.Error() }
func (e *EBPFError) Unwrap() error { return e.Err }

// Options configure a Collector. The zero value is valid: /proc, method
// auto, sampling every 100 ms when it comes to sampling, every process.
type Options struct {
	// ProcRoot is the /proc mount; "" is /proc.
	ProcRoot string
	// Method is MethodAuto (""), MethodEBPF or MethodSampling.
	Method string
	// SampleInterval is the sampling method's time between two reads of
	// every tracked thread; 0 is 100 ms, less than MinSampleInterval is
	// an error. The eBPF method ignores it.
	SampleInterval time.Duration
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
}

// DefaultSampleInterval is the SampleInterval of a zero Options.
const DefaultSampleInterval = 100 * time.Millisecond

func (o *Options) normalize() error {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Method == "" {
		o.Method = MethodAuto
	}
	if o.SampleInterval == 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	switch o.Method {
	case MethodAuto, MethodEBPF, MethodSampling:
	default:
		errs = append(errs, fmt.Errorf("cpu: method %q is not a method (use auto, ebpf or sampling)", o.Method))
	}
	if o.SampleInterval < MinSampleInterval {
		errs = append(errs, fmt.Errorf("cpu: sample interval must be at least %s, got %s", MinSampleInterval, o.SampleInterval))
	}
	return errors.Join(errs...)
}

// Snapshot is one collection: cumulative counters, as the kernel keeps
// them. Diff turns two snapshots into usage over the time between them.
// A Snapshot shares nothing with the Collector: it stays valid for ever.
type Snapshot struct {
	// Time is when the collection ended (wall clock).
	Time time.Time `json:"time"`
	// MonotonicNs is CLOCK_MONOTONIC, in nanoseconds, at the moment the
	// process counters were read: the time base of Processes. Diff
	// divides CPU time by its difference.
	MonotonicNs uint64 `json:"monotonic_ns"`
	// Method is how processes were measured: MethodEBPF or MethodSampling.
	Method string `json:"method"`
	// Cores are the online cores in /proc/stat order.
	Cores []CoreTimes `json:"cores"`
	// NetSoftirqs tells whether /proc/softirqs was read, so that the
	// NetRX and NetTX of Cores are known (kernels before 2.6.31 lack it).
	NetSoftirqs bool `json:"net_softirqs"`
	// Processes are the measured processes (see Collector.Track) the
	// collector has counted CPU time or migrations for, by PID.
	Processes []ProcessTimes `json:"processes"`
}

// CoreTimes is one core's line of /proc/stat (Documentation/filesystems/
// proc.rst, "1.8 Miscellaneous kernel statistics") in USER_HZ clock ticks
// (1/100 s on every architecture Go supports), and its NET_RX and NET_TX
// counts from /proc/softirqs. Guest time is already inside User and Nice.
// A core that goes offline and back restarts its counters.
type CoreTimes struct {
	CPU          int    `json:"core"`
	UserTicks    uint64 `json:"user_ticks"`
	NiceTicks    uint64 `json:"nice_ticks"`
	SystemTicks  uint64 `json:"system_ticks"`
	IdleTicks    uint64 `json:"idle_ticks"`
	IOWaitTicks  uint64 `json:"iowait_ticks"`
	IRQTicks     uint64 `json:"irq_ticks"`
	SoftIRQTicks uint64 `json:"softirq_ticks"`
	StealTicks   uint64 `json:"steal_ticks"`
	// NetRX and NetTX count the NET_RX and NET_TX softirqs run on the
	// core; zero when Snapshot.NetSoftirqs is false.
	NetRX uint64 `json:"net_rx"`
	NetTX uint64 `json:"net_tx"`
}

// ProcessTimes is a process's CPU time per core and its migrations,
// cumulative since the collector began counting it (Series).
type ProcessTimes struct {
	// Process names it; with PID, Process.StartTime tells it apart from a
	// later process that reuses the pid. Shared with later snapshots: do
	// not modify.
	Process *process.Process `json:"process"`
	// Series changes whenever the collector starts counting the process
	// afresh: when it is first measured, tracked again after Track left it
	// out, or its pid is reused. Counts of two snapshots subtract only
	// within one series; Diff takes a new series as counted from zero.
	Series uint64 `json:"series"`
	// CoreNs is the CPU time on each core in nanoseconds, indexed by CPU
	// number.
	CoreNs []uint64 `json:"core_ns"`
	// Migrations counts moves of its threads between cores.
	Migrations uint64 `json:"migrations"`
}

// Usage is what happened between two snapshots (Diff).
type Usage struct {
	// Time is the later snapshot's Time.
	Time time.Time `json:"time"`
	// Period is the time the process figures cover (MonotonicNs apart).
	Period time.Duration `json:"period_ns"`
	// Method is the later snapshot's.
	Method string `json:"method"`
	// Cores has one entry per core present in both snapshots.
	Cores []CoreUsage `json:"cores"`
	// Processes are those with CPU time in the period, by PID.
	Processes []ProcessUsage `json:"processes"`
}

// CoreUsage is one core over a period. The fractions are of the ticks the
// core accounted in the period, rounded to 5 digits, and add up to 1; a
// core whose counters went back (offline and back) has all zero.
type CoreUsage struct {
	CPU int `json:"core"`
	// User includes nice time.
	User    float64 `json:"user_pct"`
	System  float64 `json:"system_pct"`
	IRQ     float64 `json:"irq_pct"`
	SoftIRQ float64 `json:"softirq_pct"`
	IOWait  float64 `json:"iowait_pct"`
	Steal   float64 `json:"steal_pct"`
	Idle    float64 `json:"idle_pct"`
	// NetSoftirqs tells whether NetRX and NetTX are known (both snapshots
	// read /proc/softirqs).
	NetSoftirqs bool `json:"net_softirqs"`
	// NetRX and NetTX are the softirqs run on the core in the period.
	NetRX uint64 `json:"net_rx"`
	NetTX uint64 `json:"net_tx"`
}

// ProcessUsage is one process over a period.
type ProcessUsage struct {
	Process *process.Process `json:"process"`
	// TotalNs is its CPU time in the period, nanoseconds.
	TotalNs uint64 `json:"total_ns"`
	// Pct is the fraction of one core (1.0 = a full core, 1.5 = one and
	// a half), as Beats' *.pct fields, rounded to 5 digits.
	Pct float64 `json:"pct"`
	// NormPct is Pct divided by the number of cores of the later
	// snapshot, as Metricbeat's system.process.cpu.total.norm.pct; 0
	// without cores.
	NormPct float64 `json:"norm_pct"`
	// CoresUsed is the number of cores it ran on.
	CoresUsed int `json:"cores_used"`
	// Spread is the effective number of cores: exp of the Shannon
	// entropy of the shares (Hill number of order 1), rounded to 4
	// digits. One core gives 1, an even split over n cores gives n.
	Spread float64 `json:"spread"`
	// DominantCore has the largest share.
	DominantCore int `json:"dominant_core"`
	// Migrations counts moves of its threads between cores in the period.
	Migrations uint64 `json:"migrations"`
	// Cores are the cores it ran on, in CPU order.
	Cores []ProcessCoreUsage `json:"per_core"`
}

// ProcessCoreUsage is a process's time on one core over a period.
type ProcessCoreUsage struct {
	CPU int    `json:"core"`
	Ns  uint64 `json:"ns"`
	// Pct is the fraction of the core over the period (5 digits).
	Pct float64 `json:"pct"`
	// Share is the fraction of the process's CPU time (4 digits).
	Share float64 `json:"share"`
}
