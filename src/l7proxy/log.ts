/**
 * Stage 5, log/trace: what one HTTP exchange leaves behind — two Hubble flows (the request, then
 * the response; a denied request is a DROPPED request flow and a FORWARDED 403 response flow, as
 * Cilium maps Envoy's log) and one access-log line.
 */

import {
  httpRequestFlow,
  httpResponseFlow,
  type Flow,
  type FlowPolicy,
  type HttpExchangeInput,
} from '../observe/index.js';
import { flowHeaders } from './headers.js';
import type { ParsedRequest } from './parse.js';
import type { ConnectionInfo, FlowContext, PolicyDecision } from './types.js';

export type AccessVerdict = 'Forwarded' | 'Denied' | 'Error';

/** Everything known about one request, filled in as the pipeline runs. */
export interface Exchange {
  conn: ConnectionInfo;
  ctx: FlowContext;
  request: ParsedRequest;
  decision: PolicyDecision;
  startedAt: Date;
  startNs: bigint;
  verdict?: AccessVerdict;
  status?: number;
  responseNs?: bigint;
  /** Why it was denied or failed. */
  reason?: string;
}

export interface FlowSite {
  nodeName: string;
  proxyPort?: number;
}

function exchangeInput(x: Exchange, site: FlowSite): HttpExchangeInput {
  const input: HttpExchangeInput = {
    source: x.ctx.source,
    destination: x.ctx.destination,
    ip: { source: x.conn.srcIp, destination: x.conn.dstIp },
    sourcePort: x.conn.srcPort,
    destinationPort: x.conn.dstPort,
    direction: x.ctx.direction,
    nodeName: site.nodeName,
  };
  if (site.proxyPort !== undefined) input.proxyPort = site.proxyPort;
  if (x.request.traceContext) input.traceContext = x.request.traceContext;
  // `namespace/name` (namespaced kinds) or `name` (clusterwide): Hubble's Policy has both fields.
  const policies: FlowPolicy[] | undefined = x.decision.policies?.map((p) => {
    const i = p.indexOf('/');
    return i < 0 ? { name: p } : { name: p.slice(i + 1), namespace: p.slice(0, i) };
  });
  if (policies && policies.length > 0) input.policies = policies;
  return input;
}

export function requestFlow(x: Exchange, site: FlowSite): Flow {
  return httpRequestFlow({
    ...exchangeInput(x, site),
    time: x.startedAt,
    verdict: x.decision.allowed ? 'FORWARDED' : 'DROPPED',
    http: { method: x.request.method, url: x.request.url, protocol: x.request.protocol, headers: flowHeaders(x.request.rawHeaders) },
  });
}

export function latencyNs(x: Exchange): number {
  return x.responseNs === undefined ? 0 : Number(x.responseNs - x.startNs);
}

/** The response flow: FORWARDED for relayed and policy (403) answers, ERROR for upstream failures. */
export function responseFlow(x: Exchange, site: FlowSite, status: number, rawHeaders: ReadonlyArray<string | Buffer>, verdict: 'FORWARDED' | 'ERROR'): Flow {
  const http = { code: status, method: x.request.method, url: x.request.url, protocol: x.request.protocol };
  return httpResponseFlow({
    ...exchangeInput(x, site),
    time: new Date(),
    verdict,
    latencyNs: latencyNs(x),
    http: rawHeaders.length > 0 ? { ...http, headers: flowHeaders(rawHeaders) } : http,
  });
}

function endpointEntry(ep: FlowContext['source'], identity: number, ip: string, port: number): Record<string, unknown> {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { namespace: ep.namespace, pod: ep.pod_name, identity, address: `${host}:${port}` };
}

/** One JSON access-log record (the logger adds `time`). */
export function accessLogEntry(x: Exchange): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    type: 'http',
    verdict: x.verdict ?? 'Error',
    status: x.status ?? 0,
    method: x.request.method,
    host: x.request.host,
    path: x.request.path,
    protocol: x.request.protocol,
    direction: x.ctx.direction,
    latency_ms: Math.round((Number(process.hrtime.bigint() - x.startNs) / 1e6) * 1000) / 1000,
    source: endpointEntry(x.ctx.source, x.ctx.srcIdentity, x.conn.srcIp, x.conn.srcPort),
    destination: endpointEntry(x.ctx.destination, x.ctx.dstIdentity, x.conn.dstIp, x.conn.dstPort),
    policies: x.decision.policies ?? [],
    request_time: x.startedAt.toISOString(),
  };
  if (x.reason !== undefined) entry.reason = x.reason;
  if (x.request.traceContext) entry.trace_id = x.request.traceContext.parent.trace_id;
  return entry;
}
