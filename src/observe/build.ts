/**
 * Builders that turn a decoded datapath or proxy event into a `Flow`, filling the fields Hubble
 * fills for that kind of event (event type, reply flag, drop reason pair, summary), so producers
 * only say what happened.
 */

import { randomUUID } from 'node:crypto';
import { DROP_REASON, dropReasonName, EVENT_TYPE, type TraceReasonName } from '../codes/index.js';
import {
  type DNSRecord,
  type Flow,
  type FlowEndpoint,
  type FlowIP,
  type FlowPolicy,
  type HTTPRecord,
  type Layer4,
  type TCPFlags,
  type TraceContext,
  type TrafficDirection,
} from './flow.js';

/** A timestamp: a Date, an RFC 3339 string, or nanoseconds since the epoch. */
export type FlowTimeInput = Date | string | bigint;

/** RFC 3339 UTC; bigint nanoseconds keep their full precision. */
export function flowTime(t: FlowTimeInput = new Date()): string {
  if (typeof t === 'string') return t;
  if (t instanceof Date) return t.toISOString();
  const ms = t / 1_000_000n;
  const frac = (t % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(Number(ms)).toISOString().slice(0, 19)}.${frac}Z`;
}

export function ipVersionOf(ip: string): 'IPv4' | 'IPv6' {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

const TCP_FLAG_ORDER = ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'] as const;

/** `{SYN:true, ACK:true}` → `SYN, ACK` (Hubble's order, not the header's). */
export function tcpFlagsSummary(flags: TCPFlags | undefined): string {
  if (!flags) return '';
  return TCP_FLAG_ORDER.filter((f) => flags[f] === true).join(', ');
}

const ICMP4_TYPES: Readonly<Record<number, string>> = {
  0: 'EchoReply',
  3: 'DestinationUnreachable',
  4: 'SourceQuench',
  5: 'Redirect',
  8: 'EchoRequest',
  9: 'RouterAdvertisement',
  10: 'RouterSolicitation',
  11: 'TimeExceeded',
  12: 'ParameterProblem',
  13: 'TimestampRequest',
  14: 'TimestampReply',
};
const ICMP4_UNREACH: Readonly<Record<number, string>> = {
  0: 'Net',
  1: 'Host',
  2: 'Protocol',
  3: 'Port',
  4: 'FragmentationNeeded',
  13: 'CommAdminProhibited',
};
const ICMP6_TYPES: Readonly<Record<number, string>> = {
  1: 'DestinationUnreachable',
  2: 'PacketTooBig',
  3: 'TimeExceeded',
  4: 'ParameterProblem',
  128: 'EchoRequest',
  129: 'EchoReply',
  133: 'RouterSolicitation',
  134: 'RouterAdvertisement',
  135: 'NeighborSolicitation',
  136: 'NeighborAdvertisement',
  137: 'Redirect',
};

function icmpTypeCode(names: Readonly<Record<number, string>>, type: number, code: number, unreach?: Readonly<Record<number, string>>): string {
  const name = names[type];
  if (name === undefined) return `${type}(${code})`;
  if (unreach && type === 3) return `${name}(${unreach[code] ?? code})`;
  return code === 0 ? name : `${name}(${code})`;
}

/** The summary Hubble gives an L3/L4 event, from its L4 header. */
export function l3l4Summary(l4: Layer4 | undefined): string {
  if (!l4) return '';
  if ('TCP' in l4) return `TCP Flags: ${tcpFlagsSummary(l4.TCP.flags)}`;
  if ('UDP' in l4) return 'UDP';
  if ('SCTP' in l4) return 'SCTP';
  if ('ICMPv4' in l4) return `ICMPv4 ${icmpTypeCode(ICMP4_TYPES, l4.ICMPv4.type, l4.ICMPv4.code, ICMP4_UNREACH)}`;
  return `ICMPv6 ${icmpTypeCode(ICMP6_TYPES, l4.ICMPv6.type, l4.ICMPv6.code)}`;
}

/** `HTTP/1.1 PUT http://deathstar/v1/exhaust-port` */
export function httpRequestSummary(http: Pick<HTTPRecord, 'protocol' | 'method' | 'url'>): string {
  return `${http.protocol} ${http.method} ${http.url}`;
}

/** `HTTP/1.1 403 0ms (PUT http://deathstar/v1/exhaust-port)`; milliseconds truncated, as Hubble. */
export function httpResponseSummary(http: Pick<HTTPRecord, 'protocol' | 'method' | 'url' | 'code'>, latencyNs: number): string {
  const ms = Math.floor(Math.max(0, latencyNs) / 1_000_000);
  return `${http.protocol} ${http.code ?? 0} ${ms}ms (${http.method} ${http.url})`;
}

/** What every L3/L4 event carries. */
export interface L3L4EventInput {
  time?: FlowTimeInput;
  uuid?: string;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  ip: FlowIP;
  l4?: Layer4;
  direction: TrafficDirection;
  nodeName: string;
  /** DNS names the source / destination address was learned through (Hubble's `source_names`). */
  sourceNames?: readonly string[];
  destinationNames?: readonly string[];
}

function l3l4Base(input: L3L4EventInput): Omit<Flow, 'verdict' | 'event_type' | 'Summary'> {
  const flow: Omit<Flow, 'verdict' | 'event_type' | 'Summary'> = {
    time: flowTime(input.time),
    uuid: input.uuid ?? randomUUID(),
    IP: { ipVersion: ipVersionOf(input.ip.source), ...input.ip },
    source: input.source,
    destination: input.destination,
    Type: 'L3_L4',
    traffic_direction: input.direction,
    node_name: input.nodeName,
  };
  if (input.sourceNames?.length) flow.source_names = [...input.sourceNames];
  if (input.destinationNames?.length) flow.destination_names = [...input.destinationNames];
  if (input.l4) flow.l4 = input.l4;
  return flow;
}

/** A packet the datapath dropped (monitor DROP event). Direction of a drop is unknown: no is_reply. */
export function dropFlow(input: L3L4EventInput & { reason: number }): Flow {
  const flow: Flow = {
    ...l3l4Base(input),
    verdict: 'DROPPED',
    drop_reason: input.reason,
    event_type: { type: EVENT_TYPE.DROP, sub_type: input.reason },
    Summary: l3l4Summary(input.l4),
  };
  const name = dropReasonName(input.reason);
  if (name) flow.drop_reason_desc = name;
  return flow;
}

/** A policy decision on the first packet of a connection (monitor POLICY_VERDICT event). */
export function policyVerdictFlow(
  input: L3L4EventInput & {
    verdict: 'FORWARDED' | 'DROPPED' | 'AUDIT' | 'REDIRECTED';
    matchType: number;
    /** For DROPPED: the reason (default POLICY_DENIED; POLICY_DENY for a deny rule). */
    dropReason?: number;
    proxyPort?: number;
  },
): Flow {
  const flow: Flow = {
    ...l3l4Base(input),
    verdict: input.verdict,
    event_type: { type: EVENT_TYPE.POLICY_VERDICT, sub_type: 0 },
    policy_match_type: input.matchType,
    Summary: l3l4Summary(input.l4),
  };
  if (input.verdict === 'DROPPED') {
    const reason = input.dropReason ?? DROP_REASON.POLICY_DENIED;
    flow.drop_reason = reason;
    const name = dropReasonName(reason);
    if (name) flow.drop_reason_desc = name;
  } else {
    // Allowed verdicts are emitted for a connection's first packet: never a reply.
    flow.is_reply = false;
  }
  if (input.proxyPort !== undefined) flow.proxy_port = input.proxyPort;
  return flow;
}

/**
 * A packet the datapath passed at an observation point (monitor TRACE event). `traceReason`: the
 * flow.proto TraceReason of its conntrack state, absent when unknown (Hubble leaves the enum's zero
 * value out); `isReply`: absent when unknown.
 */
export function traceFlow(
  input: L3L4EventInput & { observationPoint: number; isReply?: boolean; traceReason?: TraceReasonName; proxyPort?: number },
): Flow {
  const flow: Flow = {
    ...l3l4Base(input),
    verdict: 'FORWARDED',
    event_type: { type: EVENT_TYPE.TRACE, sub_type: input.observationPoint },
    Summary: l3l4Summary(input.l4),
  };
  if (input.isReply !== undefined) flow.is_reply = input.isReply;
  if (input.proxyPort !== undefined) flow.proxy_port = input.proxyPort;
  if (input.traceReason !== undefined && input.traceReason !== 'TRACE_REASON_UNKNOWN') flow.trace_reason = input.traceReason;
  return flow;
}

/** What an HTTP exchange seen by the proxy carries, from the client's side. */
export interface HttpExchangeInput {
  time?: FlowTimeInput;
  uuid?: string;
  /** The client. */
  source: FlowEndpoint;
  /** The server (original destination). */
  destination: FlowEndpoint;
  ip: FlowIP;
  sourcePort: number;
  destinationPort: number;
  direction: TrafficDirection;
  nodeName: string;
  proxyPort?: number;
  traceContext?: TraceContext;
  policies?: FlowPolicy[];
}

function l7Policies(flow: Flow, input: HttpExchangeInput, allowed: boolean): void {
  if (!input.policies || input.policies.length === 0) return;
  const key = `${input.direction === 'INGRESS' ? 'ingress' : 'egress'}_${allowed ? 'allowed' : 'denied'}_by` as const;
  flow[key] = input.policies;
}

/** The request half: FORWARDED, or DROPPED when policy denied it (Cilium's Denied → DROPPED). */
export function httpRequestFlow(
  input: HttpExchangeInput & { http: Omit<HTTPRecord, 'code'>; verdict: 'FORWARDED' | 'DROPPED' | 'ERROR' },
): Flow {
  const flow: Flow = {
    time: flowTime(input.time),
    uuid: input.uuid ?? randomUUID(),
    verdict: input.verdict,
    IP: { ipVersion: ipVersionOf(input.ip.source), ...input.ip },
    l4: { TCP: { source_port: input.sourcePort, destination_port: input.destinationPort } },
    source: input.source,
    destination: input.destination,
    Type: 'L7',
    l7: { type: 'REQUEST', http: input.http },
    traffic_direction: input.direction,
    is_reply: false,
    event_type: { type: EVENT_TYPE.ACCESS_LOG },
    Summary: httpRequestSummary(input.http),
    node_name: input.nodeName,
  };
  if (input.proxyPort !== undefined) flow.proxy_port = input.proxyPort;
  if (input.traceContext) flow.trace_context = input.traceContext;
  l7Policies(flow, input, input.verdict !== 'DROPPED');
  return flow;
}

/**
 * The response half. Endpoints, addresses and ports are those of the reply packet (server → client),
 * with is_reply set, so printers swap them back and draw `<-`, as Hubble does.
 */
export function httpResponseFlow(
  input: HttpExchangeInput & { http: HTTPRecord & { code: number }; latencyNs: number; verdict: 'FORWARDED' | 'ERROR' },
): Flow {
  const flow: Flow = {
    time: flowTime(input.time),
    uuid: input.uuid ?? randomUUID(),
    verdict: input.verdict,
    IP: { ipVersion: ipVersionOf(input.ip.destination), source: input.ip.destination, destination: input.ip.source },
    l4: { TCP: { source_port: input.destinationPort, destination_port: input.sourcePort } },
    source: input.destination,
    destination: input.source,
    Type: 'L7',
    l7: { type: 'RESPONSE', latency_ns: Math.max(0, Math.round(input.latencyNs)), http: input.http },
    traffic_direction: input.direction,
    is_reply: true,
    event_type: { type: EVENT_TYPE.ACCESS_LOG },
    Summary: httpResponseSummary(input.http, input.latencyNs),
    node_name: input.nodeName,
  };
  if (input.proxyPort !== undefined) flow.proxy_port = input.proxyPort;
  if (input.traceContext) flow.trace_context = input.traceContext;
  return flow;
}

/** Hubble's names for DNS response codes (gopacket `layers.DNSResponseCode.String()`). */
const DNS_RCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'No Error',
  1: 'Format Error',
  2: 'Server Failure',
  3: 'Non-Existent Domain',
  4: 'Not Implemented',
  5: 'Query Refused',
  6: 'Name Exists when it should not',
  7: 'RR Set Exists when it should not',
  8: 'RR Set that should exist does not',
  9: 'Server Not Authoritative for zone',
  10: 'Name not contained in zone',
};

export function dnsRcodeName(rcode: number): string {
  return DNS_RCODE_NAMES[rcode] ?? 'Unknown';
}

/** `DNS Query api.github.com. A` (Hubble `pkg/hubble/parser/seven/dns.go` dnsSummary). */
export function dnsRequestSummary(dns: Pick<DNSRecord, 'query' | 'qtypes'>): string {
  return `DNS Query ${dns.query} ${(dns.qtypes ?? []).join(',')}`;
}

/**
 * `DNS Answer "1.2.3.4,5.6.7.8" CNAMEs: "a.example." TTL: 3600 (Proxy api.github.com. A)`, or
 * `DNS Answer RCode: Non-Existent Domain TTL: 4294967295 (…)` for an error code (Hubble dnsSummary).
 */
export function dnsResponseSummary(dns: DNSRecord): string {
  const rcode = dns.rcode ?? 0;
  let answer: string;
  if (rcode !== 0) answer = `RCode: ${dnsRcodeName(rcode)}`;
  else {
    const parts: string[] = [];
    if (dns.ips && dns.ips.length > 0) parts.push(JSON.stringify(dns.ips.join(',')));
    if (dns.cnames && dns.cnames.length > 0) parts.push(`CNAMEs: ${JSON.stringify(dns.cnames.join(','))}`);
    answer = parts.join(' ');
  }
  const source = dns.observation_source === 'proxy' ? 'Proxy' : 'Query';
  return `DNS Answer ${answer} TTL: ${dns.ttl ?? 0} (${source} ${dns.query} ${(dns.qtypes ?? []).join(',')})`;
}

/** What a DNS exchange seen by the DNS proxy carries, from the client's side. */
export interface DnsExchangeInput extends HttpExchangeInput {
  /** The transport the client used. */
  transport: 'UDP' | 'TCP';
}

function dnsL4(input: DnsExchangeInput, reply: boolean): Layer4 {
  const ports = reply
    ? { source_port: input.destinationPort, destination_port: input.sourcePort }
    : { source_port: input.sourcePort, destination_port: input.destinationPort };
  return input.transport === 'UDP' ? { UDP: ports } : { TCP: ports };
}

/**
 * A query the DNS proxy judged: FORWARDED, or DROPPED when policy denied it (Cilium's Denied →
 * DROPPED). Only `query`, `qtypes` and `observation_source` are set, as Hubble does for requests.
 */
export function dnsRequestFlow(
  input: DnsExchangeInput & { dns: Pick<DNSRecord, 'query' | 'qtypes'>; verdict: 'FORWARDED' | 'DROPPED' | 'ERROR' },
): Flow {
  const dns: DNSRecord = { query: input.dns.query, observation_source: 'proxy', qtypes: input.dns.qtypes ?? [] };
  const flow: Flow = {
    time: flowTime(input.time),
    uuid: input.uuid ?? randomUUID(),
    verdict: input.verdict,
    IP: { ipVersion: ipVersionOf(input.ip.source), ...input.ip },
    l4: dnsL4(input, false),
    source: input.source,
    destination: input.destination,
    Type: 'L7',
    l7: { type: 'REQUEST', dns },
    traffic_direction: input.direction,
    is_reply: false,
    event_type: { type: EVENT_TYPE.ACCESS_LOG },
    Summary: dnsRequestSummary(dns),
    node_name: input.nodeName,
  };
  if (input.proxyPort !== undefined) flow.proxy_port = input.proxyPort;
  if (input.traceContext) flow.trace_context = input.traceContext;
  l7Policies(flow, input, input.verdict !== 'DROPPED');
  return flow;
}

/** The answer relayed (FORWARDED) or made up on failure (ERROR), as a reply from the server to the client. */
export function dnsResponseFlow(
  input: DnsExchangeInput & { dns: Omit<DNSRecord, 'observation_source'>; latencyNs: number; verdict: 'FORWARDED' | 'ERROR' },
): Flow {
  const dns: DNSRecord = {
    query: input.dns.query,
    ips: input.dns.ips ?? [],
    ttl: input.dns.ttl ?? 0,
    cnames: input.dns.cnames ?? [],
    observation_source: 'proxy',
    rcode: input.dns.rcode ?? 0,
    qtypes: input.dns.qtypes ?? [],
    rrtypes: input.dns.rrtypes ?? [],
  };
  const flow: Flow = {
    time: flowTime(input.time),
    uuid: input.uuid ?? randomUUID(),
    verdict: input.verdict,
    IP: { ipVersion: ipVersionOf(input.ip.destination), source: input.ip.destination, destination: input.ip.source },
    l4: dnsL4(input, true),
    source: input.destination,
    destination: input.source,
    Type: 'L7',
    l7: { type: 'RESPONSE', latency_ns: Math.max(0, Math.round(input.latencyNs)), dns },
    traffic_direction: input.direction,
    is_reply: true,
    event_type: { type: EVENT_TYPE.ACCESS_LOG },
    Summary: dnsResponseSummary(dns),
    node_name: input.nodeName,
  };
  if (input.proxyPort !== undefined) flow.proxy_port = input.proxyPort;
  if (input.traceContext) flow.trace_context = input.traceContext;
  return flow;
}
