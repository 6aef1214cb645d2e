/**
 * Flow verdicts: Hubble's `Verdict` enum (`api/v1/flow/flow.proto`). The JSON form is the name;
 * the datapath writes the number (`VERDICT_*` in `bpf/lib/events.h`, checked against this table).
 * 0 is `VERDICT_UNKNOWN`, which no flow carries.
 */

/** In enum order: `VERDICTS[i]` has the number `i + 1`. */
export const VERDICTS = ['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** Name → number: `VERDICT.REDIRECTED === 5`. */
export const VERDICT = Object.freeze(Object.fromEntries(VERDICTS.map((v, i) => [v, i + 1]))) as {
  readonly FORWARDED: 1;
  readonly DROPPED: 2;
  readonly ERROR: 3;
  readonly AUDIT: 4;
  readonly REDIRECTED: 5;
  readonly TRACED: 6;
  readonly TRANSLATED: 7;
};
export type VerdictCode = (typeof VERDICT)[Verdict];

/** `5` → `'REDIRECTED'`; undefined for 0 and unknown numbers. */
export function verdictOfCode(code: number): Verdict | undefined {
  return Number.isInteger(code) ? VERDICTS[code - 1] : undefined;
}
