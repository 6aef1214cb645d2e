/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Hand a packet to a transparent proxy socket in this network namespace (bpf_sk_assign).
 *
 * Works only at tc ingress, which is why the from-endpoint program makes every redirect
 * decision. The established socket of the flow is preferred over the listener, so the
 * packets after the SYN reach the connection the proxy accepted.
 */
#pragma once

#include "common.h"
#include "drop_reasons.h"

static __always_inline int __assign(struct __sk_buff *skb, struct bpf_sock *sk)
{
	long err = bpf_sk_assign(skb, sk, 0);

	bpf_sk_release(sk);
	/* Found but not assignable: Cilium's DROP_PROXY_SET_FAILED, still fail closed. */
	if (err)
		return -DROP_PROXY_SET_FAILED;
	/* The fwmark rule routes it to the local table although daddr is not ours. */
	skb->mark = MARK_TO_PROXY;
	return 0;
}

/**
 * proxy_redirect - assign the packet to the proxy's socket
 * @skb: packet at tc ingress
 * @pkt: its parsed tuple
 * @proxy_port: port the proxy listens on, network order
 *
 * Returns 0 when assigned, or the negative drop reason (DROP_PROXY_LOOKUP_FAILED when no proxy
 * socket exists, DROP_PROXY_SET_FAILED, DROP_PROXY_UNKNOWN_PROTO): a flow that policy sends to
 * the proxy never bypasses it.
 */
static __always_inline int proxy_redirect(struct __sk_buff *skb, const struct packet *pkt, __be16 proxy_port)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;

	tuple.ipv4.saddr = pkt->saddr;
	tuple.ipv4.daddr = pkt->daddr;
	tuple.ipv4.sport = pkt->sport;
	tuple.ipv4.dport = pkt->dport;

	if (pkt->protocol == IPPROTO_TCP) {
		sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (sk) {
			if (sk->state != BPF_TCP_LISTEN)
				return __assign(skb, sk);
			bpf_sk_release(sk);
		}
		tuple.ipv4.dport = proxy_port;
		sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return -DROP_PROXY_LOOKUP_FAILED;
		if (sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return -DROP_PROXY_LOOKUP_FAILED;
		}
		return __assign(skb, sk);
	}
	if (pkt->protocol == IPPROTO_UDP) {
		tuple.ipv4.dport = proxy_port;
		sk = bpf_sk_lookup_udp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return -DROP_PROXY_LOOKUP_FAILED;
		return __assign(skb, sk);
	}
	return -DROP_PROXY_UNKNOWN_PROTO;
}
