/**
 * The one flow schema for every verdict Membrane observes: kernel drops and policy verdicts from
 * the datapath, L7 requests and responses from the proxies.
 *
 * Field names are Hubble's (`api/v1/flow/flow.proto`, JSON form), so a flow printed with
 * `membrane observe -o json` reads like `hubble observe -o json`. Enumerations are string unions
 * (Hubble's JSON spelling); numeric codes that Hubble keeps numeric (event types, drop reasons,
 * policy match types) stay numbers. Verdicts, event types and drop reasons come from src/codes,
 * the table the datapath shares.
 */

import type { DropReasonName, TraceReasonName, Verdict } from '../codes/index.js';

export const TRAFFIC_DIRECTIONS = ['INGRESS', 'EGRESS'] as const;
export type TrafficDirection = (typeof TRAFFIC_DIRECTIONS)[number];

export const FLOW_TYPES = ['L3_L4', 'L7'] as const;
export type FlowType = (typeof FLOW_TYPES)[number];

export const L7_FLOW_TYPES = ['REQUEST', 'RESPONSE', 'SAMPLE'] as const;
export type L7FlowType = (typeof L7_FLOW_TYPES)[number];

/** Trace observation points: `event_type.sub_type` of a TRACE event. */
export const TRACE_OBSERVATION_POINTS = {
  0: 'to-endpoint',
  1: 'to-proxy',
  2: 'to-host',
  3: 'to-stack',
  4: 'to-overlay',
  5: 'from-endpoint',
  6: 'from-proxy',
  7: 'from-host',
  8: 'from-stack',
  9: 'from-overlay',
  10: 'from-network',
  11: 'to-network',
} as const satisfies Record<number, string>;

/** `policy_match_type` of a policy-verdict event, with the name Hubble prints (the table is src/codes'). */
export { POLICY_MATCH_TYPE, POLICY_MATCH_TYPE_NAMES } from '../codes/index.js';

/** A workload endpoint as a flow sees it. `ID` is the local endpoint id (0 when not local). */
export interface FlowEndpoint {
  ID: number;
  identity: number;
  namespace: string;
  /** `source:key=value`, e.g. `k8s:class=deathstar`, `reserved:world`; sorted. */
  labels: string[];
  pod_name: string;
  cluster_name?: string;
}

export interface FlowIP {
  source: string;
  destination: string;
  ipVersion?: 'IPv4' | 'IPv6';
}

export interface TCPFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

export interface PortPair {
  source_port: number;
  destination_port: number;
}

export type Layer4 =
  | { TCP: PortPair & { flags?: TCPFlags } }
  | { UDP: PortPair }
  | { SCTP: PortPair }
  | { ICMPv4: { type: number; code: number } }
  | { ICMPv6: { type: number; code: number } };

export interface HTTPHeader {
  key: string;
  value: string;
}

export interface HTTPRecord {
  /** Response status; absent on requests. */
  code?: number;
  method: string;
  url: string;
  protocol: string;
  headers?: HTTPHeader[];
}

export interface DNSRecord {
  query: string;
  ips?: string[];
  ttl?: number;
  cnames?: string[];
  observation_source?: string;
  rcode?: number;
  qtypes?: string[];
  rrtypes?: string[];
}

export interface Layer7 {
  type: L7FlowType;
  latency_ns?: number;
  http?: HTTPRecord;
  dns?: DNSRecord;
}

export interface CiliumEventType {
  /** A monitor message type: `EVENT_TYPE` of src/codes. */
  type: number;
  sub_type?: number;
}

export interface TraceContext {
  parent: { trace_id: string };
}

/** A policy that allowed or denied a flow (Hubble `Policy`). */
export interface FlowPolicy {
  name: string;
  namespace?: string;
  kind?: string;
}

export interface Flow {
  /** RFC 3339 timestamp, UTC, up to nanoseconds. */
  time: string;
  uuid: string;
  verdict: Verdict;
  /** Deprecated numeric twin of `drop_reason_desc`, kept because Hubble still sets it. */
  drop_reason?: number;
  drop_reason_desc?: DropReasonName;
  IP?: FlowIP;
  l4?: Layer4;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  Type: FlowType;
  l7?: Layer7;
  traffic_direction: TrafficDirection;
  /** Absent when unknown (drops); Hubble prints `<>` then. */
  is_reply?: boolean;
  event_type: CiliumEventType;
  /** A trace's conntrack state (flow.proto `TraceReason`: NEW, ESTABLISHED, REPLY, RELATED); absent when unknown. */
  trace_reason?: TraceReasonName;
  proxy_port?: number;
  policy_match_type?: number;
  /** Human summary as Hubble builds it, e.g. `TCP Flags: SYN` or `HTTP/1.1 GET http://a/b`. */
  Summary: string;
  node_name: string;
  trace_context?: TraceContext;
  source_names?: string[];
  destination_names?: string[];
  ingress_allowed_by?: FlowPolicy[];
  egress_allowed_by?: FlowPolicy[];
  ingress_denied_by?: FlowPolicy[];
  egress_denied_by?: FlowPolicy[];
}

/** Ports of a flow's L4 header, or null for portless protocols (ICMP) and flows without L4. */
export function flowPorts(flow: Pick<Flow, 'l4'>): PortPair | null {
  const l4 = flow.l4;
  if (!l4) return null;
  if ('TCP' in l4) return l4.TCP;
  if ('UDP' in l4) return l4.UDP;
  if ('SCTP' in l4) return l4.SCTP;
  return null;
}

/** An endpoint with nothing known about it but its identity. */
export function emptyEndpoint(identity = 0): FlowEndpoint {
  return { ID: 0, identity, namespace: '', labels: [], pod_name: '' };
}
