/**
 * Monitor message types: `event_type.type` of a flow and the first byte of every datapath event
 * (Cilium `pkg/monitor/api/types.go` `MessageType*`, `bpf/lib/notify.h` `CILIUM_NOTIFY_*`).
 * 0–128 are datapath events, 129–255 agent events. Membrane's programs emit DROP and
 * POLICY_VERDICT; `bpf/lib/events.h` defines those with Cilium's C names, checked against this
 * table by a unit test.
 */

export interface MessageTypeRow {
  readonly code: number;
  readonly key: string;
  /** Cilium's C enum name; null for agent-level events. */
  readonly cName: `CILIUM_NOTIFY_${string}` | null;
  /** `MessageTypeName*`: what `--type` takes; null where the observe command takes none. */
  readonly typeName: string | null;
}

const ROWS = [
  { code: 1, key: 'DROP', cName: 'CILIUM_NOTIFY_DROP', typeName: 'drop' },
  { code: 2, key: 'DEBUG', cName: 'CILIUM_NOTIFY_DBG_MSG', typeName: 'debug' },
  { code: 3, key: 'CAPTURE', cName: 'CILIUM_NOTIFY_DBG_CAPTURE', typeName: 'capture' },
  { code: 4, key: 'TRACE', cName: 'CILIUM_NOTIFY_TRACE', typeName: 'trace' },
  { code: 5, key: 'POLICY_VERDICT', cName: 'CILIUM_NOTIFY_POLICY_VERDICT', typeName: 'policy-verdict' },
  { code: 6, key: 'REC_CAPTURE', cName: 'CILIUM_NOTIFY_CAPTURE', typeName: null },
  { code: 7, key: 'TRACE_SOCK', cName: 'CILIUM_NOTIFY_TRACE_SOCK', typeName: 'trace-sock' },
  { code: 129, key: 'ACCESS_LOG', cName: null, typeName: 'l7' },
  { code: 130, key: 'AGENT', cName: null, typeName: 'agent' },
] as const satisfies readonly MessageTypeRow[];

type Row = (typeof ROWS)[number];

/** `EVENT_TYPE.POLICY_VERDICT === 5` (Cilium `MessageTypePolicyVerdict`). */
export const EVENT_TYPE = Object.freeze(Object.fromEntries(ROWS.map((r) => [r.key, r.code]))) as {
  readonly [R in Row as R['key']]: R['code'];
};
export type EventTypeCode = Row['code'];

/** The names `--type` accepts, each with its event type (Cilium `MessageTypeNames`). */
export const EVENT_TYPE_NAMES = Object.freeze(
  Object.fromEntries(ROWS.flatMap((r) => (r.typeName === null ? [] : [[r.typeName, r.code]]))),
) as { readonly [R in Row as Exclude<R['typeName'], null>]: R['code'] };
export type EventTypeName = keyof typeof EVENT_TYPE_NAMES;

/** Every row, ascending by code, with Cilium's C name where the datapath defines one. */
export function eventTypes(): readonly MessageTypeRow[] {
  return ROWS;
}
