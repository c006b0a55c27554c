// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// tcplife follows every TCP connection from its first state change to
// TCP_CLOSE on the sock:inet_sock_set_state tracepoint
// (include/trace/events/sock.h), which tcp_set_state and
// inet_sk_set_state fire for every transition. It is attached as a BTF
// tracepoint (tp_btf): no kprobes, no tracefs, and the socket pointer is
// typed, which bpf_get_socket_cookie needs to hand out the same cookie that
// sock_diag reports as idiag_cookie.
//
// Live connections are kept in a hash map keyed by that cookie; at
// TCP_CLOSE one record with the final tcp_sock counters goes to user space
// through a ring buffer and the entry is deleted. A full map or a full ring
// is counted in drops[], never silent.
//
// Regenerate the object and its Go bindings (needs clang, libbpf-dev):
//   go generate ./input/internal/tcplife/
// Fields are read with CO-RE relocations against the running kernel's BTF
// (/sys/kernel/btf/vmlinux): the structs below only name the fields used.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	unsigned long skc_flags;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct socket {
	struct file *file;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	struct socket *sk_socket;
} __attribute__((preserve_access_index));

struct inet_sock {
	__be16 inet_sport;
} __attribute__((preserve_access_index));

// Before Linux 6.18 the flags were struct sock's own sk_flags; they moved
// into sock_common as skc_flags.
struct sock___old {
	unsigned long sk_flags;
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u64 bytes_received;
	__u64 bytes_acked;
	__u32 segs_in;
	__u32 segs_out;
	__u32 total_retrans;
	__u32 srtt_us;
	__u32 snd_una;
	__u32 write_seq;
} __attribute__((preserve_access_index));

// include/net/tcp_states.h, linux/socket.h, linux/in.h
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10
#define TCP_CLOSING 11
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
// enum sock_flags (include/net/sock.h): tcp_fin sets SOCK_DONE when the
// peer's FIN arrives; it has been the second flag since Linux 2.6.
#define SOCK_DONE 1

// conn.flags and closed_conn.flags
#define CONN_STARTED 1       // the first state change (SYN_SENT/SYN_RECV) was seen
#define CONN_ACTIVE 2        // opened by connect(): tgid is the caller's
#define CONN_LISTENER 4      // passive open: tgid is the listener's owner
#define CONN_FIN_ACKED 8     // our FIN was sent and acknowledged
#define CONN_FIN_RECEIVED 16 // the peer's FIN arrived

#define COMM_LEN 16

struct conn {
	__u64 start_ns; // bpf_ktime_get_ns (CLOCK_MONOTONIC) of the first state change
	__u32 tgid;
	__u32 inode;
	__u8 flags;
	__u8 pad[7];
	char comm[COMM_LEN];
};

// closed_conn is the ring buffer record; user space decodes it by offset
// (tcplife.go), so its layout is fixed: 128 bytes, no implicit padding.
struct closed_conn {
	__u64 cookie;
	__u64 start_ns;
	__u64 end_ns;
	__u64 bytes_acked;
	__u64 bytes_received;
	__u32 segs_out;
	__u32 segs_in;
	__u32 total_retrans;
	__u32 srtt_us; // smoothed RTT in µs (tcp_sock.srtt_us is 8 times that)
	__u32 tgid;
	__u32 netns;
	__u32 inode;
	__u16 sport;   // host order
	__u16 dport;   // host order
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 family;
	__u8 oldstate; // the state before TCP_CLOSE
	__u8 flags;
	__u8 pad;
	char comm[COMM_LEN];
	__u8 pad2[4];
};

struct listener_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

struct owner {
	__u32 tgid;
	char comm[COMM_LEN];
};

// max_entries is set by user space (tcplife.Options.MaxConnections).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); // socket cookie
	__type(value, struct conn);
} conns SEC(".maps");

// Accepted connections between their SYN_RECV and their next state change,
// keyed by the child socket's address: their cookie is not yet theirs.
// inet_csk_clone_lock fires the SYN_RECV state change on the fresh clone
// before it copies the request's ir_cookie into sk_cookie (which
// sk_clone_lock zeroed): a cookie taken then is overwritten on 6.1 and
// 6.12, and the close came with a cookie the program never saw, so the
// record lacked its start and its listener. max_entries: as conns.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); // struct sock *
	__type(value, struct conn);
} children SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct listener_key);
	__type(value, struct owner);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} closed SEC(".maps");

#define DROP_RING_FULL 0
#define DROP_MAP_FULL 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// Keeps the record type in the object's BTF, from which bpf2go emits the
// Go struct that the decoder's layout test compares against.
const struct closed_conn *unused_closed_conn __attribute__((unused));

static __always_inline void count_drop(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&drops, &what);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u32 netns_inum(struct sock *sk)
{
	struct net *net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	if (!net)
		return 0;
	return BPF_CORE_READ(net, ns.inum);
}

// sock_inode is the inode of the socket's file, 0 once the socket is
// orphaned (close(2) ran) or before accept(2) grafted it.
static __always_inline __u32 sock_inode(struct sock *sk)
{
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	if (!so)
		return 0;
	return BPF_CORE_READ(so, file, f_inode, i_ino);
}

static __always_inline unsigned long sock_flags(struct sock *sk)
{
	if (bpf_core_field_exists(sk->__sk_common.skc_flags))
		return BPF_CORE_READ(sk, __sk_common.skc_flags);
	struct sock___old *old = (void *)sk;
	return BPF_CORE_READ(old, sk_flags);
}

static __always_inline void put(struct conn *c, __u64 cookie)
{
	if (bpf_map_update_elem(&conns, &cookie, c, BPF_ANY))
		count_drop(DROP_MAP_FULL);
}

static __always_inline void report(struct sock *sk, __u64 cookie, struct conn *c, int oldstate, unsigned short family)
{
	struct closed_conn *e = bpf_ringbuf_reserve(&closed, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RING_FULL);
		return;
	}
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	__builtin_memset(e, 0, sizeof(*e));
	e->cookie = cookie;
	e->end_ns = bpf_ktime_get_ns();
	if (c) {
		e->start_ns = c->start_ns;
		e->tgid = c->tgid;
		e->inode = c->inode;
		e->flags = c->flags;
		__builtin_memcpy(e->comm, c->comm, COMM_LEN);
	}
	__u32 ino = sock_inode(sk);
	if (ino)
		e->inode = ino;
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->segs_out = BPF_CORE_READ(tp, segs_out);
	e->segs_in = BPF_CORE_READ(tp, segs_in);
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
	e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	// Our FIN was queued in every state below; write_seq counts it, so it
	// is acknowledged when snd_una caught up (tcp_send_fin, tcp_ack).
	if (oldstate == TCP_FIN_WAIT1 || oldstate == TCP_FIN_WAIT2 ||
	    oldstate == TCP_CLOSING || oldstate == TCP_LAST_ACK) {
		if (BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
			e->flags |= CONN_FIN_ACKED;
	}
	if (sock_flags(sk) & (1UL << SOCK_DONE))
		e->flags |= CONN_FIN_RECEIVED;
	e->netns = netns_inum(sk);
	e->family = family;
	e->oldstate = oldstate;
	// Not skc_num: tcp_set_state releases the port (inet_put_port zeroes
	// inet_num) before the tracepoint fires for TCP_CLOSE.
	e->sport = __builtin_bswap16(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	e->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	// Submitted before the entry is deleted: user space that drains the
	// ring and then looks a cookie up finds the connection in one of them.
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;

	if (newstate == TCP_LISTEN) {
		// listen(2) runs in the owner's context.
		struct listener_key lk = {.netns = netns_inum(sk), .port = BPF_CORE_READ(sk, __sk_common.skc_num)};
		struct owner o = {.tgid = bpf_get_current_pid_tgid() >> 32};
		bpf_get_current_comm(o.comm, sizeof(o.comm));
		bpf_map_update_elem(&listeners, &lk, &o, BPF_ANY);
		return 0;
	}
	if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE) {
		struct listener_key lk = {.netns = netns_inum(sk), .port = BPF_CORE_READ(sk, __sk_common.skc_num)};
		bpf_map_delete_elem(&listeners, &lk);
		return 0;
	}

	__u64 skp = (__u64)sk;
	if (newstate == TCP_SYN_RECV) {
		// A child socket made in softirq from a listener
		// (inet_csk_clone_lock): the task running now is anyone's, and
		// the socket has no cookie of its own yet (see children).
		struct conn c = {.start_ns = bpf_ktime_get_ns(), .flags = CONN_STARTED};
		struct listener_key lk = {.netns = netns_inum(sk), .port = BPF_CORE_READ(sk, __sk_common.skc_num)};
		struct owner *o = bpf_map_lookup_elem(&listeners, &lk);
		if (o) {
			c.tgid = o->tgid;
			c.flags |= CONN_LISTENER;
			__builtin_memcpy(c.comm, o->comm, COMM_LEN);
		}
		if (bpf_map_update_elem(&children, &skp, &c, BPF_ANY))
			count_drop(DROP_MAP_FULL);
		return 0;
	}

	__u64 cookie = bpf_get_socket_cookie(sk);
	if (newstate == TCP_SYN_SENT) {
		// connect(2), in the caller's context.
		struct conn c = {.start_ns = bpf_ktime_get_ns(), .flags = CONN_STARTED | CONN_ACTIVE};
		c.tgid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(c.comm, sizeof(c.comm));
		c.inode = sock_inode(sk);
		put(&c, cookie);
		return 0;
	}

	struct conn *c = bpf_map_lookup_elem(&conns, &cookie);
	if (!c) {
		// The first state change of an accepted connection after
		// SYN_RECV: from here on its cookie is stable.
		struct conn *child = bpf_map_lookup_elem(&children, &skp);
		if (child) {
			struct conn moved = *child;
			bpf_map_delete_elem(&children, &skp);
			if (newstate == TCP_CLOSE) {
				report(sk, cookie, &moved, oldstate, family);
				return 0;
			}
			if (!moved.inode)
				moved.inode = sock_inode(sk);
			put(&moved, cookie);
			return 0;
		}
	}
	if (newstate == TCP_CLOSE) {
		report(sk, cookie, c, oldstate, family);
		bpf_map_delete_elem(&conns, &cookie);
		return 0;
	}

	// Any other transition: a connection older than the program is
	// entered without a start, so that user space can tell "still open"
	// from "gone"; a known one learns its inode once accept(2) gave it one.
	if (!c) {
		struct conn n = {.inode = sock_inode(sk)};
		put(&n, cookie);
		return 0;
	}
	if (!c->inode)
		c->inode = sock_inode(sk);
	return 0;
}
