/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow events for `membrane observe`: drops; the policy verdict of each new connection in a
 * direction where policy is enforced (Cilium logs verdicts only there: GetPolicyVerdictLogFilter)
 * and of each packet policy denies (bpf/lib/policy_log.h send_policy_verdict_notify); and traces
 * where a packet is delivered, sent to the stack or into a proxy (Cilium's send_trace_notify under
 * its default monitor aggregation, medium: the first packet of each direction of a connection,
 * each new TCP flag, each FIN or RST, and otherwise one per direction per report interval; see
 * ct_report in conntrack.h), each with its conntrack state as Cilium's trace reason. */
#pragma once

#include "common.h"

/* Monitor message types, Cilium's (bpf/lib/notify.h, MessageType* in pkg/monitor/api), so a
 * flow's event_type.type is the number Hubble shows. Checked against src/codes by a unit test.
 */
#define CILIUM_NOTIFY_DROP		1
#define CILIUM_NOTIFY_TRACE		4
#define CILIUM_NOTIFY_POLICY_VERDICT	5

/* Trace observation points, Cilium's (bpf/lib/trace.h, pkg/monitor/api TraceTo*): a trace
 * event's sub-type, carried in `reason`. Checked against src/observe's table by a unit test. */
#define TRACE_TO_LXC		0
#define TRACE_TO_PROXY		1
#define TRACE_TO_STACK		3

/* Trace reasons, Cilium's (bpf/lib/trace.h enum trace_reason, pkg/monitor TraceReason*): the
 * conntrack state of a traced packet, in a trace event's `trace_reason`. Hubble derives is_reply
 * (CT_REPLY) and flow.proto's TraceReason from it. Checked against src/codes by a unit test.
 * TRACE_REASON_UNKNOWN fills the field of the events that are not traces. */
#define TRACE_REASON_POLICY		0
#define TRACE_REASON_CT_ESTABLISHED	1
#define TRACE_REASON_CT_REPLY		2
#define TRACE_REASON_CT_RELATED		3
#define TRACE_REASON_UNKNOWN		5

/* Hubble's Verdict numbers (flow.proto), checked against src/codes likewise. */
#define VERDICT_FORWARDED	1
#define VERDICT_DROPPED		2
#define VERDICT_REDIRECTED	5

struct flow_event {
	__u64	ts_ns;		/* bpf_ktime_get_ns(): time since boot */
	__be32	saddr;
	__be32	daddr;
	__be16	sport;
	__be16	dport;
	__u32	src_identity;
	__u32	dst_identity;
	__u32	ifindex;
	__u16	endpoint_id;	/* the endpoint whose policy decided */
	__be16	proxy_port;
	__u8	type;		/* CILIUM_NOTIFY_* */
	__u8	verdict;	/* VERDICT_* */
	__u8	reason;		/* drop reason, or a trace's TRACE_* observation point; 0 if none */
	__u8	direction;	/* DIR_* of the policy that decided */
	__u8	protocol;
	__u8	tcp_flags;
	__u8	icmp_type;
	__u8	match_type;	/* POLICY_MATCH_* of a policy verdict, 0 otherwise */
	__u8	trace_reason;	/* TRACE_REASON_* of a trace, TRACE_REASON_UNKNOWN otherwise */
	__u8	reserved_1;
	__u16	reserved_2;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_events SEC(".maps");

/* ts_ns: the packet's time; the events of one packet (a denial's verdict and its drop) share it. */
static __always_inline void emit_event_at(__u64 ts_ns, __u8 type, __u8 verdict, __u8 reason, __u8 direction,
					  const struct packet *pkt, __u32 src_identity, __u32 dst_identity,
					  __u16 endpoint_id, __be16 proxy_port, __u32 ifindex, __u8 match_type,
					  __u8 trace_reason)
{
	struct flow_event *ev = bpf_ringbuf_reserve(&membrane_events, sizeof(*ev), 0);

	/* A full ring loses the event, never the packet's verdict. */
	if (!ev)
		return;
	ev->ts_ns = ts_ns;
	ev->saddr = pkt->saddr;
	ev->daddr = pkt->daddr;
	ev->sport = pkt->sport;
	ev->dport = pkt->dport;
	ev->src_identity = src_identity;
	ev->dst_identity = dst_identity;
	ev->ifindex = ifindex;
	ev->endpoint_id = endpoint_id;
	ev->proxy_port = proxy_port;
	ev->type = type;
	ev->verdict = verdict;
	ev->reason = reason;
	ev->direction = direction;
	ev->protocol = pkt->protocol;
	ev->tcp_flags = pkt->tcp_flags;
	ev->icmp_type = pkt->icmp_type;
	ev->match_type = match_type;
	ev->trace_reason = trace_reason;
	ev->reserved_1 = 0;
	ev->reserved_2 = 0;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void emit_event(__u8 type, __u8 verdict, __u8 reason, __u8 direction,
				       const struct packet *pkt, __u32 src_identity, __u32 dst_identity,
				       __u16 endpoint_id, __be16 proxy_port, __u32 ifindex, __u8 match_type)
{
	emit_event_at(bpf_ktime_get_ns(), type, verdict, reason, direction, pkt, src_identity, dst_identity,
		      endpoint_id, proxy_port, ifindex, match_type, TRACE_REASON_UNKNOWN);
}

/**
 * emit_trace - a trace event: the packet passed observation point @obs_point (TRACE_TO_*)
 * @trace_reason: TRACE_REASON_* of the packet's conntrack state
 * @direction: DIR_* of the connection's entry (a reply's is that of the connection it answers)
 * Other arguments as emit_event_at's.
 */
static __always_inline void emit_trace(__u8 obs_point, __u8 trace_reason, __u8 direction, const struct packet *pkt,
				       __u32 src_identity, __u32 dst_identity, __u16 endpoint_id, __be16 proxy_port,
				       __u32 ifindex)
{
	emit_event_at(bpf_ktime_get_ns(), CILIUM_NOTIFY_TRACE, VERDICT_FORWARDED, obs_point, direction, pkt,
		      src_identity, dst_identity, endpoint_id, proxy_port, ifindex, 0, trace_reason);
}
