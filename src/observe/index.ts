/**
 * observe: the flow schema, the flow ring, Hubble-style filters and printers.
 * See README.md for the data flow. Imports nothing of Membrane's but `errors`, `policy` and the
 * shared code tables of `codes` (re-exported below, since they are part of the flow schema).
 */

export {
  emptyEndpoint,
  FLOW_TYPES,
  flowPorts,
  L7_FLOW_TYPES,
  POLICY_MATCH_TYPE,
  POLICY_MATCH_TYPE_NAMES,
  TRACE_OBSERVATION_POINTS,
  TRAFFIC_DIRECTIONS,
  type CiliumEventType,
  type DNSRecord,
  type Flow,
  type FlowEndpoint,
  type FlowIP,
  type FlowPolicy,
  type FlowType,
  type HTTPHeader,
  type HTTPRecord,
  type L7FlowType,
  type Layer4,
  type Layer7,
  type PortPair,
  type TCPFlags,
  type TraceContext,
  type TrafficDirection,
} from './flow.js';
export {
  EVENT_TYPE,
  EVENT_TYPE_NAMES,
  VERDICTS,
  type EventTypeCode,
  type EventTypeName,
  type Verdict,
  DROP_REASON,
  dropReasonCode,
  dropReasonMessage,
  dropReasonName,
  dropReasons,
  isDropReasonName,
  type DropReasonCode,
  type DropReasonName,
} from '../codes/index.js';
export { parseIdentity, RESERVED_IDENTITIES, reservedIdentityName, type ReservedIdentityName } from './identities.js';
export {
  dnsRcodeName,
  dnsRequestFlow,
  dnsRequestSummary,
  dnsResponseFlow,
  dnsResponseSummary,
  dropFlow,
  flowTime,
  httpRequestFlow,
  httpRequestSummary,
  httpResponseFlow,
  httpResponseSummary,
  ipVersionOf,
  l3l4Summary,
  policyVerdictFlow,
  tcpFlagsSummary,
  traceFlow,
  type DnsExchangeInput,
  type FlowTimeInput,
  type HttpExchangeInput,
  type L3L4EventInput,
} from './build.js';
export { DEFAULT_RING_CAPACITY, FlowRing, type FlowListener, type FlowPredicate, type FlowRingOptions } from './ring.js';
export {
  compileFilters,
  compileFilterSpec,
  compileLabelSelector,
  parseLabel,
  parseNamespacedName,
  type EventTypeFilter,
  type FilterFunc,
  type FilterSet,
  type FilterSpec,
} from './filters/index.js';
export { FILTER_FLAGS, FlowFilterBuilder, filtersFromFlags, SHORT_FILTER_FLAGS, UNSUPPORTED_FILTER_FLAGS, type FilterFlagName } from './flags.js';
export { rawFilters } from './raw-filters.js';
export * from './printer/index.js';
