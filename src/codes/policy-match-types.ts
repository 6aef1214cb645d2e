/**
 * Policy match types: `policy_match_type` of a policy-verdict flow, what the deciding policy
 * entry matched on (Cilium `bpf/lib/policy.h` `POLICY_MATCH_*`, `pkg/monitor/api/types.go`
 * `PolicyMatchType` and its `String()`, the name `hubble observe` prints as
 * `policy-verdict:<name>`). `bpf/lib/policy.h` defines them with Cilium's C names, checked
 * against this table by a unit test.
 */

export interface PolicyMatchTypeRow {
  readonly code: number;
  readonly key: string;
  readonly cName: `POLICY_MATCH_${string}`;
  /** What Hubble prints, e.g. `L3-L4`; lower-cased it is the `match` label of `hubble_policy_verdicts_total`. */
  readonly name: string;
}

const ROWS = [
  { code: 0, key: 'NONE', cName: 'POLICY_MATCH_NONE', name: 'none' },
  { code: 1, key: 'L3_ONLY', cName: 'POLICY_MATCH_L3_ONLY', name: 'L3-Only' },
  { code: 2, key: 'L3_L4', cName: 'POLICY_MATCH_L3_L4', name: 'L3-L4' },
  { code: 3, key: 'L4_ONLY', cName: 'POLICY_MATCH_L4_ONLY', name: 'L4-Only' },
  { code: 4, key: 'ALL', cName: 'POLICY_MATCH_ALL', name: 'all' },
] as const satisfies readonly PolicyMatchTypeRow[];

type Row = (typeof ROWS)[number];

/** `POLICY_MATCH_TYPE.L3_L4 === 2`. */
export const POLICY_MATCH_TYPE = Object.freeze(Object.fromEntries(ROWS.map((r) => [r.key, r.code]))) as {
  readonly [R in Row as R['key']]: R['code'];
};

/** `2` → `'L3-L4'`, as Hubble prints it. */
export const POLICY_MATCH_TYPE_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(ROWS.map((r) => [r.code, r.name])),
);

/** Every row, ascending by code. */
export function policyMatchTypes(): readonly PolicyMatchTypeRow[] {
  return ROWS;
}
