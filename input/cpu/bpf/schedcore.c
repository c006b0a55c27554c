// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// schedcore accumulates on-CPU time per (process, core) and migrations per
// process in kernel maps that the cpu input reads once per period.
//
// Raw tracepoints are used rather than the classic sched:sched_switch one:
// they attach without tracefs (often not mounted in containers) and give
// the task_struct pointers, whose tgid is read with CO-RE against the
// running kernel's BTF (/sys/kernel/btf/vmlinux). fentry/tp_btf would be
// cheaper but need trampolines that not every kernel offers.
//
// Regenerate with `go generate ./input/cpu/` (needs clang and libbpf-dev).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// Only the fields read here; CO-RE relocates their offsets at load time.
struct task_struct {
	int pid;
	int tgid;
	unsigned int cpu;
} __attribute__((preserve_access_index));

// oncpu_cur is what each CPU runs now and since when (bpf_ktime_get_ns,
// CLOCK_MONOTONIC): user space adds the running slice, so a busy task that
// never leaves an otherwise idle core is still accounted for.
struct oncpu_cur {
	__u64 since;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct oncpu_cur);
} current_task SEC(".maps");

// Per-CPU values: the value of CPU c is the nanoseconds the process ran
// on core c. LRU so that a host with more processes than entries keeps
// counting the active ones (an evicted process restarts from zero, which
// user space treats as a new series).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);   // tgid
	__type(value, __u64); // ns on this CPU
} oncpu_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);   // tgid
	__type(value, __u64); // migrations counted on this CPU
} migrations SEC(".maps");

static __always_inline void add(void *map, __u32 key, __u64 delta)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);
	if (v) {
		// Per-CPU slot: only this CPU writes it, with preemption off.
		*v += delta;
		return;
	}
	bpf_map_update_elem(map, &key, &delta, BPF_NOEXIST);
}

// TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next,
//          unsigned int prev_state), include/trace/events/sched.h
SEC("raw_tracepoint/sched_switch")
int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx->args[1];
	struct task_struct *next = (struct task_struct *)ctx->args[2];
	__u32 zero = 0;
	__u64 now = bpf_ktime_get_ns();

	struct oncpu_cur *c = bpf_map_lookup_elem(&current_task, &zero);
	if (!c)
		return 0;
	__u32 prev_tgid = BPF_CORE_READ(prev, tgid);
	// since is 0 until the first switch seen on this CPU; tgid 0 is the
	// idle task.
	if (c->since && prev_tgid)
		add(&oncpu_ns, prev_tgid, now - c->since);
	c->since = now;
	c->tgid = BPF_CORE_READ(next, tgid);
	return 0;
}

// TP_PROTO(struct task_struct *p, int dest_cpu). set_task_cpu
// (kernel/sched/core.c) fires it before testing whether the CPU changes and
// counts se.nr_migrations only when it does: the same test here makes the
// count equal to the sum of the threads' se.nr_migrations.
SEC("raw_tracepoint/sched_migrate_task")
int on_migrate(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx->args[0];
	int dest = (int)ctx->args[1];
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (!tgid)
		return 0;
	if (bpf_core_field_exists(p->cpu) && BPF_CORE_READ(p, cpu) == (unsigned int)dest)
		return 0;
	add(&migrations, tgid, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
