/* Shared by the agent's BPF programs and mirrored in agent/src/collect/ebpf.rs
 * (the record layout) — change both together. */
#ifndef VIGIL_BPF_H
#define VIGIL_BPF_H

#define VIGIL_EV_EXEC 1
#define VIGIL_EV_EXIT 2
#define VIGIL_EV_CONN_OPEN 3
#define VIGIL_EV_CONN_CLOSE 4

#define VIGIL_FILENAME_SIZE 256
/* A power of two: the copy length is masked with VIGIL_ARGS_SIZE - 1. */
#define VIGIL_ARGS_SIZE 2048

#define VIGIL_FLAG_ARGS_TRUNCATED 1

/* Little-endian, fixed offsets (see HEADER_LEN etc. in ebpf.rs). */
struct vigil_hdr {
	__u32 kind;       /*  0 VIGIL_EV_* */
	__u32 pid;        /*  4 tgid */
	__u32 tid;        /*  8 */
	__u32 ppid;       /* 12 real_parent's tgid */
	__u32 uid;        /* 16 real uid */
	__u32 euid;       /* 20 */
	__s32 exit_code;  /* 24 wait status (exit) */
	__u32 args_len;   /* 28 bytes of args copied (exec) */
	__u64 ts_ns;      /* 32 CLOCK_MONOTONIC */
	__u64 start_ns;   /* 40 task start, ns since boot (incl. suspend) */
	__u64 cgroup_id;  /* 48 v2 cgroup id */
	__u32 flags;      /* 56 VIGIL_FLAG_* */
	__u32 _pad;       /* 60 */
	char comm[16];    /* 64 */
};                        /* 80 */

struct vigil_exec {
	struct vigil_hdr h;
	char filename[VIGIL_FILENAME_SIZE]; /*  80 */
	char args[VIGIL_ARGS_SIZE];         /* 336: NUL-separated argv */
};

/* TCP connection records (net.bpf.c; parsed in agent/src/collect/ebpf_net.rs). */
#define VIGIL_CONN_OWNER_CONNECT 1 /* pid/comm: the task that called connect() */
#define VIGIL_CONN_OWNER_CURRENT 2 /* pid/comm: whatever task was current (a hint only) */

struct vigil_conn {
	__u32 kind;       /*  0 VIGIL_EV_CONN_* */
	__u32 pid;        /*  4 tgid (see flags) */
	__u32 tid;        /*  8 */
	__u32 uid;        /* 12 the socket's uid (sk_uid) */
	__u64 ts_ns;      /* 16 CLOCK_MONOTONIC */
	__u64 inode;      /* 24 socket inode, 0 when the socket has no file (accept pending, orphaned) */
	__u16 family;     /* 32 AF_INET / AF_INET6 */
	__u16 sport;      /* 34 local port, host order */
	__u16 dport;      /* 36 remote port, host order */
	__u8 oldstate;    /* 38 TCP_* */
	__u8 newstate;    /* 39 */
	__u8 saddr[16];   /* 40 local address (IPv4: first 4 bytes) */
	__u8 daddr[16];   /* 56 remote address */
	char comm[16];    /* 72 */
	__u32 flags;      /* 88 VIGIL_CONN_OWNER_* */
	__u32 _pad;       /* 92 */
};                        /* 96 */

#endif
