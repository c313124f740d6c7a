// SPDX-License-Identifier: GPL-2.0
/* The XDP blocklist for vigil-agent (agent/src/transport/xdp.rs): drops
 * every packet whose IPv4 or IPv6 source address is a key of
 * vigil_block_v4 / vigil_block_v6, counting the drops in the value. Both
 * maps are pinned by name (the agent pins them under /sys/fs/bpf/vigil) so
 * the blocks outlive the agent and are reused when it starts again. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* IPv4 address, network byte order */
	__type(value, __u64); /* packets dropped */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vigil_block_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct in6_addr);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vigil_block_v6 SEC(".maps");

SEC("xdp")
int vigil_xdp_blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	__u16 proto = eth->h_proto;
	void *l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vlan = l3;
		if ((void *)(vlan + 1) > data_end)
			return XDP_PASS;
		proto = vlan->h_vlan_encapsulated_proto;
		l3 = vlan + 1;
	}
	__u64 *drops = 0;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		__u32 saddr = ip->saddr;
		drops = bpf_map_lookup_elem(&vigil_block_v4, &saddr);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		struct in6_addr saddr = ip6->saddr;
		drops = bpf_map_lookup_elem(&vigil_block_v6, &saddr);
	}
	if (!drops)
		return XDP_PASS;
	__sync_fetch_and_add(drops, 1);
	return XDP_DROP;
}
