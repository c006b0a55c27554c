// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Bytes and packets handed to each TX queue of each device, per flow:
// the net:net_dev_start_xmit tracepoint (include/trace/events/net.h) fires
// in dev_hard_start_xmit/xmit_one with the skb the driver is given, whose
// queue_mapping is the TX queue netdev_core_pick_tx chose. The flow is
// read from the skb's socket, so the 5-tuple is the socket's, as ss(8) and
// sock_diag report it, and its inode joins it to a process.
//
// Regenerate the object and its Go bindings (needs clang, libbpf-dev):
//   go generate ./input/qdisc/
// Fields are read with CO-RE relocations against the running kernel's
// BTF (/sys/kernel/btf/vmlinux), so the struct layouts below only name
// the fields used; their offsets come from the kernel at load time.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
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
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
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

struct net_device {
	int ifindex;
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct skb_shared_info {
	unsigned short gso_segs;
} __attribute__((preserve_access_index));

struct sk_buff {
	unsigned int len;
	__u16 queue_mapping;
	struct sock *sk;
	struct net_device *dev;
	unsigned char *head;
	unsigned int end;
} __attribute__((preserve_access_index));

struct trace_event_raw_net_dev_start_xmit {
	__u16 queue_mapping;
	const void *skbaddr;
	unsigned int len;
} __attribute__((preserve_access_index));

// TCP states (include/net/tcp_states.h) of sockets that are not full
// struct socks: their sk_protocol and sk_socket must not be read.
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

struct flow_key {
	__u32 dev_netns; // inode of the device's network namespace
	__u32 ifindex;
	__u32 sk_netns;  // inode of the socket's network namespace
	__u32 sock_ino;  // socket inode, 0 without a full socket
	__u8 saddr[16];  // local address (IPv4 in the first 4 bytes)
	__u8 daddr[16];  // remote address
	__u16 sport;     // local port, host order
	__u16 dport;     // remote port, host order
	__u16 queue;
	__u8 family;     // 0: the skb has no socket
	__u8 protocol;
};

struct flow_val {
	__u64 bytes;
	__u64 packets;
};

// An LRU map bounds memory on hosts with many flows: an evicted entry
// loses its counts, which user space sees as a counter reset.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} xmit_flows SEC(".maps");

static __always_inline __u32 netns_inum(possible_net_t *pn)
{
	struct net *net = BPF_CORE_READ(pn, net);
	if (!net)
		return 0;
	return BPF_CORE_READ(net, ns.inum);
}

static __always_inline void account(struct sk_buff *skb, __u16 queue, __u32 len)
{
	struct flow_key key = {};
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct sock *sk = BPF_CORE_READ(skb, sk);

	key.queue = queue;
	if (dev) {
		key.ifindex = BPF_CORE_READ(dev, ifindex);
		key.dev_netns = netns_inum(&dev->nd_net);
	}
	if (sk) {
		unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
		unsigned char state = BPF_CORE_READ(sk, __sk_common.skc_state);
		if (family == AF_INET) {
			__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
			__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
			__builtin_memcpy(key.saddr, &s, 4);
			__builtin_memcpy(key.daddr, &d, 4);
		} else if (family == AF_INET6) {
			BPF_CORE_READ_INTO(&key.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
			BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		}
		if (family == AF_INET || family == AF_INET6) {
			key.family = family;
			key.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
			key.dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
			key.sk_netns = netns_inum(&sk->__sk_common.skc_net);
			if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV) {
				key.protocol = IPPROTO_TCP;
			} else {
				key.protocol = BPF_CORE_READ(sk, sk_protocol);
				struct socket *so = BPF_CORE_READ(sk, sk_socket);
				if (so)
					key.sock_ino = BPF_CORE_READ(so, file, f_inode, i_ino);
			}
		}
	}

	// A GSO skb becomes gso_segs packets on the wire (skb_shinfo is at
	// skb->head + skb->end on 64-bit kernels, NET_SKBUFF_DATA_USES_OFFSET).
	__u64 packets = 1;
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned int end = BPF_CORE_READ(skb, end);
	struct skb_shared_info *shinfo = (struct skb_shared_info *)(head + end);
	unsigned short segs = BPF_CORE_READ(shinfo, gso_segs);
	if (segs > 1)
		packets = segs;

	struct flow_val *v = bpf_map_lookup_elem(&xmit_flows, &key);
	if (!v) {
		struct flow_val init = {};
		bpf_map_update_elem(&xmit_flows, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&xmit_flows, &key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->bytes, len);
	__sync_fetch_and_add(&v->packets, packets);
}

SEC("tracepoint/net/net_dev_start_xmit")
int tp_net_dev_start_xmit(struct trace_event_raw_net_dev_start_xmit *ctx)
{
	account((struct sk_buff *)ctx->skbaddr, ctx->queue_mapping, ctx->len);
	return 0;
}

// The same tracepoint without tracefs: raw tracepoint arguments are the
// TP_PROTO(const struct sk_buff *skb, const struct net_device *dev).
SEC("raw_tracepoint/net_dev_start_xmit")
int raw_net_dev_start_xmit(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];
	account(skb, BPF_CORE_READ(skb, queue_mapping), BPF_CORE_READ(skb, len));
	return 0;
}
