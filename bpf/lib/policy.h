/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy map: one longest-prefix trie for every local endpoint and both directions.
 *
 * The key's fields are matched in order: identity, endpoint, direction (56 bits, always
 * exact), then protocol (8 bits, or wildcarded), then the destination port (0..16 bits of
 * prefix, so an endPort range is a handful of entries). Identity 0 holds the L4-only entries
 * that apply to any peer.
 *
 * Match precedence (the TS twin is src/policy lookupPolicy; both follow one table of cases):
 *   1. look up the peer's exact identity; a deny there wins outright;
 *   2. look up identity 0 (any peer); it wins if it is the only match, or has higher
 *      precedence (deny > redirect > allow), or equal precedence and a longer port prefix;
 *   3. otherwise the exact-identity entry; no entry at all means the default for the
 *      direction: drop (POLICY_DENIED) when enforced, pass when not.
 * The agent adds derived entries so that this one pair of lookups always gives the answer.
 */
#pragma once

#include "common.h"
#include "drop_reasons.h"

#define POLICY_PREFIX_FIXED	56	/* identity + endpoint + direction */
#define POLICY_PREFIX_PROTO	64
#define POLICY_PREFIX_FULL	80

#define POLICY_F_DENY		0x01

struct policy_key {
	__u32	lpm_key;
	__u32	sec_identity;
	__u16	endpoint_id;
	__u8	egress;		/* 1 = egress, 0 = ingress */
	__u8	protocol;	/* IANA number; wildcarded when lpm_key < 64 */
	__be16	dport;
	__u16	reserved_0;
};

struct policy_entry {
	__be16	proxy_port;	/* non-zero: redirect to the proxy listening on this port */
	__u8	flags;		/* POLICY_F_* */
	__u8	port_prefix_len;	/* 0..16, for precedence between matches */
	__u8	deny_reason;	/* POLICY_F_DENY: the drop reason; 0 = DROP_POLICY_DENY */
	__u8	reserved_0;
	__u16	reserved_1;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_policy SEC(".maps");

#define POLICY_ACTION_ALLOW	0
#define POLICY_ACTION_REDIRECT	1
#define POLICY_ACTION_DROP	2

/* What the deciding entry matched on: Cilium's POLICY_MATCH_* (bpf/lib/policy.h), the
 * policy_match_type Hubble prints as `policy-verdict:<name>`. A port-wildcard entry is L3 (or
 * "all" when it is also peer-wildcard); one with a port (or ICMP type) is L4.
 */
#define POLICY_MATCH_NONE	0
#define POLICY_MATCH_L3_ONLY	1
#define POLICY_MATCH_L3_L4	2
#define POLICY_MATCH_L4_ONLY	3
#define POLICY_MATCH_ALL	4

struct policy_verdict {
	__u8	action;		/* POLICY_ACTION_* */
	__u8	reason;		/* drop reason when action is DROP */
	__be16	proxy_port;
	__u8	match_type;	/* POLICY_MATCH_*; NONE for the default of the direction */
};

static __always_inline int policy_precedence(const struct policy_entry *e)
{
	if (e->flags & POLICY_F_DENY)
		return 3;
	return e->proxy_port ? 2 : 1;
}

static __always_inline struct policy_entry *
__policy_lookup(void *map, __u32 identity, __u16 endpoint_id, __u8 egress, __u8 protocol, __be16 dport)
{
	struct policy_key key = {
		.lpm_key = POLICY_PREFIX_FULL,
		.sec_identity = identity,
		.endpoint_id = endpoint_id,
		.egress = egress,
		.protocol = protocol,
		.dport = dport,
	};

	return bpf_map_lookup_elem(map, &key);
}

/**
 * policy_can_access - the endpoint's verdict for one new flow
 * @endpoint_id: local endpoint whose policy applies
 * @egress: 1 for the endpoint's egress policy, 0 for its ingress policy
 * @enforced: whether default deny is in force for that direction
 * @identity: the peer's security identity
 * @protocol: IANA protocol of the flow
 * @dport: destination port, network order (the ICMP type for ICMP)
 *
 * Returns the verdict: pass, redirect to a proxy port, or drop with its reason; with the match
 * type of the entry that decided (POLICY_MATCH_NONE when none did).
 */
static __always_inline struct policy_verdict
policy_can_access(__u16 endpoint_id, __u8 egress, int enforced, __u32 identity, __u8 protocol, __be16 dport)
{
	struct policy_verdict verdict = { .action = POLICY_ACTION_ALLOW, .match_type = POLICY_MATCH_NONE };
	struct policy_entry *l3, *l4, *chosen;

	l3 = __policy_lookup(&membrane_policy, identity, endpoint_id, egress, protocol, dport);
	if (l3 && (l3->flags & POLICY_F_DENY)) {
		chosen = l3;
		goto out;
	}
	l4 = identity ? __policy_lookup(&membrane_policy, 0, endpoint_id, egress, protocol, dport) : NULL;
	chosen = l3;
	if (l4) {
		if (!l3)
			chosen = l4;
		else if (policy_precedence(l4) > policy_precedence(l3))
			chosen = l4;
		else if (policy_precedence(l4) == policy_precedence(l3) &&
			 l4->port_prefix_len > l3->port_prefix_len)
			chosen = l4;
	}
	if (!chosen) {
		if (enforced) {
			verdict.action = POLICY_ACTION_DROP;
			verdict.reason = DROP_POLICY;
		} else {
			/* Cilium's unenforced direction is an allow-all entry: it matches "all". */
			verdict.match_type = POLICY_MATCH_ALL;
		}
		return verdict;
	}
out:
	if (chosen == l3 && identity)
		verdict.match_type = chosen->port_prefix_len ? POLICY_MATCH_L3_L4 : POLICY_MATCH_L3_ONLY;
	else
		verdict.match_type = chosen->port_prefix_len ? POLICY_MATCH_L4_ONLY : POLICY_MATCH_ALL;
	if (chosen->flags & POLICY_F_DENY) {
		/* A deny rule (DROP_POLICY_DENY), or an allow that needs what Membrane cannot
		 * give, such as mutual authentication (DROP_POLICY_AUTH_REQUIRED).
		 */
		verdict.action = POLICY_ACTION_DROP;
		verdict.reason = chosen->deny_reason ? chosen->deny_reason : DROP_POLICY_DENY;
	} else if (chosen->proxy_port) {
		verdict.action = POLICY_ACTION_REDIRECT;
		verdict.proxy_port = chosen->proxy_port;
	}
	return verdict;
}
