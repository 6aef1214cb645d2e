/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared includes, return codes and the parsed view of one packet. */
#pragma once

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define CTX_ACT_OK	TC_ACT_OK
#define CTX_ACT_DROP	TC_ACT_SHOT

/* Traffic direction as seen by the endpoint, numbered as Hubble's TrafficDirection. */
#define DIR_INGRESS	1
#define DIR_EGRESS	2

/* skb->mark layout (must match src/datapath/marks.ts).
 * MARK_TO_PROXY: set on packets handed to a proxy socket with bpf_sk_assign; the node's
 *   `ip rule fwmark 0x200/0xf00 lookup 2004` sends them to the local table even though the
 *   destination address is not local.
 * MARK_FROM_PROXY: set by the proxy (SO_MARK) on its upstream sockets. Bits 16..31 carry the
 *   low 16 bits of the original source identity and bits 0..7 its bits 16..23, so the
 *   destination judges the pod that made the request, not the node.
 */
#define MARK_MAGIC_MASK		0x0F00
#define MARK_TO_PROXY		0x0200
#define MARK_FROM_PROXY		0x0A00

static __always_inline __u32 mark_identity(__u32 mark)
{
	return (mark >> 16) | ((mark & 0xFF) << 16);
}

/* One IPv4 packet's tuple as the programs use it; addresses and ports in network order. */
struct packet {
	__be32	saddr;
	__be32	daddr;
	__be16	sport;
	__be16	dport;
	__u8	protocol;
	__u8	tcp_flags;
	__u8	icmp_type;
	__u8	related;	/* ICMP error quoting a packet: inner_* hold that packet's tuple */
	__be32	inner_saddr;
	__be32	inner_daddr;
	__be16	inner_sport;
	__be16	inner_dport;
	__u8	inner_protocol;
	__u8	frag;		/* FRAG_NONE, FRAG_FIRST or FRAG_LATER (lib/frag.h) */
	__be16	ip_id;		/* IPv4 identification: names a fragment's datagram */
};

/* linux/icmp.h drags in libc headers that do not build for -target bpf. */
struct icmp_echo_hdr {
	__u8	type;
	__u8	code;
	__sum16	checksum;
	__be16	id;
	__be16	sequence;
};

#define ICMP_ECHOREPLY		0
#define ICMP_DEST_UNREACH	3
#define ICMP_ECHO		8
#define ICMP_TIME_EXCEEDED	11
#define ICMP_PARAMETERPROB	12

#define TCP_FLAG_FIN	0x01
#define TCP_FLAG_SYN	0x02
#define TCP_FLAG_RST	0x04
#define TCP_FLAG_PSH	0x08
#define TCP_FLAG_ACK	0x10
#define TCP_FLAG_URG	0x20
#define TCP_FLAG_ECE	0x40
#define TCP_FLAG_CWR	0x80
