/* Shared by the agent's BPF programs and mirrored in agent/src/collect/ebpf.rs
 * (the record layout) — change both together. */
#ifndef VIGIL_BPF_H
#define VIGIL_BPF_H

#define VIGIL_EV_EXEC 1
#define VIGIL_EV_EXIT 2

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

#endif
