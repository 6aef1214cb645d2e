// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Membrane's per-endpoint programs, attached to each pod's host-side veth with TCX:
 *
 *   from_endpoint  TCX ingress  packets leaving the pod: the pod's egress policy, and for a
 *                               destination on this node its ingress policy too, because a
 *                               redirect to the proxy (bpf_sk_assign) is only possible here.
 *   to_endpoint    TCX egress   packets entering the pod: its ingress policy, with the source
 *                               identity taken from the proxy's mark when the proxy sent it.
 *
 * This file only wires the lib/ headers together. It includes every header that defines a
 * map, so the loader and the layout test read all map specs from this one object.
 */
#include "lib/common.h"
#include "lib/drop_reasons.h"
#include "lib/ipcache.h"
#include "lib/endpoints.h"
#include "lib/policy.h"
#include "lib/conntrack.h"
#include "lib/frag.h"
#include "lib/events.h"
#include "lib/metrics.h"
#include "lib/proxy.h"
#include "lib/parse.h"

static __always_inline int drop_at(struct __sk_buff *skb, const struct packet *pkt, __u8 reason, __u8 direction,
				   __u32 src_identity, __u32 dst_identity, __u16 endpoint_id, __u64 ts_ns)
{
	metrics_count(reason, direction, skb->len);
	emit_event_at(ts_ns, CILIUM_NOTIFY_DROP, VERDICT_DROPPED, reason, direction, pkt, src_identity, dst_identity,
		      endpoint_id, 0, skb->ifindex, 0, TRACE_REASON_UNKNOWN);
	return CTX_ACT_DROP;
}

static __always_inline int drop(struct __sk_buff *skb, const struct packet *pkt, __u8 reason, __u8 direction,
				__u32 src_identity, __u32 dst_identity, __u16 endpoint_id)
{
	return drop_at(skb, pkt, reason, direction, src_identity, dst_identity, endpoint_id, bpf_ktime_get_ns());
}

/* A packet the policy denies: its policy verdict (DENIED, with the match type and the drop
 * reason), then its drop, as Cilium's bpf_lxc.c does ("emit verdict if drop or if allow for
 * CT_NEW"), so `hubble observe --type policy-verdict` sees denials as well as admissions. Both
 * events carry one timestamp: they are one packet.
 */
static __always_inline int policy_drop(struct __sk_buff *skb, const struct packet *pkt,
				       const struct policy_verdict *verdict, __u8 direction,
				       __u32 src_identity, __u32 dst_identity, __u16 endpoint_id)
{
	__u64 ts_ns = bpf_ktime_get_ns();

	emit_event_at(ts_ns, CILIUM_NOTIFY_POLICY_VERDICT, VERDICT_DROPPED, verdict->reason, direction, pkt,
		      src_identity, dst_identity, endpoint_id, 0, skb->ifindex, verdict->match_type, TRACE_REASON_UNKNOWN);
	return drop_at(skb, pkt, verdict->reason, direction, src_identity, dst_identity, endpoint_id, ts_ns);
}

/* direction: DIR_EGRESS in from_endpoint, DIR_INGRESS in to_endpoint (Cilium counts a
 * forward by the program that passed it: METRIC_EGRESS from the container, METRIC_INGRESS to it).
 */
static __always_inline int forward(struct __sk_buff *skb, __u8 direction)
{
	metrics_count(METRIC_FORWARDED, direction, skb->len);
	return CTX_ACT_OK;
}

/* The port a policy entry is keyed on: the ICMP type for ICMP, else the destination port. */
static __always_inline __be16 policy_port(const struct packet *pkt)
{
	return pkt->protocol == IPPROTO_ICMP ? bpf_htons(pkt->icmp_type) : pkt->dport;
}

SEC("tc")
int from_endpoint(struct __sk_buff *skb)
{
	struct packet pkt = {};
	struct endpoint_info *src_ep, *dst_ep;
	struct policy_verdict verdict;
	struct ct_key key;
	struct ct_entry *entry, *reply;
	__u32 dst_identity;
	__be16 proxy_port = 0;
	__u8 redirect_dir = DIR_EGRESS, egress_match, redirect_match;
	int ret;

	ret = parse_packet(skb, &pkt);
	if (ret == PARSE_PASS)
		return CTX_ACT_OK;
	if (ret < 0)
		return drop(skb, &pkt, -ret, DIR_EGRESS, 0, 0, 0);

	/* A pod may only send from the address the agent gave it on this very link. */
	src_ep = lookup_endpoint(pkt.saddr);
	if (!src_ep || src_ep->ifindex != skb->ifindex)
		return drop(skb, &pkt, DROP_INVALID_SIP, DIR_EGRESS, 0, 0, 0);

	/* A fragment is judged with its datagram's ports, from here on like any other packet. */
	ret = frag_track(&pkt);
	if (ret < 0)
		return drop(skb, &pkt, -ret, DIR_EGRESS, src_ep->sec_identity, 0, src_ep->endpoint_id);

	/* A reply of a connection this endpoint accepted passes on its entry alone. Every other
	 * packet, of a new or an established connection, is judged against the policy in force
	 * now, as Cilium does: a policy change also cuts connections it no longer allows.
	 */
	ct_key_forward(&key, &pkt, CT_F_EGRESS);
	entry = ct_lookup(&key, &pkt, skb->len);
	if (!entry) {
		/* Replies and related ICMP errors are traced leaving the node; a destination on this
		 * node traces them where they arrive (to_endpoint), so a packet is traced once.
		 */
		ct_key_reverse(&key, &pkt, CT_F_INGRESS);
		reply = ct_lookup(&key, &pkt, skb->len);
		if (reply) {
			if (ct_report(reply, &pkt, 1) && !lookup_endpoint(pkt.daddr))
				emit_trace(TRACE_TO_STACK, TRACE_REASON_CT_REPLY, DIR_INGRESS, &pkt, src_ep->sec_identity,
					   ipcache_identity(pkt.daddr), src_ep->endpoint_id, 0, skb->ifindex);
			return forward(skb, DIR_EGRESS);
		}
		/* An ICMP error about a packet of a connection this endpoint accepted: traced as that
		 * connection's replies are (its entry's reply-direction report), so a stream of errors
		 * is one trace per interval, not one per packet.
		 */
		reply = ct_related(&pkt, CT_F_INGRESS);
		if (reply) {
			if (ct_report(reply, &pkt, 1) && !lookup_endpoint(pkt.daddr))
				emit_trace(TRACE_TO_STACK, TRACE_REASON_CT_RELATED, DIR_INGRESS, &pkt, src_ep->sec_identity,
					   ipcache_identity(pkt.daddr), src_ep->endpoint_id, 0, skb->ifindex);
			return forward(skb, DIR_EGRESS);
		}
	}

	dst_identity = ipcache_identity(pkt.daddr);
	verdict = policy_can_access(src_ep->endpoint_id, 1, src_ep->flags & ENDPOINT_F_EGRESS_ENFORCED,
				    dst_identity, pkt.protocol, policy_port(&pkt));
	if (verdict.action == POLICY_ACTION_DROP)
		return policy_drop(skb, &pkt, &verdict, DIR_EGRESS, src_ep->sec_identity, dst_identity,
				   src_ep->endpoint_id);
	if (verdict.action == POLICY_ACTION_REDIRECT)
		proxy_port = verdict.proxy_port;
	egress_match = verdict.match_type;
	redirect_match = egress_match;

	/* Same-node destination: its ingress policy must be judged here, where a redirect is
	 * still possible; to_endpoint judges it again for packets that come from elsewhere.
	 */
	dst_ep = lookup_endpoint(pkt.daddr);
	if (dst_ep) {
		verdict = policy_can_access(dst_ep->endpoint_id, 0, dst_ep->flags & ENDPOINT_F_INGRESS_ENFORCED,
					    src_ep->sec_identity, pkt.protocol, policy_port(&pkt));
		if (verdict.action == POLICY_ACTION_DROP)
			return policy_drop(skb, &pkt, &verdict, DIR_INGRESS, src_ep->sec_identity, dst_identity,
					   dst_ep->endpoint_id);
		if (verdict.action == POLICY_ACTION_REDIRECT && !proxy_port) {
			proxy_port = verdict.proxy_port;
			redirect_dir = DIR_INGRESS;
			redirect_match = verdict.match_type;
		}
	}

	if (entry) {
		/* Established: the connection stays where it began. One that went to the proxy
		 * keeps going there; one that did not cannot move into it mid-stream.
		 */
		if (!(entry->flags & CT_ENTRY_F_PROXY)) {
			if (!dst_ep && ct_report(entry, &pkt, 0))
				emit_trace(TRACE_TO_STACK, TRACE_REASON_CT_ESTABLISHED, DIR_EGRESS, &pkt, src_ep->sec_identity,
					   dst_identity, src_ep->endpoint_id, 0, skb->ifindex);
			return forward(skb, DIR_EGRESS);
		}
		if (pkt.frag != FRAG_NONE)
			return drop(skb, &pkt, DROP_FRAG_NOSUPPORT, DIR_EGRESS, src_ep->sec_identity, dst_identity,
				    src_ep->endpoint_id);
		ret = proxy_redirect(skb, &pkt, entry->proxy_port);
		if (ret < 0)
			return drop(skb, &pkt, -ret, DIR_EGRESS, src_ep->sec_identity, dst_identity, src_ep->endpoint_id);
		if (ct_report(entry, &pkt, 0))
			emit_trace(TRACE_TO_PROXY, TRACE_REASON_CT_ESTABLISHED, redirect_dir, &pkt, src_ep->sec_identity,
				   dst_identity, src_ep->endpoint_id, entry->proxy_port, skb->ifindex);
		return forward(skb, DIR_EGRESS);
	}

	if (proxy_port) {
		if (pkt.frag != FRAG_NONE)
			return drop(skb, &pkt, DROP_FRAG_NOSUPPORT, redirect_dir, src_ep->sec_identity, dst_identity,
				    src_ep->endpoint_id);
		ret = proxy_redirect(skb, &pkt, proxy_port);
		if (ret < 0)
			return drop(skb, &pkt, -ret, redirect_dir, src_ep->sec_identity, dst_identity,
				    src_ep->endpoint_id);
		ct_key_forward(&key, &pkt, CT_F_EGRESS);
		ct_create(&key, &pkt, skb->len, src_ep->sec_identity, proxy_port, CT_ENTRY_F_PROXY);
		/* Redirected for the destination's ingress: the source's own egress policy allowed
		 * it first, and logs that, as Cilium's egress program does before the ingress one.
		 */
		if (redirect_dir == DIR_INGRESS && (src_ep->flags & ENDPOINT_F_EGRESS_ENFORCED))
			emit_event(CILIUM_NOTIFY_POLICY_VERDICT, VERDICT_FORWARDED, 0, DIR_EGRESS, &pkt, src_ep->sec_identity,
				   dst_identity, src_ep->endpoint_id, 0, skb->ifindex, egress_match);
		/* The redirect's own verdict where that direction's policy is enforced (a redirect
		 * without it is visibility only, the annotation), then the trace into the proxy.
		 */
		if (redirect_dir == DIR_INGRESS ? (dst_ep && (dst_ep->flags & ENDPOINT_F_INGRESS_ENFORCED))
						: (src_ep->flags & ENDPOINT_F_EGRESS_ENFORCED))
			emit_event(CILIUM_NOTIFY_POLICY_VERDICT, VERDICT_REDIRECTED, 0, redirect_dir, &pkt,
				   src_ep->sec_identity, dst_identity, src_ep->endpoint_id, proxy_port, skb->ifindex,
				   redirect_match);
		emit_trace(TRACE_TO_PROXY, TRACE_REASON_POLICY, redirect_dir, &pkt, src_ep->sec_identity, dst_identity,
			   src_ep->endpoint_id, proxy_port, skb->ifindex);
		return forward(skb, DIR_EGRESS);
	}

	ct_key_forward(&key, &pkt, CT_F_EGRESS);
	ct_create(&key, &pkt, skb->len, src_ep->sec_identity, 0, 0);
	/* The egress verdict where egress policy is enforced; then, for a destination off this
	 * node, the trace as it goes to the stack (a local destination's hook, to_endpoint,
	 * traces its own delivery).
	 */
	if (src_ep->flags & ENDPOINT_F_EGRESS_ENFORCED)
		emit_event(CILIUM_NOTIFY_POLICY_VERDICT, VERDICT_FORWARDED, 0, DIR_EGRESS, &pkt, src_ep->sec_identity,
			   dst_identity, src_ep->endpoint_id, 0, skb->ifindex, egress_match);
	if (!dst_ep)
		emit_trace(TRACE_TO_STACK, TRACE_REASON_POLICY, DIR_EGRESS, &pkt, src_ep->sec_identity, dst_identity,
			   src_ep->endpoint_id, 0, skb->ifindex);
	return forward(skb, DIR_EGRESS);
}

SEC("tc")
int to_endpoint(struct __sk_buff *skb)
{
	struct packet pkt = {};
	struct endpoint_info *dst_ep;
	struct policy_verdict verdict;
	struct ct_key key;
	struct ct_entry *entry, *reply;
	__u32 src_identity, mark = skb->mark;
	__u8 entry_flags = 0;
	int ret;

	ret = parse_packet(skb, &pkt);
	if (ret == PARSE_PASS)
		return CTX_ACT_OK;
	if (ret < 0)
		return drop(skb, &pkt, -ret, DIR_INGRESS, 0, 0, 0);

	dst_ep = lookup_endpoint(pkt.daddr);
	if (!dst_ep || dst_ep->ifindex != skb->ifindex)
		return drop(skb, &pkt, DROP_UNKNOWN_TARGET, DIR_INGRESS, 0, 0, 0);

	ret = frag_track(&pkt);
	if (ret < 0)
		return drop(skb, &pkt, -ret, DIR_INGRESS, 0, dst_ep->sec_identity, dst_ep->endpoint_id);

	ct_key_forward(&key, &pkt, CT_F_INGRESS);
	entry = ct_lookup(&key, &pkt, skb->len);
	if (!entry) {
		/* A reply of a connection this endpoint opened (or that the proxy answers for). */
		ct_key_reverse(&key, &pkt, CT_F_EGRESS);
		reply = ct_lookup(&key, &pkt, skb->len);
		if (reply) {
			if (ct_report(reply, &pkt, 1))
				emit_trace(TRACE_TO_LXC, TRACE_REASON_CT_REPLY, DIR_EGRESS, &pkt, ipcache_identity(pkt.saddr),
					   dst_ep->sec_identity, dst_ep->endpoint_id, 0, skb->ifindex);
			return forward(skb, DIR_INGRESS);
		}
		/* An ICMP error about a packet this endpoint sent on one of its connections: aggregated
		 * with the connection's replies, so a remote host's flood of errors cannot fill the
		 * event ring (and push out drop events) one trace per packet.
		 */
		reply = ct_related(&pkt, CT_F_EGRESS);
		if (reply) {
			if (ct_report(reply, &pkt, 1))
				emit_trace(TRACE_TO_LXC, TRACE_REASON_CT_RELATED, DIR_EGRESS, &pkt, ipcache_identity(pkt.saddr),
					   dst_ep->sec_identity, dst_ep->endpoint_id, 0, skb->ifindex);
			return forward(skb, DIR_INGRESS);
		}
	}

	if (entry && (entry->flags & CT_ENTRY_F_FROM_PROXY)) {
		/* Established through the proxy: the node's address says nothing about the pod, so the
		 * identity the connection was admitted with is the one to judge again.
		 */
		src_identity = entry->src_identity;
		entry_flags = CT_ENTRY_F_FROM_PROXY;
	} else if ((mark & MARK_MAGIC_MASK) == MARK_FROM_PROXY) {
		src_identity = mark_identity(mark);
		entry_flags = CT_ENTRY_F_FROM_PROXY;
	} else {
		src_identity = ipcache_identity(pkt.saddr);
	}

	verdict = policy_can_access(dst_ep->endpoint_id, 0, dst_ep->flags & ENDPOINT_F_INGRESS_ENFORCED,
				    src_identity, pkt.protocol, policy_port(&pkt));
	if (verdict.action == POLICY_ACTION_DROP)
		return policy_drop(skb, &pkt, &verdict, DIR_INGRESS, src_identity, dst_ep->sec_identity,
				   dst_ep->endpoint_id);
	/* L7 policy applies but the flow did not come through the proxy: it cannot be
	 * redirected at this hook, so it must not pass unexamined.
	 */
	if (verdict.action == POLICY_ACTION_REDIRECT && !(entry_flags & CT_ENTRY_F_FROM_PROXY))
		return drop(skb, &pkt, DROP_PROXY_UNKNOWN_PROTO, DIR_INGRESS, src_identity, dst_ep->sec_identity,
			    dst_ep->endpoint_id);

	if (entry) {
		if (ct_report(entry, &pkt, 0))
			emit_trace(TRACE_TO_LXC, TRACE_REASON_CT_ESTABLISHED, DIR_INGRESS, &pkt, src_identity,
				   dst_ep->sec_identity, dst_ep->endpoint_id, 0, skb->ifindex);
		return forward(skb, DIR_INGRESS);
	}
	ct_key_forward(&key, &pkt, CT_F_INGRESS);
	ct_create(&key, &pkt, skb->len, src_identity, 0, entry_flags);
	if (dst_ep->flags & ENDPOINT_F_INGRESS_ENFORCED)
		emit_event(CILIUM_NOTIFY_POLICY_VERDICT, VERDICT_FORWARDED, 0, DIR_INGRESS, &pkt, src_identity,
			   dst_ep->sec_identity, dst_ep->endpoint_id, 0, skb->ifindex, verdict.match_type);
	emit_trace(TRACE_TO_LXC, TRACE_REASON_POLICY, DIR_INGRESS, &pkt, src_identity, dst_ep->sec_identity,
		   dst_ep->endpoint_id, 0, skb->ifindex);
	return forward(skb, DIR_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
