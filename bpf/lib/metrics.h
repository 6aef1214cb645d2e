/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU counters of packets by outcome and direction, as Cilium's metrics map (bpf/lib/metrics.h,
 * key {reason, dir}): the index is dir * METRICS_REASON_MAX + reason, reason 0 forwarded, otherwise
 * the drop reason; dir is DIR_INGRESS (1) or DIR_EGRESS (2), Cilium's METRIC_INGRESS/METRIC_EGRESS.
 * A PERCPU_ARRAY, not Cilium's per-CPU hash: no insertion on the fast path, and the agent reads
 * all of it with one BPF_MAP_LOOKUP_BATCH (src/datapath readCounters).
 */
#pragma once

#include "common.h"
#include "drop_reasons.h"

#define METRIC_FORWARDED	0
#define METRICS_DIR_MAX		3	/* 0 unused, DIR_INGRESS, DIR_EGRESS */

struct metrics_value {
	__u64	packets;
	__u64	bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_REASON_MAX * METRICS_DIR_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_metrics SEC(".maps");

static __always_inline void metrics_count(__u32 reason, __u32 direction, __u32 bytes)
{
	struct metrics_value *v;
	__u32 key;

	if (reason >= METRICS_REASON_MAX || direction >= METRICS_DIR_MAX)
		return;
	key = direction * METRICS_REASON_MAX + reason;
	v = bpf_map_lookup_elem(&membrane_metrics, &key);
	if (v) {
		v->packets++;
		v->bytes += bytes;
	}
}
