/**
 * An L7 flow (observe/build.ts `httpRequestFlow` / `httpResponseFlow` / `dnsRequestFlow` /
 * `dnsResponseFlow`) as JSON text: the text `JSON.stringify(flow)` gives, key for key, made
 * without walking the whole object graph again for every flow (issue 9: `JSON.stringify` of a
 * batch's flows was ~10% of a proxy worker's CPU; in the DNS benchmark, with two flows per query,
 * it was 14% of the worker's busy time).
 *
 * What repeats from flow to flow is serialised once: a flow endpoint (its labels are most of a
 * flow's bytes) and a policy list are kept as text per object, and reused while the object still
 * has the fields the text was made of (the worker's state replaces endpoints, never changes them;
 * the check guards the rest). Everything else is written field by field in the builders' order;
 * a string is quoted as it is unless it holds a character JSON escapes, then by `JSON.stringify`.
 *
 * `flowJson` (or `httpFlowJson` / `dnsFlowJson` for one family) answers null for anything that is
 * not an L7 flow of the builders' making (no `l7` record, both records, TCP flags, a DNS record
 * of a shape the builders do not make, a field of unexpected type): the caller falls back to
 * `JSON.stringify`. Key order is not read back from the objects: the builders make every object
 * but the caller's HTTP record, `IP` pair and endpoints (written by `JSON.stringify`) in one order.
 */
import type { DNSRecord, Flow, FlowEndpoint, FlowPolicy, HTTPHeader, HTTPRecord, Layer7, PortPair } from '../observe/index.js';

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

/**
 * Memos per kind of flow (0: request, 1: reply). A connection's request and response flows
 * alternate and swap the addresses, ports and endpoints: one memo for both would miss every time.
 */
type Kind = 0 | 1;

/**
 * The text of one stretch of a flow whose fields repeat from flow to flow of a connection (and of
 * all connections between the same pods): kept while every input is the same string or number
 * as last time (endpoint texts compared as the objects `endpointJson` keeps, so an endpoint that
 * changed gives a new text), and flattened once, so a batch of flows is a short rope of flat
 * pieces (issue 9: flattening a batch of ~100-piece flows for `postMessage` cost more than
 * copying its bytes).
 */
class Segment {
  #a: unknown = Segment;
  #b: unknown = undefined;
  #c: unknown = undefined;
  #d: unknown = undefined;
  #e: unknown = undefined;
  #f: unknown = undefined;
  #g: unknown = undefined;
  #h: unknown = undefined;
  /** The kept text (valid after `hit` answered true, or after `keep`). */
  text = '';

  /**
   * Whether the inputs are those of the kept text; if not, they are recorded and the caller
   * `keep`s the text made of them. Fixed arity (unused ones undefined): no array per call.
   */
  hit(a: unknown, b: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown): boolean {
    if (this.#a === a && this.#b === b && this.#c === c && this.#d === d && this.#e === e && this.#f === f && this.#g === g && this.#h === h) return true;
    this.#a = a;
    this.#b = b;
    this.#c = c;
    this.#d = d;
    this.#e = e;
    this.#f = f;
    this.#g = g;
    this.#h = h;
    return false;
  }

  keep(text: string): string {
    // Flattens the rope in place (V8 does on indexed access): every later flow shares one flat string.
    text.charCodeAt(0);
    this.text = text;
    return text;
  }
}

/** The header list of the last flow of one kind, as `headersJson` made it. */
class HeadersSegment {
  #keys: string[] = [];
  #values: string[] = [];
  #text = '[]';

  of(headers: readonly HTTPHeader[]): string | null {
    const keys = this.#keys;
    const values = this.#values;
    let same = keys.length === headers.length;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i] as HTTPHeader;
      if (typeof h !== 'object' || h === null || typeof h.key !== 'string' || typeof h.value !== 'string') return null;
      if (same && (keys[i] !== h.key || values[i] !== h.value)) same = false;
    }
    if (same) return this.#text;
    let out = '[';
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i] as HTTPHeader;
      keys[i] = h.key;
      values[i] = h.value;
      out += `${i === 0 ? '' : ','}{"key":${quote(h.key)},"value":${quote(h.value)}}`;
    }
    keys.length = headers.length;
    values.length = headers.length;
    out += ']';
    out.charCodeAt(0);
    this.#text = out;
    return out;
  }
}

/** A list of strings at one place of the last flow of one kind (a DNS record's qtypes, IPs, …), as `of` made its text. */
class StringsSegment {
  #last: string[] = [];
  #text = '[]';

  of(list: readonly unknown[]): string | null {
    const last = this.#last;
    let same = last.length === list.length;
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (typeof s !== 'string') return null;
      if (same && last[i] !== s) same = false;
    }
    if (same) return this.#text;
    let out = '[';
    for (let i = 0; i < list.length; i++) {
      const s = list[i] as string;
      last[i] = s;
      out += i === 0 ? quote(s) : `,${quote(s)}`;
    }
    last.length = list.length;
    out += ']';
    out.charCodeAt(0);
    this.#text = out;
    return out;
  }
}

/**
 * The memos of one family of L7 flows (HTTP, DNS), per kind where they differ: a worker serving
 * both interleaves the families, whose texts share nothing but the endpoints (kept per object).
 * `pair`: the source endpoint's text through `"l7":{"type":…`; `after`: `traffic_direction` …
 * `"Summary":`; `node`: `node_name`, `proxy_port`.
 */
class FrameMemos {
  readonly verdict = new Quoted();
  readonly time = new Quoted();
  readonly summary = [new Quoted(), new Quoted()] as const;
  readonly ip = [
    { version: new Quoted(), source: new Quoted(), destination: new Quoted() },
    { version: new Quoted(), source: new Quoted(), destination: new Quoted() },
  ] as const;
  readonly pair = [new Segment(), new Segment()] as const;
  readonly after = [new Segment(), new Segment()] as const;
  readonly node = new Segment();
}

const HTTP = {
  frame: new FrameMemos(),
  record: [new Segment(), new Segment()] as const,
  headers: [new HeadersSegment(), new HeadersSegment()] as const,
};

const DNS = {
  frame: new FrameMemos(),
  record: [new Segment(), new Segment()] as const,
  qtypes: [new StringsSegment(), new StringsSegment()] as const,
  ips: new StringsSegment(),
  cnames: new StringsSegment(),
  rrtypes: new StringsSegment(),
};

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

function httpJson(http: HTTPRecord, kind: Kind): string | null {
  const code = http.code;
  if (code !== undefined && typeof code !== 'number') return null;
  const { method, url, protocol } = http;
  if (typeof method !== 'string' || typeof url !== 'string' || typeof protocol !== 'string') return null;
  let headers = '';
  if (http.headers !== undefined) {
    if (!Array.isArray(http.headers)) return null;
    const h = HTTP.headers[kind].of(http.headers);
    if (h === null) return null;
    headers = h;
  }
  // `code` absent and `headers` absent are told apart from any value by their type ('' vs a number or a '[…]' text).
  const seg = HTTP.record[kind];
  if (seg.hit(code ?? '', method, url, protocol, headers)) return seg.text;
  let out = code !== undefined ? `{"code":${num(code)},` : '{';
  out += `"method":${quote(method)},"url":${quote(url)},"protocol":${quote(protocol)}`;
  if (headers !== '') out += `,"headers":${headers}`;
  return seg.keep(`${out}}`);
}

/**
 * The DNS record of a flow of observe/build.ts: a request's (`dnsRequestFlow`: `query`,
 * `observation_source`, `qtypes`) or a reply's (`dnsResponseFlow`: all eight fields, in its order);
 * null for another shape, or a request's in a reply and the reverse.
 */
function dnsJson(dns: DNSRecord, kind: Kind): string | null {
  const { query, observation_source: source, qtypes } = dns;
  if (typeof query !== 'string' || typeof source !== 'string' || !Array.isArray(qtypes)) return null;
  const qt = DNS.qtypes[kind].of(qtypes);
  if (qt === null) return null;
  const { ips, ttl, cnames, rcode, rrtypes } = dns;
  const seg = DNS.record[kind];
  if (kind === 0) {
    if (ips !== undefined || ttl !== undefined || cnames !== undefined || rcode !== undefined || rrtypes !== undefined) return null;
    if (seg.hit(query, source, qt)) return seg.text;
    return seg.keep(`{"query":${quote(query)},"observation_source":${quote(source)},"qtypes":${qt}}`);
  }
  if (!Array.isArray(ips) || typeof ttl !== 'number' || !Array.isArray(cnames) || typeof rcode !== 'number' || !Array.isArray(rrtypes)) return null;
  const ipsText = DNS.ips.of(ips);
  const cnamesText = DNS.cnames.of(cnames);
  const rrText = DNS.rrtypes.of(rrtypes);
  if (ipsText === null || cnamesText === null || rrText === null) return null;
  if (seg.hit(query, ipsText, ttl, cnamesText, source, rcode, qt, rrText)) return seg.text;
  return seg.keep(
    `{"query":${quote(query)},"ips":${ipsText},"ttl":${num(ttl)},"cnames":${cnamesText},"observation_source":${quote(source)},` +
      `"rcode":${num(rcode)},"qtypes":${qt},"rrtypes":${rrText}}`,
  );
}

/** Keys of the policy lists, in the order `l7Policies` of the builders can add them. */
const POLICY_KEYS = ['ingress_allowed_by', 'egress_allowed_by', 'ingress_denied_by', 'egress_denied_by'] as const;

/**
 * An L7 flow of the builders (`httpRequestFlow` … `dnsResponseFlow`, all of one key order) around
 * its L7 record: `l4Key` names its L4 header (ports `ports`), `record` is the text after
 * `"l7":{"type":…` (latency, record, checked by the caller). Null for a field of unexpected type
 * or one these builders never set.
 */
function l7FlowJson(flow: Flow, m: FrameMemos, kind: Kind, l7type: string, l4Key: 'TCP' | 'UDP', ports: PortPair, record: string): string | null {
  const ip = flow.IP;
  if (ip === undefined || flow.Type !== 'L7' || flow.event_type.sub_type !== undefined) return null;
  // Fields the L7 builders never set: such a flow is someone else's, and JSON.stringify's.
  if (
    flow.drop_reason !== undefined ||
    flow.drop_reason_desc !== undefined ||
    flow.policy_match_type !== undefined ||
    flow.trace_reason !== undefined ||
    flow.source_names !== undefined ||
    flow.destination_names !== undefined
  ) {
    return null;
  }
  if (typeof flow.time !== 'string' || typeof flow.uuid !== 'string' || typeof flow.verdict !== 'string' || typeof flow.Summary !== 'string' || typeof flow.node_name !== 'string') return null;
  if (typeof ip.source !== 'string' || typeof ip.destination !== 'string' || typeof ip.ipVersion !== 'string') return null;
  if (typeof ports.source_port !== 'number' || typeof ports.destination_port !== 'number' || typeof flow.event_type.type !== 'number') return null;
  if (typeof flow.traffic_direction !== 'string') return null;
  if (flow.proxy_port !== undefined && typeof flow.proxy_port !== 'number') return null;
  const srcText = endpointJson(flow.source);
  const dstText = endpointJson(flow.destination);
  const { ipVersion, source, destination } = ip;
  const { source_port: sport, destination_port: dport } = ports;
  // The addresses and ports differ from connection to connection (and consecutive flows are
  // mostly of different connections): written as they come. The endpoints are those of a pair of
  // pods, shared by all its connections: kept.
  const q = m.ip[kind];
  const addrs =
    `"IP":{"ipVersion":${q.version.of(ipVersion)},"source":${q.source.of(source)},"destination":${q.destination.of(destination)}},` +
    `"l4":{"${l4Key}":{"source_port":${num(sport)},"destination_port":${num(dport)}}},"source":`;
  const pairSeg = m.pair[kind];
  const pair = pairSeg.hit(srcText, dstText, l7type)
    ? pairSeg.text
    : pairSeg.keep(`${srcText},"destination":${dstText},"Type":"L7","l7":{"type":${quote(l7type)}`);
  const proxyPort = flow.proxy_port;
  const direction: string = flow.traffic_direction;
  const eventType: number = flow.event_type.type;
  const nodeName: string = flow.node_name;
  const afterSeg = m.after[kind];
  const after = afterSeg.hit(direction, eventType)
    ? afterSeg.text
    : afterSeg.keep(`,"traffic_direction":${quote(direction)},"is_reply":${kind === 1 ? 'true' : 'false'},"event_type":{"type":${num(eventType)}},"Summary":`);
  const nodeSeg = m.node;
  const node = nodeSeg.hit(nodeName, proxyPort)
    ? nodeSeg.text
    : nodeSeg.keep(`,"node_name":${quote(nodeName)}${proxyPort === undefined ? '' : `,"proxy_port":${num(proxyPort)}`}`);
  let out =
    `{"time":${m.time.of(flow.time)},"uuid":${quote(flow.uuid)},"verdict":${m.verdict.of(flow.verdict)},${addrs}${pair}` +
    `${record}}${after}${m.summary[kind].of(flow.Summary)}${node}`;
  // Every request has one when tracing is on (issue 11: JSON.stringify of it was ~1 µs per flow).
  const tc = flow.trace_context;
  if (tc !== undefined) out += `,"trace_context":${typeof tc.parent?.trace_id === 'string' && Object.keys(tc).length === 1 && Object.keys(tc.parent).length === 1 ? `{"parent":{"trace_id":${quote(tc.parent.trace_id)}}}` : JSON.stringify(tc)}`;
  for (const key of POLICY_KEYS) {
    const list = flow[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) return null;
    out += `,"${key}":${policiesJson(list)}`;
  }
  return `${out}}`;
}

/** `,"latency_ns":…` of an L7 record, '' when absent; null when not a number. */
function latencyJson(l7: Layer7): string | null {
  const ns = l7.latency_ns;
  if (ns === undefined) return '';
  return typeof ns === 'number' ? `,"latency_ns":${num(ns)}` : null;
}

/** `JSON.stringify(flow)` for an HTTP flow made by the observe builders; null for anything else. */
export function httpFlowJson(flow: Flow): string | null {
  const l7 = flow.l7;
  if (l7 === undefined || l7.http === undefined || l7.dns !== undefined || typeof l7.type !== 'string' || typeof flow.is_reply !== 'boolean') return null;
  const tcp = flow.l4 !== undefined && 'TCP' in flow.l4 ? flow.l4.TCP : undefined;
  if (tcp === undefined || tcp.flags !== undefined) return null;
  const latency = latencyJson(l7);
  if (latency === null) return null;
  const kind: Kind = flow.is_reply ? 1 : 0;
  const http = httpJson(l7.http, kind);
  if (http === null) return null;
  return l7FlowJson(flow, HTTP.frame, kind, l7.type, 'TCP', tcp, `${latency},"http":${http}`);
}

/**
 * `JSON.stringify(flow)` for a DNS flow made by the observe builders (`dnsRequestFlow`,
 * `dnsResponseFlow`: UDP or TCP, the request's or the reply's record); null for anything else.
 */
export function dnsFlowJson(flow: Flow): string | null {
  const l7 = flow.l7;
  if (l7 === undefined || l7.dns === undefined || l7.http !== undefined || typeof l7.type !== 'string' || typeof flow.is_reply !== 'boolean') return null;
  const l4 = flow.l4 as { TCP?: PortPair & { flags?: unknown }; UDP?: PortPair } | undefined;
  if (l4 === undefined) return null;
  const { UDP: udp, TCP: tcp } = l4;
  if ((udp === undefined) === (tcp === undefined) || (tcp !== undefined && tcp.flags !== undefined)) return null;
  const latency = latencyJson(l7);
  if (latency === null) return null;
  const kind: Kind = flow.is_reply ? 1 : 0;
  const dns = dnsJson(l7.dns, kind);
  if (dns === null) return null;
  return udp !== undefined
    ? l7FlowJson(flow, DNS.frame, kind, l7.type, 'UDP', udp, `${latency},"dns":${dns}`)
    : l7FlowJson(flow, DNS.frame, kind, l7.type, 'TCP', tcp as PortPair, `${latency},"dns":${dns}`);
}

/** `JSON.stringify(flow)` for an HTTP or DNS flow of the observe builders; null for anything else (the caller's to stringify). */
export function flowJson(flow: Flow): string | null {
  const l7 = flow.l7;
  if (l7 === undefined) return null;
  if (l7.http !== undefined) return httpFlowJson(flow);
  if (l7.dns !== undefined) return dnsFlowJson(flow);
  return null;
}
