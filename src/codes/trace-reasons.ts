/**
 * Trace reasons: the conntrack state of a traced packet, `trace_reason` of a datapath trace event
 * (Cilium `bpf/lib/trace.h` `enum trace_reason`, `pkg/monitor/datapath_trace.go` `TraceReason*`),
 * and the `TraceReason` Hubble puts in the flow (`api/v1/flow/flow.proto`; Hubble's
 * `decodeTraceReason` maps the datapath number to it, 0 being the proto's UNKNOWN). Hubble's
 * `is_reply` of a trace is "the reason is CT_REPLY" (`decodeIsReply`), for every known reason.
 * `bpf/lib/events.h` defines the reasons Membrane's programs emit with Cilium's C names, checked
 * against this table by a unit test.
 */

/** flow.proto `TraceReason` names of the reasons in the table, as Hubble's JSON spells them. */
export type TraceReasonName = 'TRACE_REASON_UNKNOWN' | 'NEW' | 'ESTABLISHED' | 'REPLY' | 'RELATED';

export interface TraceReasonRow {
  /** The datapath number (Cilium's). */
  readonly code: number;
  readonly key: string;
  readonly cName: `TRACE_REASON_${string}`;
  /** flow.proto `TraceReason` enum name (the JSON spelling), and its number. */
  readonly protoName: TraceReasonName;
  readonly protoCode: number;
}

const ROWS = [
  { code: 0, key: 'POLICY', cName: 'TRACE_REASON_POLICY', protoName: 'NEW', protoCode: 1 },
  { code: 1, key: 'CT_ESTABLISHED', cName: 'TRACE_REASON_CT_ESTABLISHED', protoName: 'ESTABLISHED', protoCode: 2 },
  { code: 2, key: 'CT_REPLY', cName: 'TRACE_REASON_CT_REPLY', protoName: 'REPLY', protoCode: 3 },
  { code: 3, key: 'CT_RELATED', cName: 'TRACE_REASON_CT_RELATED', protoName: 'RELATED', protoCode: 4 },
  { code: 5, key: 'UNKNOWN', cName: 'TRACE_REASON_UNKNOWN', protoName: 'TRACE_REASON_UNKNOWN', protoCode: 0 },
] as const satisfies readonly TraceReasonRow[];

type Row = (typeof ROWS)[number];

/** `TRACE_REASON.CT_REPLY === 2`. */
export const TRACE_REASON = Object.freeze(Object.fromEntries(ROWS.map((r) => [r.key, r.code]))) as {
  readonly [R in Row as R['key']]: R['code'];
};

const BY_CODE = new Map<number, Row>(ROWS.map((r) => [r.code, r]));

/** The row of a datapath trace reason; undefined for a number Membrane does not know. */
export function traceReasonOfCode(code: number): TraceReasonRow | undefined {
  return BY_CODE.get(code);
}

/** Every row, ascending by code. */
export function traceReasons(): readonly TraceReasonRow[] {
  return ROWS;
}
