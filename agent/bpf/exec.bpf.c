// SPDX-License-Identifier: GPL-2.0
/* Process exec and exit events for vigil-agent (agent/src/collect/ebpf.rs):
 * tracepoints sched/sched_process_exec and sched/sched_process_exit, one
 * record per event into the `events` ring buffer. Records that do not fit
 * are counted in `lost` so the agent reconciles from /proc. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "vigil.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void fill_hdr(struct vigil_hdr *h, __u32 kind, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->euid = BPF_CORE_READ(task, cred, euid.val);
	h->exit_code = 0;
	h->args_len = 0;
	h->ts_ns = bpf_ktime_get_ns();
	h->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->flags = 0;
	h->_pad = 0;
	bpf_get_current_comm(&h->comm, sizeof(h->comm));
}

SEC("tracepoint/sched/sched_process_exec")
int vigil_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct vigil_exec *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	fill_hdr(&e->h, VIGIL_EV_EXEC, task);

	/* The filename is a __data_loc field: offset in the low 16 bits. */
	__u32 loc = 0;
	bpf_probe_read_kernel(&loc, sizeof(loc), &ctx->__data_loc_filename);
	e->filename[0] = 0;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + (loc & 0xFFFF));

	unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u64 len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len >= VIGIL_ARGS_SIZE) {
		len = VIGIL_ARGS_SIZE - 1;
		e->h.flags |= VIGIL_FLAG_ARGS_TRUNCATED;
	}
	len &= VIGIL_ARGS_SIZE - 1;
	e->args[0] = 0;
	if (len > 0 && bpf_probe_read_user(e->args, len, (void *)arg_start) == 0)
		e->h.args_len = len;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int vigil_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	/* Only when the whole thread group is gone (the last thread exits). */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	struct vigil_hdr *h = bpf_ringbuf_reserve(&events, sizeof(*h), 0);
	if (!h) {
		count_lost();
		return 0;
	}
	fill_hdr(h, VIGIL_EV_EXIT, task);
	h->exit_code = BPF_CORE_READ(task, exit_code);
	bpf_ringbuf_submit(h, 0);
	return 0;
}
