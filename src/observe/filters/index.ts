/**
 * Flow filters, one file per criterion (Hubble `pkg/hubble/filters`). A `FilterSet` is compiled
 * once into a predicate: a flow passes if any allow group matches in full (every criterion set in
 * that group) and no deny group matches. No allow groups means everything is allowed.
 */

import type { Flow } from '../flow.js';
import { dropReasonDescFilters } from './drop-reason-desc.js';
import { eventTypeFilters } from './event-type.js';
import { fqdnFilters } from './fqdn.js';
import { httpMethodFilters } from './http-method.js';
import { httpPathFilters } from './http-path.js';
import { dnsQueryFilters } from './dns-query.js';
import { httpStatusFilters } from './http-status.js';
import { httpUrlFilters } from './http-url.js';
import { identityFilters } from './identity.js';
import { ipFilters } from './ip.js';
import { ipVersionFilters } from './ip-version.js';
import { labelFilters } from './label.js';
import { nodeNameFilters } from './node-name.js';
import { podFilters } from './pod.js';
import { portFilters } from './port.js';
import { protocolFilters } from './protocol.js';
import { replyFilters } from './reply.js';
import { tcpFlagsFilters } from './tcp-flags.js';
import { traceIdFilters } from './trace-id.js';
import { trafficDirectionFilters } from './traffic-direction.js';
import type { FilterFunc, FilterSet, FilterSpec } from './types.js';
import { uuidFilters } from './uuid.js';
import { verdictFilters } from './verdict.js';

export type { EventTypeFilter, FilterFunc, FilterSet, FilterSpec, IPVersionName } from './types.js';
export { compileLabelSelector, parseLabel } from './label-selector.js';
export { parseNamespacedName } from './pod.js';

type Builder = (spec: FilterSpec) => FilterFunc[];

/** Cheap criteria first, so most flows are rejected before regexes and selectors run. */
const BUILDERS: readonly Builder[] = [
  uuidFilters,
  eventTypeFilters,
  verdictFilters,
  dropReasonDescFilters,
  replyFilters,
  trafficDirectionFilters,
  identityFilters,
  protocolFilters,
  ipVersionFilters,
  tcpFlagsFilters,
  portFilters,
  ipFilters,
  podFilters,
  nodeNameFilters,
  fqdnFilters,
  traceIdFilters,
  labelFilters,
  httpStatusFilters,
  httpMethodFilters,
  httpPathFilters,
  httpUrlFilters,
  dnsQueryFilters,
];

/** One group → a predicate that is true when every criterion set in it matches. */
export function compileFilterSpec(spec: FilterSpec): FilterFunc {
  const fs = BUILDERS.flatMap((b) => b(spec));
  if (fs.length === 0) return () => true;
  if (fs.length === 1) return fs[0] as FilterFunc;
  return (flow: Flow) => {
    for (const f of fs) if (!f(flow)) return false;
    return true;
  };
}

/** Throws `MEMBRANE_ERR_OBSERVE_FILTER` naming the criterion when a value cannot be compiled. */
export function compileFilters(set: Partial<FilterSet>): FilterFunc {
  const allow = (set.allow ?? []).map(compileFilterSpec);
  const deny = (set.deny ?? []).map(compileFilterSpec);
  if (allow.length === 0 && deny.length === 0) return () => true;
  return (flow: Flow) => {
    if (allow.length > 0 && !allow.some((f) => f(flow))) return false;
    return !deny.some((f) => f(flow));
  };
}
