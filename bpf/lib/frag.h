/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 fragment tracking, as Cilium's bpf/lib/ipv4.h does it with
 * --enable-ipv4-fragment-tracking (its default): not reassembly, only memory.
 *
 * Only a datagram's first fragment carries its L4 header. When the programs see it they record
 * the ports (and the ICMP type and TCP flags, which policy and conntrack also read) under the
 * datagram's {daddr, saddr, IP id, protocol}; each later fragment takes them back from there and
 * then goes through conntrack and policy exactly as the first did, so the same ports meet the
 * same verdict: allowed (as a new flow or a reply) or denied, by the same rule. The kernel reassembles the
 * datagram after tc. A later fragment whose first was never seen (reordered ahead of it, or its
 * entry evicted) is dropped with Cilium's DROP_FRAG_NOT_FOUND.
 *
 * A fragment of a flow that policy sends to a proxy is dropped with DROP_FRAG_NOSUPPORT instead:
 * bpf_sk_assign cannot hand a fragmented datagram to the proxy, because the kernel's reassembly
 * (ip_defrag) orphans each fragment from the socket it was assigned, and the whole datagram is
 * then looked up by its original destination, which no local socket has. It would vanish in the
 * node's stack; dropped here, it is seen (`membrane observe`) and never bypasses the proxy. Only
 * the direction into the proxy is affected: answers to the proxy's upstream socket and from the
 * proxy to the pod are ordinary replies of tracked connections, fragmented or not.
 *
 * Entries are never deleted: the map is an LRU, bounded like Cilium's default (8192), and a
 * reused IP id simply overwrites its entry with the new first fragment's ports.
 */
#pragma once

#include "common.h"
#include "drop_reasons.h"

#define FRAG_NONE	0	/* not a fragment */
#define FRAG_FIRST	1	/* offset 0, more fragments follow: has the L4 header */
#define FRAG_LATER	2	/* non-zero offset: no L4 header */

struct frag_key {
	__be32	daddr;
	__be32	saddr;
	__be16	id;
	__u8	protocol;
	__u8	reserved_0;
};

struct frag_l4 {
	__be16	sport;
	__be16	dport;
	__u8	icmp_type;
	__u8	tcp_flags;
	__u16	reserved_0;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct frag_key);
	__type(value, struct frag_l4);
	__uint(max_entries, 8192);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_frag4 SEC(".maps");

/**
 * frag_track - record or recover a fragmented datagram's L4 fields
 * @pkt: parsed packet; pkt->frag says which fragment it is. A FRAG_LATER packet gets its
 *       sport, dport, icmp_type and tcp_flags filled in here.
 *
 * Call it only once the packet's addresses are known to be this endpoint's (after the
 * anti-spoof or the target check), so a pod cannot fill the map in another's name.
 *
 * Returns 0, or -DROP_FRAG_NOT_FOUND for a later fragment whose first was not seen. A failed
 * update of a first fragment is not a drop (as in Cilium): that fragment carries its own ports,
 * and its later fragments then fail closed.
 */
static __always_inline int frag_track(struct packet *pkt)
{
	struct frag_key key = {
		.daddr = pkt->daddr,
		.saddr = pkt->saddr,
		.id = pkt->ip_id,
		.protocol = pkt->protocol,
	};
	struct frag_l4 *found;

	if (pkt->frag == FRAG_FIRST) {
		struct frag_l4 l4 = {
			.sport = pkt->sport,
			.dport = pkt->dport,
			.icmp_type = pkt->icmp_type,
			.tcp_flags = pkt->tcp_flags,
		};

		bpf_map_update_elem(&membrane_frag4, &key, &l4, BPF_ANY);
		return 0;
	}
	if (pkt->frag != FRAG_LATER)
		return 0;
	found = bpf_map_lookup_elem(&membrane_frag4, &key);
	if (!found)
		return -DROP_FRAG_NOT_FOUND;
	pkt->sport = found->sport;
	pkt->dport = found->dport;
	pkt->icmp_type = found->icmp_type;
	pkt->tcp_flags = found->tcp_flags;
	return 0;
}
