/**
 * Our flow (src/observe `Flow`, Hubble's JSON shape) ⇄ the protobuf `flow.Flow` of Hubble's API,
 * and `FlowFilter` ⇄ our `FilterSpec`.
 *
 * The protobuf object uses the proto field names, so most fields pass unchanged; what differs is
 * `time` (a `google.protobuf.Timestamp`), `is_reply` (a `BoolValue`, absent when unknown) and
 * proto3's rule that zero values and empty lists are not sent. `flowFromProto` puts those back as
 * the producers in src/observe/build.ts write them (same keys, same order), so `membrane observe
 * -o json` prints a flow byte for byte as the agent built it.
 */
import { EVENT_TYPE, type Flow, type FilterSpec, type FlowEndpoint, type Layer4, type Layer7, type FlowPolicy } from '../observe/index.js';

/** A `google.protobuf.Timestamp` as proto-loader objects carry it. */
export interface PbTimestamp {
  seconds?: number;
  nanos?: number;
}

type Obj = Record<string, unknown>;

/** RFC 3339 (`2026-12-01T00:00:00.123456789Z`, any fraction length) → nanoseconds since the epoch. */
export function timeToNs(time: string): bigint {
  const m = /^(.*?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) throw new RangeError(`not an RFC 3339 time: ${time}`);
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) throw new RangeError(`not an RFC 3339 time: ${time}`);
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

export function nsToTimestamp(ns: bigint): PbTimestamp {
  const seconds = ns / 1_000_000_000n;
  return { seconds: Number(seconds), nanos: Number(ns - seconds * 1_000_000_000n) };
}

export function timestampToNs(ts: PbTimestamp | undefined): bigint {
  return BigInt(ts?.seconds ?? 0) * 1_000_000_000n + BigInt(ts?.nanos ?? 0);
}

/** Nanoseconds → RFC 3339 with 9 fraction digits, or 3 (milliseconds) when `milli`. */
export function nsToTime(ns: bigint, milli = false): string {
  const ms = ns / 1_000_000n;
  const base = new Date(Number(ms)).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${base}.${milli ? frac.slice(0, 3) : frac}Z`;
}

/**
 * The flow's time as its producer wrote it: datapath flows carry nanoseconds (9 digits), proxy
 * flows a JS Date (milliseconds, 3 digits) unless they have sub-millisecond digits.
 */
function timeFromProto(ts: PbTimestamp | undefined, type: Flow['Type']): string {
  const ns = timestampToNs(ts);
  return nsToTime(ns, type === 'L7' && ns % 1_000_000n === 0n);
}

/** Our flow → the `flow.Flow` message object. */
export function flowToProto(flow: Flow): Obj {
  const { time, is_reply: isReply, ...rest } = flow;
  const pb: Obj = { ...rest, time: nsToTimestamp(timeToNs(time)) };
  if (isReply !== undefined) pb.is_reply = { value: isReply };
  return pb;
}

function pick(src: Obj, keys: readonly string[]): Obj {
  const out: Obj = {};
  for (const k of keys) if (src[k] !== undefined) out[k] = src[k];
  return out;
}

function endpointFromProto(pb: Obj | undefined): FlowEndpoint {
  const e = pb ?? {};
  return {
    ID: (e.ID as number | undefined) ?? 0,
    identity: (e.identity as number | undefined) ?? 0,
    namespace: (e.namespace as string | undefined) ?? '',
    labels: (e.labels as string[] | undefined) ?? [],
    pod_name: (e.pod_name as string | undefined) ?? '',
  };
}

function layer4FromProto(pb: Obj): Layer4 | undefined {
  const ports = (p: Obj): { source_port: number; destination_port: number } => ({
    source_port: (p.source_port as number | undefined) ?? 0,
    destination_port: (p.destination_port as number | undefined) ?? 0,
  });
  if (pb.TCP) {
    const t = pb.TCP as Obj;
    return { TCP: { ...ports(t), ...(t.flags ? { flags: t.flags as Obj } : {}) } };
  }
  if (pb.UDP) return { UDP: ports(pb.UDP as Obj) };
  if (pb.SCTP) return { SCTP: ports(pb.SCTP as Obj) };
  const icmp = (p: Obj): { type: number; code: number } => ({ type: (p.type as number | undefined) ?? 0, code: (p.code as number | undefined) ?? 0 });
  if (pb.ICMPv4) return { ICMPv4: icmp(pb.ICMPv4 as Obj) };
  if (pb.ICMPv6) return { ICMPv6: icmp(pb.ICMPv6 as Obj) };
  return undefined;
}

function layer7FromProto(pb: Obj): Layer7 {
  const type = (pb.type as Layer7['type'] | undefined) ?? 'REQUEST';
  const l7: Layer7 = { type };
  // Responses always carry their latency, even 0; requests never do.
  if (type === 'RESPONSE' || pb.latency_ns) l7.latency_ns = (pb.latency_ns as number | undefined) ?? 0;
  if (pb.http) {
    const h = pb.http as Obj;
    const base = { method: (h.method as string | undefined) ?? '', url: (h.url as string | undefined) ?? '', protocol: (h.protocol as string | undefined) ?? '' };
    const headers = h.headers as { key: string; value: string }[] | undefined;
    if (type === 'RESPONSE') l7.http = { code: (h.code as number | undefined) ?? 0, ...base, ...(headers?.length ? { headers } : {}) };
    else l7.http = { ...base, headers: headers ?? [] };
  }
  if (pb.dns) {
    const d = pb.dns as Obj;
    const s = (k: string): string => (d[k] as string | undefined) ?? '';
    const list = (k: string): string[] => (d[k] as string[] | undefined) ?? [];
    const num = (k: string): number => (d[k] as number | undefined) ?? 0;
    l7.dns =
      type === 'RESPONSE'
        ? { query: s('query'), ips: list('ips'), ttl: num('ttl'), cnames: list('cnames'), observation_source: s('observation_source'), rcode: num('rcode'), qtypes: list('qtypes'), rrtypes: list('rrtypes') }
        : { query: s('query'), observation_source: s('observation_source'), qtypes: list('qtypes') };
  }
  return l7;
}

/** Top-level key order of each producer in src/observe/build.ts (and l7proxy's TLS flow). */
const L3L4_BASE = ['time', 'uuid', 'IP', 'source', 'destination', 'Type', 'traffic_direction', 'node_name', 'l4'] as const;
const ORDER: Record<'drop' | 'verdict' | 'trace' | 'l7', readonly string[]> = {
  drop: [...L3L4_BASE, 'verdict', 'drop_reason', 'event_type', 'Summary', 'drop_reason_desc'],
  verdict: [...L3L4_BASE, 'verdict', 'event_type', 'policy_match_type', 'Summary', 'drop_reason', 'drop_reason_desc', 'is_reply', 'proxy_port'],
  trace: [...L3L4_BASE, 'verdict', 'event_type', 'Summary', 'is_reply', 'proxy_port', 'trace_reason'],
  l7: ['time', 'uuid', 'verdict', 'drop_reason', 'drop_reason_desc', 'IP', 'l4', 'source', 'destination', 'Type', 'l7', 'traffic_direction', 'is_reply', 'event_type', 'Summary', 'node_name', 'proxy_port', 'trace_context'],
};
const TAIL = ['source_names', 'destination_names', 'ingress_allowed_by', 'egress_allowed_by', 'ingress_denied_by', 'egress_denied_by', 'policy_match_type'];

function policiesFromProto(list: unknown): FlowPolicy[] | undefined {
  const l = list as Obj[] | undefined;
  if (!l?.length) return undefined;
  return l.map((p) => pick(p, ['name', 'namespace', 'kind']) as unknown as FlowPolicy);
}

/** A `flow.Flow` message object → our flow, with every field our producers always write. */
export function flowFromProto(pb: Obj): Flow {
  const type = (pb.Type as Flow['Type'] | undefined) ?? 'L3_L4';
  const eventType = (pb.event_type as Obj | undefined) ?? {};
  const evType = (eventType.type as number | undefined) ?? 0;
  const subType = eventType.sub_type as number | undefined;
  const f: Obj = {
    time: timeFromProto(pb.time as PbTimestamp | undefined, type),
    uuid: pb.uuid ?? '',
    verdict: pb.verdict ?? 'VERDICT_UNKNOWN',
    IP: pb.IP ? pick({ source: '', destination: '', ...(pb.IP as Obj) }, ['ipVersion', 'source', 'destination']) : undefined,
    source: endpointFromProto(pb.source as Obj | undefined),
    destination: endpointFromProto(pb.destination as Obj | undefined),
    Type: type,
    traffic_direction: pb.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN',
    node_name: pb.node_name ?? '',
    l4: pb.l4 ? layer4FromProto(pb.l4 as Obj) : undefined,
    l7: pb.l7 ? layer7FromProto(pb.l7 as Obj) : undefined,
    // Datapath events always name their sub type (0 is a valid one); proxy records have none.
    event_type: evType === EVENT_TYPE.ACCESS_LOG && !subType ? { type: evType } : { type: evType, sub_type: subType ?? 0 },
    Summary: pb.Summary ?? '',
    drop_reason: pb.drop_reason,
    drop_reason_desc: pb.drop_reason_desc,
    is_reply: pb.is_reply === undefined ? undefined : Boolean((pb.is_reply as Obj).value),
    proxy_port: pb.proxy_port,
    trace_reason: pb.trace_reason,
    trace_context: pb.trace_context,
    source_names: (pb.source_names as string[] | undefined)?.length ? pb.source_names : undefined,
    destination_names: (pb.destination_names as string[] | undefined)?.length ? pb.destination_names : undefined,
    ingress_allowed_by: policiesFromProto(pb.ingress_allowed_by),
    egress_allowed_by: policiesFromProto(pb.egress_allowed_by),
    ingress_denied_by: policiesFromProto(pb.ingress_denied_by),
    egress_denied_by: policiesFromProto(pb.egress_denied_by),
  };
  let order: readonly string[];
  if (type === 'L7') order = ORDER.l7;
  else if (evType === EVENT_TYPE.DROP) order = ORDER.drop;
  else if (evType === EVENT_TYPE.POLICY_VERDICT) {
    order = ORDER.verdict;
    f.policy_match_type = pb.policy_match_type ?? 0;
  } else order = ORDER.trace;
  if (f.policy_match_type === undefined && pb.policy_match_type !== undefined) f.policy_match_type = pb.policy_match_type;
  return pick(f, [...order, ...TAIL.filter((k) => !order.includes(k))]) as unknown as Flow;
}

/** FlowFilter fields our filters evaluate, by their (identical) names in `FilterSpec`. */
const SUPPORTED_FILTER_FIELDS = [
  'uuid',
  'source_pod',
  'destination_pod',
  'source_label',
  'destination_label',
  'source_identity',
  'destination_identity',
  'source_ip',
  'destination_ip',
  'source_port',
  'destination_port',
  'verdict',
  'drop_reason_desc',
  'event_type',
  'protocol',
  'http_method',
  'http_path',
  'http_url',
  'dns_query',
  'http_status_code',
  'traffic_direction',
  'reply',
  'node_name',
  'trace_id',
  'source_fqdn',
  'destination_fqdn',
  'tcp_flags',
  'ip_version',
] as const satisfies readonly (keyof FilterSpec)[];

/** A FlowFilter field a client set that Membrane cannot evaluate. */
export class UnsupportedFilterError extends Error {
  readonly field: string;
  constructor(field: string) {
    super(`FlowFilter.${field} is not supported by Membrane's observer`);
    this.field = field;
  }
}

/**
 * A `flow.FlowFilter` message object → `FilterSpec`. A set field we cannot evaluate throws
 * `UnsupportedFilterError`: answering with more flows than asked would be wrong.
 */
export function filterFromProto(pb: Obj): FilterSpec {
  const spec: Obj = {};
  for (const [key, value] of Object.entries(pb)) {
    // A message field (`experimental`) is set when it holds anything; a repeated one when not empty.
    if (!Array.isArray(value)) {
      if (value !== null && typeof value === 'object' && Object.values(value as Obj).some((v) => v !== null && v !== undefined && (!Array.isArray(v) || v.length > 0))) {
        throw new UnsupportedFilterError(key);
      }
      continue;
    }
    if (value.length === 0) continue;
    if (!(SUPPORTED_FILTER_FIELDS as readonly string[]).includes(key)) throw new UnsupportedFilterError(key);
    spec[key] =
      key === 'event_type'
        ? (value as Obj[]).map((e) => ({ type: (e.type as number | undefined) ?? 0, ...(e.match_sub_type ? { sub_type: (e.sub_type as number | undefined) ?? 0, match_sub_type: true } : {}) }))
        : value;
  }
  return spec as FilterSpec;
}

/** `FilterSpec` → a `flow.FlowFilter` message object (the field names are Hubble's already). */
export function filterToProto(spec: FilterSpec): Obj {
  const pb: Obj = {};
  for (const [key, value] of Object.entries(spec)) {
    if (!Array.isArray(value) || value.length === 0) continue;
    pb[key] = key === 'event_type' ? (value as Obj[]).map((e) => ({ type: e.type, ...(e.match_sub_type ? { match_sub_type: true, sub_type: e.sub_type ?? 0 } : {}) })) : value;
  }
  return pb;
}
