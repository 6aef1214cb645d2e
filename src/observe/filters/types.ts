import type { Verdict } from '../../codes/index.js';
import type { Flow, TCPFlags, TrafficDirection } from '../flow.js';

/** Hubble's `IPVersion` enum names (`IP_NOT_USED`: a flow without an IP layer). */
export type IPVersionName = 'IP_NOT_USED' | 'IPv4' | 'IPv6';

/** A compiled criterion: true when the flow matches. */
export type FilterFunc = (flow: Flow) => boolean;

/** An event type to match; `sub_type` is compared only when `match_sub_type` is set. */
export interface EventTypeFilter {
  type: number;
  sub_type?: number;
  match_sub_type?: boolean;
}

/**
 * One group of criteria, named as Hubble's `FlowFilter` (JSON form). Every criterion set in a group
 * must match (AND); the values listed inside one criterion are alternatives (OR). Unset or empty
 * criteria match everything.
 */
export interface FilterSpec {
  uuid?: string[];
  /** `[namespace/]pod-name-prefix`; a bare name means namespace `default`, `ns/` any pod in ns. */
  source_pod?: string[];
  destination_pod?: string[];
  /** Label selectors: `k8s:app=x`, `class in (a,b)`, `!foo`, comma = AND. */
  source_label?: string[];
  destination_label?: string[];
  source_identity?: number[];
  destination_identity?: number[];
  /** Exact addresses or CIDRs. */
  source_ip?: string[];
  destination_ip?: string[];
  source_port?: string[];
  destination_port?: string[];
  verdict?: Verdict[];
  drop_reason_desc?: string[];
  event_type?: EventTypeFilter[];
  /** tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns, kafka. */
  protocol?: string[];
  http_method?: string[];
  /** Regexes searched in the URL's path. */
  http_path?: string[];
  /** Regexes searched in the whole URL. */
  http_url?: string[];
  /** Regexes searched in a DNS flow's query name (`api.github.com.`). */
  dns_query?: string[];
  /** `200`, or a prefix `2+`, `40+`. */
  http_status_code?: string[];
  traffic_direction?: TrafficDirection[];
  reply?: boolean[];
  node_name?: string[];
  trace_id?: string[];
  /** Hubble FQDN patterns (`*` = any run of name characters) matched against `source_names`. */
  source_fqdn?: string[];
  destination_fqdn?: string[];
  /** A flow matches a value when it carries every flag the value sets (subset match). */
  tcp_flags?: TCPFlags[];
  ip_version?: IPVersionName[];
}

/** Allow groups are OR-ed; a flow passes if any allow group matches in full and no deny group does. */
export interface FilterSet {
  allow: FilterSpec[];
  deny: FilterSpec[];
}
