/**
 * Flow → metrics. Flows born on the agent's thread (datapath events, in-process proxies) are counted
 * as they are pushed to its FlowRing (`FlowRing.onPush`); a proxy worker counts its own flows as it
 * emits them, into a FlowMetrics of its own, and sends what changed with each flow batch
 * (`takeFlowMetricsDelta`), which the agent adds to its own (`mergeFlowMetricsDelta`): the agent
 * never parses a worker's flows to count them (issue 11). Both count with the same `countFlow`. Pure
 * label derivation from the flow, as Hubble's metric handlers do it:
 *
 *   hubble_flows_processed_total{type,subtype,verdict}   pkg/hubble/metrics/flow/handler.go
 *   hubble_drop_total{reason,protocol}                    pkg/hubble/metrics/drop/handler.go
 *   hubble_policy_verdicts_total{direction,match,action}  pkg/hubble/metrics/policy/handler.go
 *   hubble_dns_queries_total / hubble_dns_responses_total{rcode,qtypes,ips_returned},
 *   hubble_dns_response_types_total{type,qtypes}          pkg/hubble/metrics/dns/handler.go
 *   hubble_http_requests_total{method,protocol,status,reporter},
 *   hubble_http_request_duration_seconds{method,reporter} pkg/hubble/metrics/http/handler.go (httpV2)
 *
 * and Cilium's proxy counters, which Cilium keeps in the proxy rather than from flows:
 *
 *   cilium_policy_l7_total{rule,proxy_type}               pkg/proxy/logger (received / forwarded / denied / parse_errors)
 *   cilium_proxy_upstream_reply_seconds{error,protocol_l7,scope="upstreamTime"}
 */
import { dnsRcodeName, POLICY_MATCH_TYPE_NAMES, TRACE_OBSERVATION_POINTS, type Flow } from '../observe/index.js';
import { EVENT_TYPE } from '../codes/index.js';
import type { Registry } from 'prom-client';
import { FastCounter, FastHistogram, OTHER, type CounterDelta, type HistogramDelta } from './fast.js';

/** The metric handles flow counting writes to (created in registry.ts). */
export interface FlowMetrics {
  /** {type, subtype, verdict} */
  readonly flowsProcessed: FastCounter;
  /** {reason, protocol} */
  readonly hubbleDrops: FastCounter;
  /** {direction, match, action} */
  readonly policyVerdicts: FastCounter;
  /** {rcode, qtypes, ips_returned} */
  readonly dnsQueries: FastCounter;
  readonly dnsResponses: FastCounter;
  /** {type, qtypes} */
  readonly dnsResponseTypes: FastCounter;
  /** {method, protocol, status, reporter} */
  readonly httpRequests: FastCounter;
  /** {method, reporter} */
  readonly httpDuration: FastHistogram;
  /** {rule, proxy_type} */
  readonly policyL7: FastCounter;
  /** {error, protocol_l7, scope} */
  readonly upstreamReply: FastHistogram;
}

const COUNTERS = ['flowsProcessed', 'hubbleDrops', 'policyVerdicts', 'dnsQueries', 'dnsResponses', 'dnsResponseTypes', 'httpRequests', 'policyL7'] as const;
const HISTOGRAMS = ['httpDuration', 'upstreamReply'] as const;

/**
 * The flow metrics, registered in `registry` under Hubble's and Cilium's names; `registry` null:
 * unregistered, for a proxy worker that only sends deltas (nothing is registered or scraped in the worker).
 */
export function createFlowMetrics(registry: Registry | null): FlowMetrics {
  const counter = (name: string, help: string, labelNames: readonly string[]): FastCounter => new FastCounter(registry, name, help, labelNames);
  return {
    flowsProcessed: counter('hubble_flows_processed_total', 'Total number of flows processed', ['type', 'subtype', 'verdict']),
    hubbleDrops: counter('hubble_drop_total', 'Number of drops', ['reason', 'protocol']),
    policyVerdicts: counter('hubble_policy_verdicts_total', 'Total number of Cilium network policy verdicts', ['direction', 'match', 'action']),
    dnsQueries: counter('hubble_dns_queries_total', 'Number of DNS queries observed', ['rcode', 'qtypes', 'ips_returned']),
    dnsResponses: counter('hubble_dns_responses_total', 'Number of DNS responses observed', ['rcode', 'qtypes', 'ips_returned']),
    dnsResponseTypes: counter('hubble_dns_response_types_total', 'Number of DNS response types', ['type', 'qtypes']),
    httpRequests: counter('hubble_http_requests_total', 'Count of HTTP requests', ['method', 'protocol', 'status', 'reporter']),
    httpDuration: new FastHistogram(registry, 'hubble_http_request_duration_seconds', 'Histogram of HTTP request duration in seconds', ['method', 'reporter']),
    policyL7: counter('cilium_policy_l7_total', 'Number of total L7 requests/responses', ['rule', 'proxy_type']),
    upstreamReply: new FastHistogram(registry, 'cilium_proxy_upstream_reply_seconds', 'Seconds waited for upstream server to reply to a request', ['error', 'protocol_l7', 'scope']),
  };
}

/**
 * What a worker counted since its last batch, per metric (only metrics and series that changed).
 * Plain arrays and strings: structured-cloned with the batch. Bounded by the series bound.
 */
export type FlowMetricsDelta = { readonly [K in (typeof COUNTERS)[number]]?: CounterDelta } & { readonly [K in (typeof HISTOGRAMS)[number]]?: HistogramDelta };

/** Takes (and restarts at zero) what `m` counted since the last take; null when nothing was. */
export function takeFlowMetricsDelta(m: FlowMetrics): FlowMetricsDelta | null {
  const out: Record<string, CounterDelta | HistogramDelta> = {};
  let any = false;
  for (const k of COUNTERS) {
    const d = m[k].takeDelta();
    if (d) {
      out[k] = d;
      any = true;
    }
  }
  for (const k of HISTOGRAMS) {
    const d = m[k].takeDelta();
    if (d) {
      out[k] = d;
      any = true;
    }
  }
  return any ? (out as FlowMetricsDelta) : null;
}

/** Adds a worker's delta to `m` (the agent's), within each metric's series bound (`_OTHER` past it). */
export function mergeFlowMetricsDelta(m: FlowMetrics, delta: FlowMetricsDelta): void {
  for (const k of COUNTERS) {
    const d = delta[k];
    if (d) m[k].merge(d);
  }
  for (const k of HISTOGRAMS) {
    const d = delta[k];
    if (d) m[k].merge(d);
  }
}


function l7Protocol(flow: Flow): 'DNS' | 'HTTP' | '' {
  if (flow.l7?.dns) return 'DNS';
  if (flow.l7?.http) return 'HTTP';
  return '';
}

/** Hubble `v1.FlowProtocol`: the L7 protocol, else the L4 one. */
function flowProtocol(flow: Flow): string {
  const l7 = l7Protocol(flow);
  if (l7) return l7;
  const l4 = flow.l4;
  if (!l4) return 'Unknown flow';
  if ('TCP' in l4) return 'TCP';
  if ('UDP' in l4) return 'UDP';
  if ('SCTP' in l4) return 'SCTP';
  if ('ICMPv4' in l4) return 'ICMPv4';
  return 'ICMPv6';
}

/** Hubble's flow handler: (type, subtype) of the event. */
function typeAndSubtype(flow: Flow): [string, string] {
  switch (flow.event_type.type) {
    case EVENT_TYPE.ACCESS_LOG:
      return ['L7', l7Protocol(flow) || ''];
    case EVENT_TYPE.DROP:
      return ['Drop', ''];
    case EVENT_TYPE.CAPTURE:
      return ['Capture', ''];
    case EVENT_TYPE.TRACE:
      return ['Trace', (TRACE_OBSERVATION_POINTS as Readonly<Record<number, string>>)[flow.event_type.sub_type ?? 0] ?? ''];
    case EVENT_TYPE.POLICY_VERDICT:
      return ['PolicyVerdict', ''];
    default:
      return ['Unknown', String(flow.event_type.type)];
  }
}


/** HTTP methods as the semantic conventions bound them: the known ones, anything else `_OTHER`. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

const RESERVED_HOST_IDENTITY = 1;
/** Bound on connections whose denied request still awaits its local-reply response flow. */
const MAX_PENDING_LOCAL_REPLIES = 4096;

/** The client's address and port: the source of a request, the destination of its reply. */
function clientKey(flow: Flow): string {
  const tcp = flow.l4 && 'TCP' in flow.l4 ? flow.l4.TCP : undefined;
  return flow.is_reply ? `${flow.IP?.destination ?? ''}:${tcp?.destination_port ?? 0}` : `${flow.IP?.source ?? ''}:${tcp?.source_port ?? 0}`;
}

/**
 * Counts flows into `m`. Cheap: a handful of label lookups per flow. Keeps one bounded set: the
 * connections whose last request the proxy denied, so the 403 it answered itself is not taken
 * for an upstream reply time (the response flow of a local reply is FORWARDED like any other).
 */
export class FlowCounter {
  readonly #m: FlowMetrics;
  readonly #localReplies = new Set<string>();

  constructor(metrics: FlowMetrics) {
    this.#m = metrics;
  }

  count(flow: Flow): void {
    const l7 = flow.l7;
    let localReply = false;
    if (l7?.http) {
      if (l7.type === 'REQUEST' && flow.verdict !== 'FORWARDED') {
        if (this.#localReplies.size >= MAX_PENDING_LOCAL_REPLIES) this.#localReplies.clear();
        this.#localReplies.add(clientKey(flow));
      } else if (l7.type === 'RESPONSE') {
        localReply = this.#localReplies.delete(clientKey(flow));
      }
    }
    countFlow(this.#m, flow, localReply);
  }
}

/** Counts one flow; `localReply`: an HTTP response the proxy answered itself (no upstream time). */
function countFlow(m: FlowMetrics, flow: Flow, localReply: boolean): void {
  const [type, subtype] = typeAndSubtype(flow);
  const verdict = flow.verdict;
  m.flowsProcessed.labels(type, subtype, verdict).inc();

  if (verdict === 'DROPPED') {
    // As Hubble: the flow's DropReason enum name; an L7 denial carries none (DROP_REASON_UNKNOWN, enum 0).
    m.hubbleDrops.labels(flow.drop_reason_desc ?? 'DROP_REASON_UNKNOWN', flowProtocol(flow)).inc();
  }

  const direction = flow.traffic_direction.toLowerCase();
  const action = verdict.toLowerCase();
  if (flow.event_type.type === EVENT_TYPE.POLICY_VERDICT) {
    // Hubble ignores verdicts of the host's own connections: the host may reach every local endpoint.
    if (flow.source.identity !== RESERVED_HOST_IDENTITY) {
      m.policyVerdicts.labels(direction, (POLICY_MATCH_TYPE_NAMES[flow.policy_match_type ?? 0] ?? 'none').toLowerCase(), action).inc();
    }
    return;
  }
  if (flow.event_type.type !== EVENT_TYPE.ACCESS_LOG || !flow.l7) return;

  const l7 = flow.l7;
  const proto = l7Protocol(flow).toLowerCase();
  if (proto) m.policyVerdicts.labels(direction, `l7/${proto}`, action).inc();

  if (l7.type === 'REQUEST') {
    m.policyL7.labels('received', proto).inc();
    const rule = verdict === 'FORWARDED' ? 'forwarded' : verdict === 'DROPPED' ? 'denied' : 'parse_errors';
    m.policyL7.labels(rule, proto).inc();
  }

  if (l7.dns) {
    const qtypes = (l7.dns.qtypes ?? []).join(',');
    if (l7.type === 'REQUEST') {
      m.dnsQueries.labels('', qtypes, '').inc();
    } else if (l7.type === 'RESPONSE') {
      m.dnsResponses.labels(dnsRcodeName(l7.dns.rcode ?? 0), qtypes, String(l7.dns.ips?.length ?? 0)).inc();
      for (const rr of l7.dns.rrtypes ?? []) m.dnsResponseTypes.labels(rr, qtypes).inc();
    }
    return;
  }

  if (l7.http && l7.type === 'RESPONSE') {
    // httpV2: requests are counted from the response, which carries the status and latency.
    const reporter = flow.traffic_direction === 'EGRESS' ? 'client' : flow.traffic_direction === 'INGRESS' ? 'server' : 'unknown';
    const method = KNOWN_METHODS.has(l7.http.method) ? l7.http.method : OTHER;
    m.httpRequests.labels(method, l7.http.protocol, String(l7.http.code ?? 0), reporter).inc();
    if (l7.latency_ns !== undefined) {
      const seconds = l7.latency_ns / 1e9;
      m.httpDuration.labels(method, reporter).observe(seconds);
      // A local reply (403, 400) never went upstream; only an upstream answer has a reply time.
      if (verdict === 'FORWARDED' && !localReply) {
        m.upstreamReply.labels('allow', 'http', 'upstreamTime').observe(seconds);
      }
    }
  }
}
