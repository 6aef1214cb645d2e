/**
 * The pieces of a printed flow, as Hubble's printer builds them (`hubble/pkg/printer/printer.go`):
 * timestamp, endpoint names, identities, event type and verdict.
 */

import { dropReasonMessage, EVENT_TYPE } from '../../codes/index.js';
import { flowPorts, POLICY_MATCH_TYPE_NAMES, TRACE_OBSERVATION_POINTS, type Flow, type FlowEndpoint } from '../flow.js';
import { reservedIdentityName } from '../identities.js';

export type TimeZone = 'UTC' | 'local';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Go's `time.StampMilli` (`Jan _2 15:04:05.000`); fractions are truncated, bad input gives `N/A`. */
export function formatStampMilli(time: string, zone: TimeZone = 'UTC'): string {
  const m = RFC3339.exec(time);
  if (!m) return 'N/A';
  const millis = ((m[7] ?? '') + '000').slice(0, 3);
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${millis}${m[8]}`);
  if (Number.isNaN(date.getTime())) return 'N/A';
  const utc = zone === 'UTC';
  const month = MONTHS[utc ? date.getUTCMonth() : date.getMonth()];
  const day = String(utc ? date.getUTCDate() : date.getDate()).padStart(2, ' ');
  const h = pad2(utc ? date.getUTCHours() : date.getHours());
  const min = pad2(utc ? date.getUTCMinutes() : date.getMinutes());
  const s = pad2(utc ? date.getUTCSeconds() : date.getSeconds());
  return `${month} ${day} ${h}:${min}:${s}.${millis}`;
}

function joinHostPort(host: string, port: string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `namespace/pod:port` when the endpoint has a pod name (and translation is on), else `ip:port`. */
export function hostname(ip: string, port: number | undefined, ep: FlowEndpoint, names: readonly string[] | undefined, translate: boolean): string {
  let host = ip;
  if (translate) {
    if (ep.pod_name !== '') host = ep.namespace !== '' ? `${ep.namespace}/${ep.pod_name}` : ep.pod_name;
    else if (names && names.length > 0) host = names.join(',');
  }
  return port !== undefined && port !== 0 ? joinHostPort(host, String(port)) : host;
}

/** Source and destination as printed; empty when the flow has no IP layer. */
export function hostNames(flow: Flow, translate: boolean): [string, string] {
  if (!flow.IP) return ['', ''];
  const ports = flowPorts(flow);
  return [
    hostname(flow.IP.source, ports?.source_port, flow.source, flow.source_names, translate),
    hostname(flow.IP.destination, ports?.destination_port, flow.destination, flow.destination_names, translate),
  ];
}

/** `(ID:25698)`, or `(world)` for reserved identities. */
export function formatIdentity(id: number): string {
  const reserved = reservedIdentityName(id);
  return reserved !== undefined ? `(${reserved})` : `(ID:${id})`;
}

/** `http-request`, `dns-response proxy`, `Policy denied`, `policy-verdict:L3-L4 INGRESS`, `to-endpoint`… */
export function flowTypeName(flow: Flow): string {
  const l7 = flow.l7;
  if (l7) {
    let proto = 'l7';
    let type = l7.type.toLowerCase();
    if (l7.http) proto = 'http';
    else if (l7.dns) {
      proto = 'dns';
      type += ` ${l7.dns.observation_source ?? ''}`;
    }
    return `${proto}-${type}`;
  }
  const sub = flow.event_type.sub_type ?? 0;
  switch (flow.event_type.type) {
    case EVENT_TYPE.TRACE:
      return (TRACE_OBSERVATION_POINTS as Record<number, string>)[sub] ?? String(sub);
    case EVENT_TYPE.DROP:
      return dropReasonMessage(sub);
    case EVENT_TYPE.POLICY_VERDICT:
      return `policy-verdict:${POLICY_MATCH_TYPE_NAMES[flow.policy_match_type ?? 0] ?? 'unknown'} ${flow.traffic_direction}`;
  }
  return 'UNKNOWN';
}

/** The verdict word; policy-verdict events say ALLOWED / DENIED / AUDITED instead. */
export function verdictName(flow: Flow): string {
  const pv = flow.event_type.type === EVENT_TYPE.POLICY_VERDICT;
  switch (flow.verdict) {
    case 'FORWARDED':
    case 'REDIRECTED':
      return pv ? 'ALLOWED' : flow.verdict;
    case 'DROPPED':
    case 'ERROR':
      return pv ? 'DENIED' : flow.verdict;
    case 'AUDIT':
      return pv ? 'AUDITED' : flow.verdict;
    default:
      return flow.verdict;
  }
}
