/**
 * src/metrics: the agent's Prometheus endpoint (`--prometheus-serve-addr`), Cilium's and Hubble's
 * metric names and labels.
 *
 *   datapath membrane_metrics ──one batch read per scrape──► cilium_drop_* / cilium_forward_*
 *   FlowRing.push ──onPush──► countFlow ──► hubble_* , cilium_policy_l7_total, upstream reply times
 *   proxy worker: countFlow (its own FlowMetrics) ──deltas with each batch──► mergeFlowMetricsDelta
 *   agent state (endpoints, identities, policies, FQDN cache, proxies) ──at scrape──► gauges
 *   MetricsServer GET /metrics ──► MembraneMetrics.scrape()
 */
export { MembraneMetrics, MAP_PRESSURE_INTERVAL_MS, PROCESS_METRICS_INTERVAL_MS, type MetricsSources, type OtlpCounters, type ProxyGauges } from './registry.js';
export { MetricsServer, parseServeAddr, DEFAULT_PROMETHEUS_PORT, type ServeAddr, type MetricsEndpoint } from './server.js';
export { FlowCounter, createFlowMetrics, takeFlowMetricsDelta, mergeFlowMetricsDelta, type FlowMetrics, type FlowMetricsDelta } from './flows.js';
export { FastCounter, FastHistogram, MAX_SERIES_PER_METRIC, DEFAULT_BUCKETS, OTHER, type CounterDelta, type HistogramDelta } from './fast.js';
