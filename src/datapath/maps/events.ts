/**
 * membrane_events (bpf/lib/events.h): ring buffer of drop, policy-verdict and trace events. `type`
 * is a Cilium monitor message type, `verdict` a Hubble verdict number, `reason` a drop reason or a
 * trace's observation point and `trace_reason` a trace's conntrack state: read with the tables of
 * src/codes (observation points: src/observe TRACE_OBSERVATION_POINTS). A policy-verdict event carries the entry's match
 * type (`policy_match_type`); a denied packet gives a DROPPED policy verdict, then its drop.
 */
import { defineStruct } from '../layout.js';

export const EVENTS_MAP = 'membrane_events';
export const EVENT_DIRECTION = { ingress: 1, egress: 2 } as const;

export const flowEvent = defineStruct('flow_event', {
  ts_ns: 'u64',
  saddr: 'be32',
  daddr: 'be32',
  sport: 'be16',
  dport: 'be16',
  src_identity: 'u32',
  dst_identity: 'u32',
  ifindex: 'u32',
  endpoint_id: 'u16',
  proxy_port: 'be16',
  type: 'u8',
  verdict: 'u8',
  reason: 'u8',
  direction: 'u8',
  protocol: 'u8',
  tcp_flags: 'u8',
  icmp_type: 'u8',
  /** Cilium's POLICY_MATCH_* (0 none … 4 all) of a policy verdict; 0 on drops. */
  match_type: 'u8',
  /** Cilium's TRACE_REASON_* (src/codes TRACE_REASON) of a trace: the packet's conntrack state; TRACE_REASON_UNKNOWN on other events. */
  trace_reason: 'u8',
  reserved_1: 'u8',
  reserved_2: 'u16',
});

export type FlowEvent = ReturnType<typeof flowEvent.decode>;
