/**
 * Stage 5, log/trace: what one HTTP exchange leaves behind — two Hubble flows (the request, then
 * the response; a denied request is a DROPPED request flow and a FORWARDED 403 response flow, as
 * Cilium maps Envoy's log) and one access-log line.
 *
 * Everything that is the same for every request of a connection (addresses, endpoints, the
 * access log's source and destination) is built once per connection (`ConnectionFacts`); a
 * request adds only what is its own.
 */

import type { Logger } from 'pino';
import {
  httpRequestFlow,
  httpResponseFlow,
  type Flow,
  type FlowIP,
  type FlowPolicy,
  type HttpExchangeInput,
} from '../observe/index.js';
import { isoAt } from './clock.js';
import { flowHeaders } from './headers.js';
import type { ParsedRequest } from './parse.js';
import type { ConnectionInfo, FlowContext, PolicyDecision, RefusedRequest } from './types.js';

export type AccessVerdict = 'Forwarded' | 'Denied' | 'Error';

/** The access log's view of one side of the connection. */
export interface AccessLogEndpoint {
  namespace: string;
  pod: string;
  identity: number;
  address: string;
}

/** What every flow and access-log line of one connection repeats: made once, at accept. */
export class ConnectionFacts {
  readonly ip: FlowIP;
  readonly logSource: AccessLogEndpoint;
  readonly logDestination: AccessLogEndpoint;

  #accessLog: Logger | null = null;
  #accessLogBase: Logger | null = null;

  constructor(conn: ConnectionInfo, ctx: FlowContext) {
    this.ip = { source: conn.srcIp, destination: conn.dstIp };
    this.logSource = endpointEntry(ctx.source, ctx.srcIdentity, conn.srcIp, conn.srcPort);
    this.logDestination = endpointEntry(ctx.destination, ctx.dstIdentity, conn.dstIp, conn.dstPort);
  }

  /**
   * `base` with this connection's `source` and `destination` bound (pino serialises a child's
   * bindings once, not per line): made at the connection's first line. Lines through it are
   * `boundAccessLogEntry` records; the same JSON object as `accessLogEntry`'s, `source` and
   * `destination` written before the record's own fields.
   */
  accessLog(base: Logger): Logger {
    if (this.#accessLog === null || this.#accessLogBase !== base) {
      this.#accessLog = base.child({ source: this.logSource, destination: this.logDestination });
      this.#accessLogBase = base;
    }
    return this.#accessLog;
  }
}

/** Everything known about one request, filled in as the pipeline runs. */
export interface Exchange {
  conn: ConnectionInfo;
  ctx: FlowContext;
  request: ParsedRequest;
  decision: PolicyDecision;
  startedAt: Date;
  startNs: bigint;
  /** `startedAt` as RFC 3339 text, when already made. */
  startedIso?: string | undefined;
  /** The connection's constant parts, when the caller keeps them. */
  facts?: ConnectionFacts | undefined;
  verdict?: AccessVerdict | undefined;
  status?: number | undefined;
  responseNs?: bigint | undefined;
  /** Why it was denied or failed. */
  reason?: string | undefined;
}

export interface FlowSite {
  nodeName: string;
  proxyPort?: number;
}

/** `namespace/name` (namespaced kinds) or `name` (clusterwide): Hubble's Policy has both fields. */
const POLICY_REFS = new Map<string, FlowPolicy>();
const MAX_POLICY_REFS = 4096;

function policyRef(p: string): FlowPolicy {
  let ref = POLICY_REFS.get(p);
  if (ref === undefined) {
    const i = p.indexOf('/');
    ref = i < 0 ? { name: p } : { name: p.slice(i + 1), namespace: p.slice(0, i) };
    // Bounded: policies come and go; a full cache starts over rather than growing.
    if (POLICY_REFS.size >= MAX_POLICY_REFS) POLICY_REFS.clear();
    POLICY_REFS.set(p, ref);
  }
  return ref;
}

/** A decision's policy names as Hubble's list: one list per decision (a repeated verdict shares it). */
const FLOW_POLICIES = new WeakMap<readonly string[], FlowPolicy[]>();

function flowPolicies(names: readonly string[]): FlowPolicy[] {
  let out = FLOW_POLICIES.get(names);
  if (out === undefined) {
    out = new Array<FlowPolicy>(names.length);
    for (let i = 0; i < names.length; i++) out[i] = policyRef(names[i] as string);
    FLOW_POLICIES.set(names, out);
  }
  return out;
}

type FlowInput<T> = HttpExchangeInput & T;

function flowInput<T extends object>(x: Exchange, site: FlowSite, extra: T): FlowInput<T> {
  const input = extra as FlowInput<T>;
  input.source = x.ctx.source;
  input.destination = x.ctx.destination;
  input.ip = x.facts?.ip ?? { source: x.conn.srcIp, destination: x.conn.dstIp };
  input.sourcePort = x.conn.srcPort;
  input.destinationPort = x.conn.dstPort;
  input.direction = x.ctx.direction;
  input.nodeName = site.nodeName;
  if (site.proxyPort !== undefined) input.proxyPort = site.proxyPort;
  if (x.request.traceContext) input.traceContext = x.request.traceContext;
  const names = x.decision.policies;
  if (names !== undefined && names.length > 0) input.policies = flowPolicies(names);
  return input;
}

function startedIsoOf(x: Exchange): string {
  return x.startedIso ?? x.startedAt.toISOString();
}

export function requestFlow(x: Exchange, site: FlowSite): Flow {
  const r = x.request;
  return httpRequestFlow(
    flowInput(x, site, {
      time: startedIsoOf(x),
      verdict: x.decision.allowed ? ('FORWARDED' as const) : ('DROPPED' as const),
      http: { method: r.method, url: r.url, protocol: r.protocol, headers: flowHeaders(r.rawHeaders) },
    }),
  );
}

export function latencyNs(x: Exchange): number {
  return x.responseNs === undefined ? 0 : Number(x.responseNs - x.startNs);
}

/** The response flow: FORWARDED for relayed and policy (403) answers, ERROR for upstream failures. */
export function responseFlow(x: Exchange, site: FlowSite, status: number, rawHeaders: ReadonlyArray<string | Buffer>, verdict: 'FORWARDED' | 'ERROR'): Flow {
  const r = x.request;
  const http =
    rawHeaders.length > 0
      ? { code: status, method: r.method, url: r.url, protocol: r.protocol, headers: flowHeaders(rawHeaders) }
      : { code: status, method: r.method, url: r.url, protocol: r.protocol };
  return httpResponseFlow(flowInput(x, site, { time: isoAt(Date.now()), verdict, latencyNs: latencyNs(x), http }));
}

/**
 * The flows of a request the proxy answered itself, not by a policy decision (a malformed request
 * or header block, CONNECT, the redirect to a normalised path): a request flow and a response
 * flow carrying the local status, both with `verdict` — ERROR for a refusal (400, 501), FORWARDED
 * for the 307 redirect. Cilium's semantic: its Envoy filter (cilium/proxy `cilium/l7policy.cc`
 * `encodeHeaders`) logs a request that was answered locally before policy as an `EntryType`
 * Request and then a Response carrying the locally generated code; a 403 alone is logged as
 * Denied (→ DROPPED). Unlike Cilium (whose `GetVerdict` makes every non-Denied entry Forwarded),
 * a refusal is ERROR here, as the proxy's own upstream-failure answers are, so `--verdict
 * FORWARDED` lists no refused request (only the redirect, which the client follows) and
 * `--verdict ERROR` finds every refusal.
 * `startMs`: when the request arrived (ms since the epoch).
 */
export function localReplyFlows(
  conn: ConnectionInfo,
  ctx: FlowContext,
  site: FlowSite,
  request: RefusedRequest,
  status: number,
  verdict: 'FORWARDED' | 'ERROR',
  startMs: number,
): [Flow, Flow] {
  const base = (): HttpExchangeInput => {
    const input: HttpExchangeInput = {
      source: ctx.source,
      destination: ctx.destination,
      ip: { source: conn.srcIp, destination: conn.dstIp },
      sourcePort: conn.srcPort,
      destinationPort: conn.dstPort,
      direction: ctx.direction,
      nodeName: site.nodeName,
    };
    if (site.proxyPort !== undefined) input.proxyPort = site.proxyPort;
    return input;
  };
  const http = { method: request.method, url: request.url, protocol: request.protocol };
  const now = Date.now();
  return [
    httpRequestFlow({ ...base(), time: isoAt(startMs), verdict, http }),
    httpResponseFlow({ ...base(), time: isoAt(now), verdict, latencyNs: Math.max(0, now - startMs) * 1e6, http: { ...http, code: status } }),
  ];
}

function endpointEntry(ep: FlowContext['source'], identity: number, ip: string, port: number): AccessLogEndpoint {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { namespace: ep.namespace, pod: ep.pod_name, identity, address: `${host}:${port}` };
}

/** One access-log record (the logger adds `time`): a class, so every record has one shape. */
class AccessLogRecord {
  type = 'http';
  verdict: AccessVerdict;
  status: number;
  method: string;
  host: string;
  path: string;
  protocol: string;
  direction: string;
  latency_ms: number;
  source: AccessLogEndpoint;
  destination: AccessLogEndpoint;
  policies: readonly string[];
  request_time: string;

  constructor(x: Exchange) {
    const r = x.request;
    this.verdict = x.verdict ?? 'Error';
    this.status = x.status ?? 0;
    this.method = r.method;
    this.host = r.host;
    this.path = r.path;
    this.protocol = r.protocol;
    this.direction = x.ctx.direction;
    this.latency_ms = Math.round((Number(process.hrtime.bigint() - x.startNs) / 1e6) * 1000) / 1000;
    this.source = x.facts?.logSource ?? endpointEntry(x.ctx.source, x.ctx.srcIdentity, x.conn.srcIp, x.conn.srcPort);
    this.destination = x.facts?.logDestination ?? endpointEntry(x.ctx.destination, x.ctx.dstIdentity, x.conn.dstIp, x.conn.dstPort);
    this.policies = x.decision.policies ?? [];
    this.request_time = startedIsoOf(x);
  }
}

/** `AccessLogRecord` without `source` and `destination`, for a logger that has them bound (`ConnectionFacts.accessLog`). */
class BoundAccessLogRecord {
  type = 'http';
  verdict: AccessVerdict;
  status: number;
  method: string;
  host: string;
  path: string;
  protocol: string;
  direction: string;
  latency_ms: number;
  policies: readonly string[];
  request_time: string;

  constructor(x: Exchange) {
    const r = x.request;
    this.verdict = x.verdict ?? 'Error';
    this.status = x.status ?? 0;
    this.method = r.method;
    this.host = r.host;
    this.path = r.path;
    this.protocol = r.protocol;
    this.direction = x.ctx.direction;
    this.latency_ms = Math.round((Number(process.hrtime.bigint() - x.startNs) / 1e6) * 1000) / 1000;
    this.policies = x.decision.policies ?? [];
    this.request_time = startedIsoOf(x);
  }
}

/** One JSON access-log record (the logger adds `time`). */
export function accessLogEntry(x: Exchange): Record<string, unknown> {
  const entry = new AccessLogRecord(x) as unknown as Record<string, unknown>;
  if (x.reason !== undefined) entry.reason = x.reason;
  if (x.request.traceContext) entry.trace_id = x.request.traceContext.parent.trace_id;
  return entry;
}

/** `accessLogEntry` without `source` and `destination`, for `ConnectionFacts.accessLog`. */
export function boundAccessLogEntry(x: Exchange): Record<string, unknown> {
  const entry = new BoundAccessLogRecord(x) as unknown as Record<string, unknown>;
  if (x.reason !== undefined) entry.reason = x.reason;
  if (x.request.traceContext) entry.trace_id = x.request.traceContext.parent.trace_id;
  return entry;
}
