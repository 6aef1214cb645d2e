/**
 * membrane_metrics (bpf/lib/metrics.h): per-CPU packet/byte counters by outcome and direction,
 * index `direction * METRICS_REASON_MAX + reason` (reason 0 forwarded, else the drop reason;
 * direction 1 ingress, 2 egress: Cilium's METRIC_INGRESS / METRIC_EGRESS).
 */
import { defineStruct } from '../layout.js';

export const METRICS_MAP = 'membrane_metrics';
export const METRICS_REASON_MAX = 256;
export const METRICS_DIR_MAX = 3;
export const METRICS_ENTRIES = METRICS_REASON_MAX * METRICS_DIR_MAX;
export const METRIC_FORWARDED = 0;

export const metricsValue = defineStruct('metrics_value', {
  packets: 'u64',
  bytes: 'u64',
});
