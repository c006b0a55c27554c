// Package cpu is the cpu input (dataset fleutan.cpu): on which cores the
// network-active processes run, how their CPU time spreads over the cores
// and how often they migrate, beside per-core utilisation and network
// softirq counts.
//
// Two methods measure processes. The exact one is an eBPF program on the
// sched_switch and sched_migrate_task raw tracepoints (bpf/schedcore.c)
// that adds every on-CPU slice to its (process, core) cell. The fallback
// samples each thread's last-run core (field 39 of
// /proc/PID/task/TID/stat) every sample_interval and credits it with the
// CPU time the thread used since the previous sample; migrations then come
// from se.nr_migrations in /proc/PID/task/TID/sched. Core figures always
// come from /proc/stat and /proc/softirqs.
package cpu
