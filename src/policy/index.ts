/**
 * Public surface of the policy module: pure, synchronous, no I/O.
 * See ./README.md for the design and data flow.
 */
export type { Label, EndpointLabelInput } from './api/labels.js';
export { parseLabel, formatLabel, endpointLabels, parseLabelList, LABEL_KEY, LABEL_SOURCE } from './api/labels.js';
export type {
  PolicyKind,
  PolicyObject,
  PolicyProblem,
  LoadResult,
  Rule,
  PeerRule,
  Peer,
  PortSpec,
  Selector,
  Requirement,
  L7Spec,
  CidrGroup,
} from './api/types.js';
export { PROTO } from './api/types.js';
export type { LoadOptions, DocumentResult } from './api/load.js';
export { loadPolicyText, validatePolicyText, formatProblem, formatWarning, sameObject, definedElsewhereProblem, MAX_POLICY_FILE_BYTES } from './api/load.js';
export type { FqdnSelectorInfo } from './api/cidrs.js';
export { policyCidrs, policyFqdnSelectors } from './api/cidrs.js';
export { MAX_FQDN_LENGTH, toFQDN, fqdnSelectorKey, patternRegex, nameRegex, isAllStars, validateMatchName, validateMatchPattern } from './api/fqdn.js';
export { selectorMatches, formatSelector } from './api/selector.js';
export { validateServerName, serverNameMatches } from './api/server-name.js';

export type { Identity, NamedPort } from './resolve/identity.js';
export { RESERVED_IDENTITY, reservedIdentities, cidrIdentityLabels, worldLabels } from './resolve/identity.js';
export type {
  MapVerdict,
  RuleRef,
  HttpRule,
  HttpHeaderMatchRule,
  L7Rules,
  MapEntry,
  DirectionPolicy,
  EndpointPolicy,
  LookupResult,
  DropReason,
} from './resolve/types.js';
export { DROP_REASON } from './resolve/types.js';
export type { EndpointInput, ServiceInput, ResolveInput, SelectedRule } from './resolve/resolve.js';
export { resolveEndpointPolicy, selectingRules, isEnforced, rangeToPrefixes } from './resolve/resolve.js';
export { appendEntries, appendList, extendsList, lookupPolicy, VERDICT_PRECEDENCE } from './resolve/lookup.js';
export { PolicyEngine, type EngineResolution } from './resolve/engine.js';
export { FreshIdentityMemo, type FreshEntries, type FreshResolveInput } from './resolve/fresh-memo.js';
export type { HttpRequestInfo } from './resolve/l7.js';
export { evaluateHttp, evaluateDns, evaluateTls } from './resolve/l7.js';
export type { L7Request, L7Flow, L7Reason, L7Decision, L7DirectionDecision } from './resolve/decide.js';
export { decideL7, decideL7Direction, requestText } from './resolve/decide.js';
export { mergeSlashes, normalizeRequestTarget, removeDotSegments, type NormalizedTarget } from './resolve/normalize-path.js';
export type { TraceInput, TraceResult, TraceDirection } from './resolve/trace.js';
export type { TraceEndpointInput, TraceInputField, NamedPortProtocol, EntityPolicy } from './resolve/trace-side.js';
export { TraceInputError, traceSide, NAMED_PORT_PROTOCOL } from './resolve/trace-side.js';
export { tracePolicy } from './resolve/trace.js';
export type { VisibilityPolicy, VisibilityPort, VisibilityParser, VisibilityParse } from './api/visibility.js';
export {
  parseProxyVisibility,
  visibilityAnnotation,
  PROXY_VISIBILITY_ANNOTATION,
  PROXY_VISIBILITY_ANNOTATION_ALIAS,
  MAX_VISIBILITY_LENGTH,
} from './api/visibility.js';
export { applyVisibility, allowAllRules } from './resolve/visibility.js';
