/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing: Ethernet → IPv4 → TCP/UDP/ICMP, with every bound checked. */
#pragma once

#include "common.h"
#include "drop_reasons.h"
#include "frag.h"

#define ETH_P_ARP_BE	bpf_htons(0x0806)
#define IP_MF		0x2000
#define IP_OFFSET	0x1FFF

#define PARSE_OK	0
#define PARSE_PASS	1	/* not ours to judge (ARP) */

/* An ICMP error quotes the IP header and first 8 bytes of the packet it is about: enough to
 * find that packet's connection, so errors about allowed connections (port unreachable, path
 * MTU) reach the endpoint as Cilium's "related" traffic does. Quotes with IP options are not
 * followed; such an error is then judged as plain ICMP.
 */
static __always_inline void parse_icmp_quote(struct packet *pkt, void *quote, void *data_end)
{
	struct iphdr *inner = quote;
	__be16 *ports = (void *)(inner + 1);

	if ((void *)(inner + 1) > data_end || inner->ihl != 5)
		return;
	if (inner->protocol != IPPROTO_TCP && inner->protocol != IPPROTO_UDP && inner->protocol != IPPROTO_SCTP)
		return;
	if ((void *)(ports + 2) > data_end)
		return;
	pkt->inner_saddr = inner->saddr;
	pkt->inner_daddr = inner->daddr;
	pkt->inner_sport = ports[0];
	pkt->inner_dport = ports[1];
	pkt->inner_protocol = inner->protocol;
	pkt->related = 1;
}

/**
 * parse_packet - fill @pkt from @skb
 * @skb: the packet
 * @pkt: out: tuple, protocol, TCP flags, ICMP type
 *
 * Returns PARSE_OK, PARSE_PASS for ARP, or a negative drop reason. Anything we cannot
 * judge is dropped (fail closed): IPv6, truncated headers, unknown L4. A fragment after the
 * first has no L4 header: it is returned with pkt->frag = FRAG_LATER and no ports, which
 * frag_track() recovers from its datagram's first fragment.
 */
static __always_inline int parse_packet(struct __sk_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl_len;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return -DROP_INVALID;
	if (eth->h_proto == ETH_P_ARP_BE)
		return PARSE_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return -DROP_UNKNOWN_L3;

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -DROP_INVALID;
	if (ip->version != 4 || ip->ihl < 5)
		return -DROP_INVALID;
	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->protocol = ip->protocol;
	pkt->ip_id = ip->id;
	if (ip->frag_off & bpf_htons(IP_OFFSET)) {
		if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_SCTP &&
		    ip->protocol != IPPROTO_ICMP)
			return -DROP_UNKNOWN_L4;
		pkt->frag = FRAG_LATER;
		return PARSE_OK;
	}
	if (ip->frag_off & bpf_htons(IP_MF))
		pkt->frag = FRAG_FIRST;

	ihl_len = ip->ihl * 4;
	l4 = (void *)ip + ihl_len;

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return -DROP_CT_INVALID_HDR;
		pkt->sport = tcp->source;
		pkt->dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		return PARSE_OK;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return -DROP_CT_INVALID_HDR;
		pkt->sport = udp->source;
		pkt->dport = udp->dest;
		return PARSE_OK;
	}
	case IPPROTO_SCTP: {
		/* Only the common header's ports matter to policy; they sit where UDP's do. */
		struct udphdr *sctp = l4;

		if ((void *)(sctp + 1) > data_end)
			return -DROP_CT_INVALID_HDR;
		pkt->sport = sctp->source;
		pkt->dport = sctp->dest;
		return PARSE_OK;
	}
	case IPPROTO_ICMP: {
		struct icmp_echo_hdr *icmp = l4;

		if ((void *)(icmp + 1) > data_end)
			return -DROP_CT_INVALID_HDR;
		pkt->icmp_type = icmp->type;
		/* Echo request and reply share the identifier: use it as both ports so the
		 * reply's reversed tuple finds the request's entry.
		 */
		if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY) {
			pkt->sport = icmp->id;
			pkt->dport = icmp->id;
		}
		if (icmp->type == ICMP_DEST_UNREACH || icmp->type == ICMP_TIME_EXCEEDED ||
		    icmp->type == ICMP_PARAMETERPROB)
			parse_icmp_quote(pkt, (void *)(icmp + 1), data_end);
		return PARSE_OK;
	}
	default:
		return -DROP_UNKNOWN_L4;
	}
}
