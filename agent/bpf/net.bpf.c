// SPDX-License-Identifier: GPL-2.0
/* TCP connection events for vigil-agent (agent/src/collect/ebpf_net.rs):
 * the tracepoint sock/inet_sock_set_state, one record per connection that
 * becomes ESTABLISHED (opened) and per established connection that reaches
 * CLOSE (closed), into the `conn_events` ring buffer. Records that do not
 * fit are counted in `conn_lost` so the agent reconciles from /proc.
 *
 * Ownership: the state change to ESTABLISHED runs in the receive path
 * (softirq), so the task current there is whoever the CPU was running,
 * not the socket's owner. The task that called connect() is the current
 * one at CLOSE -> SYN_SENT (tcp_v4_connect / tcp_v6_connect); it is kept in
 * `connectors` by socket and put in the outbound record (flag
 * VIGIL_CONN_OWNER_CONNECT). Inbound and close records carry the current
 * task only as a hint (VIGIL_CONN_OWNER_CURRENT); the agent takes their
 * owner from the listener and from what it knew when the connection opened. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "vigil.h"

char LICENSE[] SEC("license") = "GPL";

#define VIGIL_AF_INET 2
#define VIGIL_AF_INET6 10
#define VIGIL_IPPROTO_TCP 6

/* TCP states (include/net/tcp_states.h). */
#define VIGIL_TCP_ESTABLISHED 1
#define VIGIL_TCP_SYN_SENT 2
#define VIGIL_TCP_SYN_RECV 3
#define VIGIL_TCP_CLOSE 7
#define VIGIL_TCP_LISTEN 10
#define VIGIL_TCP_NEW_SYN_RECV 12

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 19);
} conn_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} conn_lost SEC(".maps");

struct connector {
	__u32 pid;
	__u32 tid;
	char comm[16];
};

/* Socket (kernel address) -> the task that called connect() on it, from
 * SYN_SENT until ESTABLISHED or CLOSE. LRU: a socket whose handshake never
 * ends is evicted rather than leaked. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct connector);
} connectors SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&conn_lost, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("tracepoint/sock/inet_sock_set_state")
int vigil_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != VIGIL_IPPROTO_TCP)
		return 0;
	int oldstate = ctx->oldstate;
	int newstate = ctx->newstate;
	__u64 key = (__u64)ctx->skaddr;
	__u32 kind;

	if (newstate == VIGIL_TCP_SYN_SENT) {
		__u64 id = bpf_get_current_pid_tgid();
		struct connector c = { .pid = id >> 32, .tid = (__u32)id };
		bpf_get_current_comm(&c.comm, sizeof(c.comm));
		bpf_map_update_elem(&connectors, &key, &c, BPF_ANY);
		return 0;
	}
	if (newstate == VIGIL_TCP_ESTABLISHED &&
	    (oldstate == VIGIL_TCP_SYN_SENT || oldstate == VIGIL_TCP_SYN_RECV)) {
		kind = VIGIL_EV_CONN_OPEN;
	} else if (newstate == VIGIL_TCP_CLOSE) {
		if (oldstate == VIGIL_TCP_SYN_SENT)
			bpf_map_delete_elem(&connectors, &key);
		/* Only connections that were established close. */
		if (oldstate == VIGIL_TCP_SYN_SENT || oldstate == VIGIL_TCP_SYN_RECV ||
		    oldstate == VIGIL_TCP_LISTEN || oldstate == VIGIL_TCP_CLOSE ||
		    oldstate == VIGIL_TCP_NEW_SYN_RECV)
			return 0;
		kind = VIGIL_EV_CONN_CLOSE;
	} else {
		return 0;
	}

	struct vigil_conn *e = bpf_ringbuf_reserve(&conn_events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		if (kind == VIGIL_EV_CONN_OPEN && oldstate == VIGIL_TCP_SYN_SENT)
			bpf_map_delete_elem(&connectors, &key);
		return 0;
	}
	struct connector *c = 0;
	if (kind == VIGIL_EV_CONN_OPEN && oldstate == VIGIL_TCP_SYN_SENT)
		c = bpf_map_lookup_elem(&connectors, &key);
	if (c) {
		e->pid = c->pid;
		e->tid = c->tid;
		__builtin_memcpy(e->comm, c->comm, sizeof(e->comm));
		e->flags = VIGIL_CONN_OWNER_CONNECT;
	} else {
		__u64 id = bpf_get_current_pid_tgid();
		e->pid = id >> 32;
		e->tid = (__u32)id;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		e->flags = VIGIL_CONN_OWNER_CURRENT;
	}
	if (c)
		bpf_map_delete_elem(&connectors, &key);

	struct sock *sk = (struct sock *)ctx->skaddr;
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	e->inode = 0;
	if (so) {
		/* SOCK_INODE(): struct socket is the first member of struct socket_alloc. */
		struct socket_alloc *sa = (struct socket_alloc *)so;
		e->inode = BPF_CORE_READ(sa, vfs_inode.i_ino);
	}
	e->kind = kind;
	e->uid = BPF_CORE_READ(sk, sk_uid.val);
	e->ts_ns = bpf_ktime_get_ns();
	e->family = ctx->family;
	e->sport = ctx->sport;
	e->dport = ctx->dport;
	e->oldstate = oldstate;
	e->newstate = newstate;
	e->_pad = 0;
	/* Copied with bpf_probe_read_kernel: the verifier refuses loads through
	 * a ctx pointer with an offset added, which memcpy compiles into. */
	__builtin_memset(e->saddr, 0, 16);
	__builtin_memset(e->daddr, 0, 16);
	if (ctx->family == VIGIL_AF_INET6) {
		bpf_probe_read_kernel(e->saddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e->daddr, 16, ctx->daddr_v6);
	} else {
		bpf_probe_read_kernel(e->saddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e->daddr, 4, ctx->daddr);
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}
