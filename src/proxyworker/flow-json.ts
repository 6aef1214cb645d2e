/**
 * An HTTP flow (observe/build.ts `httpRequestFlow` / `httpResponseFlow`) as JSON text: the text
 * `JSON.stringify(flow)` gives, key for key, made without walking the whole object graph again
 * for every flow (issue 9: `JSON.stringify` of a batch's flows was ~10% of a proxy worker's CPU).
 *
 * What repeats from flow to flow is serialised once: a flow endpoint (its labels are most of a
 * flow's bytes) and a policy list are kept as text per object, and reused while the object still
 * has the fields the text was made of (the worker's state replaces endpoints, never changes them;
 * the check guards the rest). Everything else is written field by field in the builders' order;
 * a string is quoted as it is unless it holds a character JSON escapes, then by `JSON.stringify`.
 *
 * `httpFlowJson` answers null for anything that is not an HTTP flow of the builders' making (no
 * `l7.http`, a `dns` record, TCP flags, a field of unexpected type): the caller falls back to
 * `JSON.stringify`.
 */
import type { Flow, FlowEndpoint, FlowPolicy, HTTPHeader, HTTPRecord } from '../observe/index.js';

/** A character `JSON.stringify` escapes: `"`, `\`, controls, lone surrogate halves (well-formed JSON.stringify). */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

function quote(s: string): string {
  return ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * `quote` of the last string seen at one place of a flow: most fields repeat from flow to flow
 * (the verdict, the addresses, the URL of a keep-alive client's requests), and comparing with the
 * last one (the same string object, or a memcmp) costs less than scanning it for escapes.
 */
class Quoted {
  #last = '';
  #quoted = '""';

  of(s: string): string {
    if (s !== this.#last) {
      this.#quoted = quote(s);
      this.#last = s;
    }
    return this.#quoted;
  }
}

const Q = {
  verdict: new Quoted(),
  ipVersion: new Quoted(),
  src: new Quoted(),
  dst: new Quoted(),
  type: new Quoted(),
  method: new Quoted(),
  url: new Quoted(),
  protocol: new Quoted(),
  direction: new Quoted(),
  summaryRequest: new Quoted(),
  summaryReply: new Quoted(),
  node: new Quoted(),
  time: new Quoted(),
};

/** Per position in a header list, its name and its value. */
const HEADER_MEMOS = 32;
const HK = Array.from({ length: HEADER_MEMOS }, () => new Quoted());
const HV = Array.from({ length: HEADER_MEMOS }, () => new Quoted());

function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

interface EndpointText {
  readonly text: string;
  readonly ID: number;
  readonly identity: number;
  readonly namespace: string;
  readonly labels: readonly string[];
  readonly labelCount: number;
  readonly pod_name: string;
  readonly cluster_name: string | undefined;
}

const ENDPOINTS = new WeakMap<FlowEndpoint, EndpointText>();

function endpointJson(ep: FlowEndpoint): string {
  const c = ENDPOINTS.get(ep);
  if (
    c !== undefined &&
    c.ID === ep.ID &&
    c.identity === ep.identity &&
    c.namespace === ep.namespace &&
    c.labels === ep.labels &&
    c.labelCount === ep.labels.length &&
    c.pod_name === ep.pod_name &&
    c.cluster_name === ep.cluster_name
  ) {
    return c.text;
  }
  const text = JSON.stringify(ep);
  ENDPOINTS.set(ep, {
    text,
    ID: ep.ID,
    identity: ep.identity,
    namespace: ep.namespace,
    labels: ep.labels,
    labelCount: ep.labels?.length ?? -1,
    pod_name: ep.pod_name,
    cluster_name: ep.cluster_name,
  });
  return text;
}

const POLICIES = new WeakMap<readonly FlowPolicy[], { text: string; length: number }>();

function policiesJson(list: readonly FlowPolicy[]): string {
  const c = POLICIES.get(list);
  if (c !== undefined && c.length === list.length) return c.text;
  const text = JSON.stringify(list);
  POLICIES.set(list, { text, length: list.length });
  return text;
}

function headersJson(headers: readonly HTTPHeader[]): string | null {
  let out = '[';
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as HTTPHeader;
    if (typeof h !== 'object' || h === null || typeof h.key !== 'string' || typeof h.value !== 'string') return null;
    const key = i < HEADER_MEMOS ? (HK[i] as Quoted).of(h.key) : quote(h.key);
    const value = i < HEADER_MEMOS ? (HV[i] as Quoted).of(h.value) : quote(h.value);
    out += `${i === 0 ? '' : ','}{"key":${key},"value":${value}}`;
  }
  return `${out}]`;
}

function httpJson(http: HTTPRecord): string | null {
  let out = '{';
  if (http.code !== undefined) {
    if (typeof http.code !== 'number') return null;
    out += `"code":${num(http.code)},`;
  }
  if (typeof http.method !== 'string' || typeof http.url !== 'string' || typeof http.protocol !== 'string') return null;
  out += `"method":${Q.method.of(http.method)},"url":${Q.url.of(http.url)},"protocol":${Q.protocol.of(http.protocol)}`;
  if (http.headers !== undefined) {
    if (!Array.isArray(http.headers)) return null;
    const h = headersJson(http.headers);
    if (h === null) return null;
    out += `,"headers":${h}`;
  }
  return `${out}}`;
}

/** Keys of the policy lists, in the order `l7Policies` of the builders can add them. */
const POLICY_KEYS = ['ingress_allowed_by', 'egress_allowed_by', 'ingress_denied_by', 'egress_denied_by'] as const;

/** `JSON.stringify(flow)` for an HTTP flow made by the observe builders; null for anything else. */
export function httpFlowJson(flow: Flow): string | null {
  const l7 = flow.l7;
  if (l7 === undefined || l7.http === undefined || l7.dns !== undefined || flow.Type !== 'L7') return null;
  const ip = flow.IP;
  const tcp = flow.l4 !== undefined && 'TCP' in flow.l4 ? flow.l4.TCP : undefined;
  if (ip === undefined || tcp === undefined || tcp.flags !== undefined || flow.event_type.sub_type !== undefined) return null;
  // Fields the HTTP builders never set: such a flow is someone else's, and JSON.stringify's.
  if (
    flow.drop_reason !== undefined ||
    flow.drop_reason_desc !== undefined ||
    flow.policy_match_type !== undefined ||
    flow.source_names !== undefined ||
    flow.destination_names !== undefined
  ) {
    return null;
  }
  if (typeof flow.time !== 'string' || typeof flow.uuid !== 'string' || typeof flow.verdict !== 'string' || typeof flow.Summary !== 'string' || typeof flow.node_name !== 'string') return null;
  if (typeof ip.source !== 'string' || typeof ip.destination !== 'string' || typeof ip.ipVersion !== 'string') return null;
  if (typeof tcp.source_port !== 'number' || typeof tcp.destination_port !== 'number' || typeof flow.event_type.type !== 'number') return null;
  if (typeof l7.type !== 'string' || (l7.latency_ns !== undefined && typeof l7.latency_ns !== 'number')) return null;
  if (typeof flow.traffic_direction !== 'string' || typeof flow.is_reply !== 'boolean') return null;
  const http = httpJson(l7.http);
  if (http === null) return null;
  let out =
    `{"time":${Q.time.of(flow.time)},"uuid":${quote(flow.uuid)},"verdict":${Q.verdict.of(flow.verdict)},` +
    `"IP":{"ipVersion":${Q.ipVersion.of(ip.ipVersion)},"source":${Q.src.of(ip.source)},"destination":${Q.dst.of(ip.destination)}},` +
    `"l4":{"TCP":{"source_port":${num(tcp.source_port)},"destination_port":${num(tcp.destination_port)}}},` +
    `"source":${endpointJson(flow.source)},"destination":${endpointJson(flow.destination)},"Type":"L7",` +
    `"l7":{"type":${Q.type.of(l7.type)}${l7.latency_ns !== undefined ? `,"latency_ns":${num(l7.latency_ns)}` : ''},"http":${http}},` +
    `"traffic_direction":${Q.direction.of(flow.traffic_direction)},"is_reply":${flow.is_reply ? 'true' : 'false'},` +
    `"event_type":{"type":${num(flow.event_type.type)}},"Summary":${(flow.is_reply ? Q.summaryReply : Q.summaryRequest).of(flow.Summary)},"node_name":${Q.node.of(flow.node_name)}`;
  if (flow.proxy_port !== undefined) {
    if (typeof flow.proxy_port !== 'number') return null;
    out += `,"proxy_port":${num(flow.proxy_port)}`;
  }
  // Only requests that carried a traceparent have one: not worth a path of its own.
  if (flow.trace_context !== undefined) out += `,"trace_context":${JSON.stringify(flow.trace_context)}`;
  for (const key of POLICY_KEYS) {
    const list = flow[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) return null;
    out += `,"${key}":${policiesJson(list)}`;
  }
  return `${out}}`;
}
