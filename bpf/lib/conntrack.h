/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking: policy is judged once per connection, and replies ride on the entry.
 *
 * Entries carry the direction they were created in, as Cilium's do: an EGRESS entry is a
 * connection an endpoint opened (created by from-endpoint), an INGRESS entry one it accepted
 * (created by to-endpoint). A reply is recognised by looking up its reversed tuple with the
 * opposite direction, so allowing A→B never implies B→A.
 */
#pragma once

#include "common.h"

#define CT_F_EGRESS		0x01
#define CT_F_INGRESS		0x02

#define CT_ENTRY_F_CLOSING	0x01	/* FIN or RST seen */
#define CT_ENTRY_F_PROXY	0x02	/* the flow is redirected to a proxy */
#define CT_ENTRY_F_FROM_PROXY	0x04	/* the flow was opened by a proxy on behalf of a pod */

#define CT_LIFETIME_SYN		60
#define CT_LIFETIME_TCP		21600
#define CT_LIFETIME_CLOSING	10
#define CT_LIFETIME_NONTCP	60

/* Trace aggregation, Cilium's default --monitor-aggregation=medium (CT_REPORT_INTERVAL, the
 * --monitor-aggregation-interval default of 5 s; --monitor-aggregation-flags defaults to all TCP
 * flags): a packet of a tracked connection is traced when it is the first of its direction, when it
 * carries a TCP flag not yet seen in that direction, when it closes (FIN or RST: Cilium's
 * ACTION_CLOSE always reports), or when the interval has passed since that direction's last trace.
 *
 * The entry keeps Cilium's tx/rx pair (struct ct_entry tx_flags_seen, last_tx_report, ...) in its
 * formerly spare 5 bytes: the flags seen in one nibble per direction, FIN and RST left out (they
 * are always reported) and URG, ECE and CWR sharing one bit; the report times as seconds since
 * boot modulo 2^16, 0 meaning "never reported" (so entries written before these fields existed
 * report once more per direction). The wrap is harmless while packets flow, since every 5 s one of
 * them reports; only a direction silent for about a multiple of 18 h while the other keeps the
 * entry alive can miss one report. tx is the direction the entry was created in, rx its replies.
 */
#define CT_REPORT_INTERVAL	5

#define CT_SEEN_SYN		0x01
#define CT_SEEN_ACK		0x02
#define CT_SEEN_PSH		0x04
#define CT_SEEN_OTHER		0x08	/* URG, ECE or CWR */
#define CT_SEEN_RX_SHIFT	4

struct ct_key {
	__be32	saddr;
	__be32	daddr;
	__be16	sport;
	__be16	dport;
	__u8	protocol;
	__u8	flags;		/* CT_F_EGRESS or CT_F_INGRESS */
	__u16	reserved_0;
};

struct ct_entry {
	__u64	packets;
	__u64	bytes;
	__u32	expires;	/* seconds since boot */
	__u32	src_identity;
	__be16	proxy_port;
	__u8	flags;		/* CT_ENTRY_F_* */
	__u8	flags_seen;	/* CT_SEEN_* of tx, and of rx << CT_SEEN_RX_SHIFT */
	__u16	last_tx_report;	/* seconds since boot mod 2^16 of the last tx trace; 0: none */
	__u16	last_rx_report;	/* the same for rx (replies) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_ct4 SEC(".maps");

/* Seconds since boot (CLOCK_MONOTONIC, as bpf_ktime_get_ns counts them): the coarse clock, a read of the
 * last tick's time rather than of the clock source, which in a guest can cost more than the
 * rest of the packet's work; its few milliseconds of lag are nothing against seconds.
 */
static __always_inline __u32 ct_now(void)
{
	return (__u32)(bpf_ktime_get_coarse_ns() / 1000000000ULL);
}

static __always_inline void ct_key_forward(struct ct_key *key, const struct packet *pkt, __u8 dir)
{
	key->saddr = pkt->saddr;
	key->daddr = pkt->daddr;
	key->sport = pkt->sport;
	key->dport = pkt->dport;
	key->protocol = pkt->protocol;
	key->flags = dir;
	key->reserved_0 = 0;
}

static __always_inline void ct_key_reverse(struct ct_key *key, const struct packet *pkt, __u8 dir)
{
	key->saddr = pkt->daddr;
	key->daddr = pkt->saddr;
	key->sport = pkt->dport;
	key->dport = pkt->sport;
	key->protocol = pkt->protocol;
	key->flags = dir;
	key->reserved_0 = 0;
}

/**
 * ct_related - the tracked connection an ICMP error is about
 * @pkt: the ICMP error, with the quoted packet's tuple in inner_*
 * @dir: the direction the quoted packet's connection was tracked in by this endpoint
 *
 * Returns the live connection's entry, or NULL. Its expiry and counters are not touched (an
 * error neither keeps a connection alive nor counts as its traffic); the caller may record a
 * trace report in it (ct_report), so errors are aggregated with the connection's replies.
 */
static __always_inline struct ct_entry *ct_related(const struct packet *pkt, __u8 dir)
{
	struct ct_key key = {
		.saddr = pkt->inner_saddr,
		.daddr = pkt->inner_daddr,
		.sport = pkt->inner_sport,
		.dport = pkt->inner_dport,
		.protocol = pkt->inner_protocol,
		.flags = dir,
	};
	struct ct_entry *entry;

	if (!pkt->related)
		return NULL;
	entry = bpf_map_lookup_elem(&membrane_ct4, &key);
	return entry && entry->expires >= ct_now() ? entry : NULL;
}

static __always_inline __u32 ct_lifetime(const struct packet *pkt, __u8 entry_flags)
{
	if (pkt->protocol != IPPROTO_TCP)
		return CT_LIFETIME_NONTCP;
	if (entry_flags & CT_ENTRY_F_CLOSING)
		return CT_LIFETIME_CLOSING;
	if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		return CT_LIFETIME_SYN;
	return CT_LIFETIME_TCP;
}

/**
 * ct_lookup - find a live entry and account the packet to it
 * @key: tuple and direction to look up
 * @pkt: the packet (for TCP flags)
 * @len: packet length for the byte counter
 *
 * Returns the entry, or NULL when there is none or it has expired. A new SYN on an entry
 * that saw FIN/RST is a new connection: the stale entry is treated as absent.
 */
static __always_inline struct ct_entry *ct_lookup(struct ct_key *key, const struct packet *pkt, __u32 len)
{
	struct ct_entry *entry = bpf_map_lookup_elem(&membrane_ct4, key);
	__u32 now = ct_now();

	if (!entry)
		return NULL;
	if (entry->expires < now)
		return NULL;
	if ((entry->flags & CT_ENTRY_F_CLOSING) && pkt->protocol == IPPROTO_TCP &&
	    (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		return NULL;
	if (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		entry->flags |= CT_ENTRY_F_CLOSING;
	__sync_fetch_and_add(&entry->packets, 1);
	__sync_fetch_and_add(&entry->bytes, len);
	entry->expires = now + ct_lifetime(pkt, entry->flags);
	return entry;
}

/* The CT_SEEN_* bits of a packet's TCP flags (none for other protocols). */
static __always_inline __u8 ct_seen_bits(const struct packet *pkt)
{
	__u8 f = pkt->tcp_flags, bits = 0;

	if (pkt->protocol != IPPROTO_TCP)
		return 0;
	if (f & TCP_FLAG_SYN)
		bits |= CT_SEEN_SYN;
	if (f & TCP_FLAG_ACK)
		bits |= CT_SEEN_ACK;
	if (f & TCP_FLAG_PSH)
		bits |= CT_SEEN_PSH;
	if (f & (TCP_FLAG_URG | TCP_FLAG_ECE | TCP_FLAG_CWR))
		bits |= CT_SEEN_OTHER;
	return bits;
}

/* Seconds since boot as a report time: modulo 2^16, never 0 (which means "not yet"). */
static __always_inline __u16 ct_report_now(void)
{
	__u16 now = (__u16)ct_now();

	return now ? now : 1;
}

/**
 * ct_report - whether a packet of a tracked connection is traced (see CT_REPORT_INTERVAL)
 * @entry: the connection's entry, as ct_lookup returned it
 * @pkt: the packet
 * @reply: non-zero for a reply (rx), zero for the entry's own direction (tx)
 *
 * Returns non-zero when the packet is to be traced, and then records the report in the entry.
 * Concurrent packets of one connection may both report, as in Cilium: a duplicate trace at worst.
 */
static __always_inline int ct_report(struct ct_entry *entry, const struct packet *pkt, int reply)
{
	__u8 shift = reply ? CT_SEEN_RX_SHIFT : 0;
	__u8 seen = entry->flags_seen;
	__u8 bits = (__u8)(ct_seen_bits(pkt) << shift);
	__u16 last = reply ? entry->last_rx_report : entry->last_tx_report;
	__u16 now = ct_report_now();

	if (!(pkt->protocol == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))) &&
	    last && (__u16)(now - last) <= CT_REPORT_INTERVAL && (seen | bits) == seen)
		return 0;
	entry->flags_seen = seen | bits;
	if (reply)
		entry->last_rx_report = now;
	else
		entry->last_tx_report = now;
	return 1;
}

static __always_inline void ct_create(struct ct_key *key, const struct packet *pkt, __u32 len,
				      __u32 src_identity, __be16 proxy_port, __u8 flags)
{
	struct ct_entry entry = {
		.packets = 1,
		.bytes = len,
		.src_identity = src_identity,
		.proxy_port = proxy_port,
		.flags = flags,
		/* The first packet is traced (a new connection): its direction's first report. */
		.flags_seen = ct_seen_bits(pkt),
		.last_tx_report = ct_report_now(),
	};

	if (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		entry.flags |= CT_ENTRY_F_CLOSING;
	entry.expires = ct_now() + ct_lifetime(pkt, entry.flags);
	bpf_map_update_elem(&membrane_ct4, key, &entry, BPF_ANY);
}
