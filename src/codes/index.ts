/**
 * codes: the numbers the kernel, the agent and the printers share, each with the names Cilium and
 * Hubble give it — drop reasons, flow verdicts and monitor message (event) types. A leaf: every
 * module may import it and it imports nothing. The C headers in bpf/lib are checked against these
 * tables by name and number (test/unit/codes).
 */
export {
  DROP_REASON,
  dropReasonCode,
  dropReasonMessage,
  dropReasonName,
  dropReasons,
  isDropReasonName,
  type DropReasonCName,
  type DropReasonCode,
  type DropReasonInfo,
  type DropReasonName,
} from './drop-reasons.js';
export { VERDICT, VERDICTS, verdictOfCode, type Verdict, type VerdictCode } from './verdicts.js';
export { EVENT_TYPE, EVENT_TYPE_NAMES, eventTypes, type EventTypeCode, type EventTypeName, type MessageTypeRow } from './message-types.js';
export { POLICY_MATCH_TYPE, POLICY_MATCH_TYPE_NAMES, policyMatchTypes, type PolicyMatchTypeRow } from './policy-match-types.js';
export { TRACE_REASON, traceReasonOfCode, traceReasons, type TraceReasonName, type TraceReasonRow } from './trace-reasons.js';
