/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Drop reasons Membrane's programs report, with Cilium's macro names and numbers (Cilium's
 * bpf/lib/drop_reasons.h, which defines them negated). Users read them by Hubble's names.
 *
 * The one table is src/codes/drop-reasons.ts (number, C name, Hubble DropReason name, the text
 * `hubble observe` prints); test/unit/codes checks every define here against it by name and
 * number. Add a reason there first, then define it here with the same name and number; never
 * reuse a number.
 */
#pragma once

#define DROP_INVALID_SIP		132	/* the source address is not the endpoint's */
#define DROP_POLICY			133	/* no rule allows it (default deny): POLICY_DENIED */
#define DROP_INVALID			134
#define DROP_CT_INVALID_HDR		135
#define DROP_UNKNOWN_L3			139
#define DROP_UNKNOWN_L4			142
#define DROP_UNKNOWN_TARGET		150	/* not addressed to the endpoint behind this link */
#define DROP_FRAG_NOSUPPORT		157	/* a fragment of a flow redirected to a proxy (lib/frag.h) */
#define DROP_FRAG_NOT_FOUND		175	/* a later fragment whose first was not seen (lib/frag.h) */
#define DROP_PROXY_LOOKUP_FAILED	178	/* redirect wanted, but no proxy socket: fail closed */
#define DROP_PROXY_SET_FAILED		179	/* the proxy socket was found but bpf_sk_assign failed */
#define DROP_PROXY_UNKNOWN_PROTO	180	/* redirect wanted where the datapath cannot redirect */
#define DROP_POLICY_DENY		181	/* an explicit deny rule matched */
#define DROP_POLICY_AUTH_REQUIRED	189	/* the rule needs mutual authentication, which Membrane lacks */

#define METRICS_REASON_MAX		256
