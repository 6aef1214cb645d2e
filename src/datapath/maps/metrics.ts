/** membrane_metrics (bpf/lib/metrics.h): per-CPU packet/byte counters by outcome. */
import { defineStruct } from '../layout.js';

export const METRICS_MAP = 'membrane_metrics';
export const METRICS_SLOTS = 256;
export const METRIC_FORWARDED = 0;

export const metricsValue = defineStruct('metrics_value', {
  packets: 'u64',
  bytes: 'u64',
});
