/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Drop reasons, numbered as Cilium's (and Hubble's DropReason enum) so users read the same names.
 *
 * Mirrors of this table (keep in step; a test checks the first one against this file):
 *   - src/datapath/codes.ts
 *   - src/observe drop-reason table (names printed by `membrane observe`)
 * A retired number stays behind as an UNUSED placeholder; never reuse one.
 */
#pragma once

#define DROP_INVALID_SOURCE_IP		132
#define DROP_POLICY_DENIED		133	/* no rule allows it (default deny) */
#define DROP_INVALID_PACKET		134
#define DROP_CT_INVALID_HEADER		135
#define DROP_UNKNOWN_L3			139
#define DROP_UNKNOWN_L4			142
#define DROP_UNKNOWN_TARGET		150	/* not addressed to the endpoint behind this link */
#define DROP_FRAG_NOT_SUPPORTED		157
#define DROP_PROXY_LOOKUP_FAILED	176	/* redirect wanted, but no proxy socket: fail closed */
#define DROP_PROXY_NOT_SUPPORTED	180	/* redirect wanted where the datapath cannot redirect */
#define DROP_POLICY_DENY		181	/* an explicit deny rule matched */

#define METRICS_REASON_MAX		256
