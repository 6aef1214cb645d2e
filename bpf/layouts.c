// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Never loaded. Its only job is to put every shared struct into BTF, so
 * test/unit/datapath/layout.test.ts can check the TypeScript layouts against the C ones
 * (structs used only inside inlined helpers would otherwise leave no BTF behind).
 */
#include "lib/common.h"
#include "lib/ipcache.h"
#include "lib/endpoints.h"
#include "lib/policy.h"
#include "lib/conntrack.h"
#include "lib/frag.h"
#include "lib/events.h"
#include "lib/metrics.h"

struct ipcache_key layout_ipcache_key;
struct ipcache_value layout_ipcache_value;
struct endpoint_key layout_endpoint_key;
struct endpoint_info layout_endpoint_info;
struct policy_key layout_policy_key;
struct policy_entry layout_policy_entry;
struct ct_key layout_ct_key;
struct ct_entry layout_ct_entry;
struct frag_key layout_frag_key;
struct frag_l4 layout_frag_l4;
struct flow_event layout_flow_event;
struct metrics_value layout_metrics_value;
