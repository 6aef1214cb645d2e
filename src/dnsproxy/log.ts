/**
 * Stage 5, log: what one DNS exchange leaves behind — Hubble flows (`dns-request proxy` FORWARDED
 * or DROPPED; `dns-response proxy` FORWARDED for a relayed answer, ERROR for a SERVFAIL of ours;
 * a denied query has no response flow, as in Cilium, where only the request is logged) and one
 * JSON access-log line.
 */

import { dnsRequestFlow, dnsResponseFlow, type Flow, type FlowEndpoint, type FlowPolicy, type TraceContext } from '../observe/index.js';
import type { AnswerDetails } from './answer.js';
import type { DnsDecision } from './policy.js';
import type { DnsSource, DnsTransport, HostPort } from './types.js';
import { rcodeMnemonic, typeName } from './wire.js';

export type DnsAccessVerdict = 'Forwarded' | 'Denied' | 'Error';

/** Everything known about one query, filled in as the pipeline runs. */
export interface DnsExchange {
  protocol: DnsTransport;
  client: HostPort;
  /** The original destination: the server the client asked. */
  server: HostPort;
  source: DnsSource;
  destination: FlowEndpoint;
  id: number;
  /** The question's name, lower-case, trailing dot (escaped bytes as `\DDD`). */
  qname: string;
  qtype: number;
  decision: DnsDecision;
  startedAt: Date;
  startNs: bigint;
  verdict?: DnsAccessVerdict;
  /** The RCODE the client got. */
  rcode?: number;
  answer?: AnswerDetails;
  /** Time the answer was held waiting for `onAnswer` (the learned IPs reaching the datapath). */
  releaseDelayNs?: bigint;
  reason?: string;
  /** The query's trace (set by dnsproxy/trace.ts when tracing): the flows' `trace_context`, the access log's `trace_id`. */
  traceContext?: TraceContext;
  /** The decision's policies as the flows name them (null: none), once both flows' inputs asked. */
  flowPolicies?: FlowPolicy[] | null;
  /** `startedAt` in ISO 8601, formatted once for the request flow and the access log. */
  startedIso?: string;
}

function startedIso(x: DnsExchange): string {
  return (x.startedIso ??= x.startedAt.toISOString());
}

export interface DnsFlowSite {
  nodeName: string;
  proxyPort?: number;
}

/** The decision's policies as flows name them, once per exchange (both flows share the array). */
function flowPolicies(x: DnsExchange): FlowPolicy[] | undefined {
  if (x.flowPolicies !== undefined) return x.flowPolicies ?? undefined;
  const ps = x.decision.policies;
  if (ps.length === 0) {
    x.flowPolicies = null;
    return undefined;
  }
  const out = ps.map((p) => {
    const i = p.indexOf('/');
    return i < 0 ? { name: p } : { name: p.slice(i + 1), namespace: p.slice(0, i) };
  });
  x.flowPolicies = out;
  return out;
}

// The builders take an absent optional field as undefined (proxyPort, traceContext, policies).
type RequestInput = Parameters<typeof dnsRequestFlow>[0];
type ResponseInput = Parameters<typeof dnsResponseFlow>[0];

// The builders' inputs are written out field by field, each time in the same order (one object
// shape, no spread copies): the two flows are built for every query. `verdict` and `qtypes`:
// those of a query refused before policy (refusal.ts); by default the decision's and the question's.
export function requestFlow(
  x: DnsExchange,
  site: DnsFlowSite,
  verdict: 'FORWARDED' | 'DROPPED' | 'ERROR' = x.decision.allowed ? 'FORWARDED' : 'DROPPED',
  qtypes: readonly string[] = [typeName(x.qtype)],
): Flow {
  return dnsRequestFlow({
    source: x.source.flowEndpoint,
    destination: x.destination,
    ip: { source: x.client.ip, destination: x.server.ip },
    sourcePort: x.client.port,
    destinationPort: x.server.port,
    direction: 'EGRESS',
    nodeName: site.nodeName,
    transport: x.protocol === 17 ? 'UDP' : 'TCP',
    time: startedIso(x),
    proxyPort: site.proxyPort,
    traceContext: x.traceContext,
    policies: flowPolicies(x),
    verdict,
    dns: { query: x.qname, qtypes },
  } as RequestInput);
}

/**
 * A response flow's TTL when the answer holds no A, AAAA or CNAME record of the question's chain
 * (an empty answer, NXDOMAIN, SERVFAIL): Cilium's `ExtractMsgDetails` starts its minimum at
 * math.MaxUint32 and keeps it, so Hubble prints `TTL: 4294967295` for them.
 */
export const NO_RECORD_TTL = 0xffff_ffff;

export function responseFlow(x: DnsExchange, site: DnsFlowSite, verdict: 'FORWARDED' | 'ERROR'): Flow {
  const a = x.answer;
  return dnsResponseFlow({
    source: x.source.flowEndpoint,
    destination: x.destination,
    ip: { source: x.client.ip, destination: x.server.ip },
    sourcePort: x.client.port,
    destinationPort: x.server.port,
    direction: 'EGRESS',
    nodeName: site.nodeName,
    transport: x.protocol === 17 ? 'UDP' : 'TCP',
    time: new Date(),
    proxyPort: site.proxyPort,
    traceContext: x.traceContext,
    policies: flowPolicies(x),
    verdict,
    latencyNs: Number(process.hrtime.bigint() - x.startNs),
    dns: {
      query: x.qname,
      ips: a?.ips ?? [],
      ttl: a !== undefined && (a.ips.length > 0 || a.cnames.length > 0) ? a.ttl : NO_RECORD_TTL,
      cnames: a?.cnames ?? [],
      rcode: x.rcode ?? 0,
      qtypes: [typeName(x.qtype)],
      rrtypes: a === undefined ? [] : a.rrtypes.map(typeName),
    },
  } as ResponseInput);
}

function ms(ns: bigint): number {
  return Math.round(Number(ns) / 1000) / 1000;
}

/** One JSON access-log record (the logger adds `time`). */
export function accessLogEntry(x: DnsExchange): Record<string, unknown> {
  const ep = x.source.flowEndpoint;
  const entry: Record<string, unknown> = {
    type: 'dns',
    verdict: x.verdict ?? 'Error',
    rcode: rcodeMnemonic(x.rcode ?? 2),
    query: x.qname,
    qtype: typeName(x.qtype),
    protocol: x.protocol === 17 ? 'udp' : 'tcp',
    id: x.id,
    latency_ms: ms(process.hrtime.bigint() - x.startNs),
    source: { namespace: ep.namespace, pod: ep.pod_name, endpoint: x.source.endpointId, identity: x.source.identity, address: `${x.client.ip}:${x.client.port}` },
    destination: { namespace: x.destination.namespace, pod: x.destination.pod_name, identity: x.decision.dstIdentity, address: `${x.server.ip}:${x.server.port}` },
    policies: x.decision.policies,
    request_time: startedIso(x),
  };
  if (x.answer) {
    entry.ips = x.answer.ips;
    entry.ttl = x.answer.ttl;
    if (x.answer.cnames.length > 0) entry.cnames = x.answer.cnames;
  }
  if (x.releaseDelayNs !== undefined) entry.answer_release_ms = ms(x.releaseDelayNs);
  if (x.reason !== undefined) entry.reason = x.reason;
  if (x.traceContext) entry.trace_id = x.traceContext.parent.trace_id;
  return entry;
}
