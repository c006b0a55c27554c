// Package cpu is the cpu collector: on which cores processes run, how
// their CPU time spreads over the cores and how often they migrate, beside
// per-core utilisation and network softirq counts. It is a library: the
// agent's input (package cpuinput) turns its results into fleutan.cpu
// events, and other programs may use it directly.
//
// A Collector takes cumulative snapshots; Diff turns two snapshots into
// usage over the time between them, so the caller keeps the previous
// snapshot and the collector holds no deltas:
//
//	c, err := cpu.New(cpu.Options{})
//	...
//	prev, _ := c.Collect(ctx)
//	time.Sleep(10 * time.Second)
//	cur, _ := c.Collect(ctx)
//	u := cpu.Diff(prev, cur) // u.Cores, u.Processes
//
// Two methods measure processes. The exact one is an eBPF program on the
// sched_switch and sched_migrate_task raw tracepoints (bpf/schedcore.c)
// that adds every on-CPU slice to its (process, core) cell. The fallback
// samples each thread's last-run core (field 39 of
// /proc/PID/task/TID/stat) every SampleInterval and credits it with the
// CPU time the thread used since the previous sample; migrations then come
// from se.nr_migrations in /proc/PID/task/TID/sched. Core figures always
// come from /proc/stat and /proc/softirqs. The eBPF method needs CAP_BPF
// and CAP_PERFMON (or root).
//
// Stable: Options, New, Collector's Collect, Track, Method and Close,
// Diff, the fields of Snapshot, CoreTimes, ProcessTimes, Usage, CoreUsage,
// ProcessUsage and ProcessCoreUsage with their units, the Method
// constants, ErrNotSupported, EBPFError and CollectError. New fields may
// be added. Anything else may change.
package cpu
