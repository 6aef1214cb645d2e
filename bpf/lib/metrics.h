/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU counters of packets by outcome: index 0 forwarded, otherwise the drop reason. */
#pragma once

#include "common.h"
#include "drop_reasons.h"

struct metrics_value {
	__u64	packets;
	__u64	bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_REASON_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_metrics SEC(".maps");

#define METRIC_FORWARDED	0

static __always_inline void metrics_count(__u32 reason, __u32 bytes)
{
	struct metrics_value *v;

	if (reason >= METRICS_REASON_MAX)
		return;
	v = bpf_map_lookup_elem(&membrane_metrics, &reason);
	if (v) {
		v->packets++;
		v->bytes += bytes;
	}
}
