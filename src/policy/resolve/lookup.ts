/**
 * The datapath lookup, in TypeScript. `bpf/lib/policy.h` implements the same order; both share
 * the table of cases in test/unit/policy/lookup-table.ts.
 *
 * Precedence (one lookup per packet; `resolve` adds derived entries so this is always right):
 *   1. L3 lookup: the best entry for the exact peer identity (longest port prefix; a protocol-0
 *      entry is shorter than any protocol-specific one). If it is a deny, it is the answer.
 *   2. L4-only lookup: the best identity-0 entry. It is the answer if there was no L3 match, or it
 *      has higher precedence (deny > redirect > allow), or equal precedence and a strictly
 *      longer port prefix.
 *   3. Otherwise the L3 entry. Nothing matched: enforced → default deny (DROP 133,
 *      POLICY_DENIED); not enforced → default allow.
 */
import type { DirectionPolicy, LookupResult, MapEntry, MapVerdict } from './types.js';
import { DROP_REASON } from './types.js';

export const VERDICT_PRECEDENCE: Readonly<Record<MapVerdict, number>> = { deny: 3, redirect: 2, allow: 1 };

/** Prefix rank: protocol-0 entries (-1) are shorter than any protocol-specific prefix (0..16). */
export function prefixRank(e: MapEntry): number {
  return e.protocol === 0 ? -1 : e.portPrefixLen;
}

export function entryMatches(e: MapEntry, protocol: number, port: number): boolean {
  if (e.protocol === 0) return true;
  if (e.protocol !== protocol) return false;
  const shift = 16 - e.portPrefixLen;
  return port >>> shift === e.port >>> shift;
}

/**
 * Entries by identity, built once per entries array (map state is never changed in place: a
 * new policy is a new array), so a lookup costs the peer's own entries, not the endpoint's all
 * (an endpoint with toFQDNs rules holds entries for every learned address).
 */
const byIdentity = new WeakMap<readonly MapEntry[], Map<number, MapEntry[]>>();

function entriesOf(entries: readonly MapEntry[], identity: number): readonly MapEntry[] {
  let index = byIdentity.get(entries);
  if (!index) {
    index = new Map();
    for (const e of entries) {
      const list = index.get(e.identity);
      if (list) list.push(e);
      else index.set(e.identity, [e]);
    }
    byIdentity.set(entries, index);
  }
  return index.get(identity) ?? [];
}

function best(entries: readonly MapEntry[], identity: number, protocol: number, port: number): MapEntry | null {
  let b: MapEntry | null = null;
  for (const e of entriesOf(entries, identity)) {
    if (!entryMatches(e, protocol, port)) continue;
    if (b === null || prefixRank(e) > prefixRank(b)) b = e;
  }
  return b;
}

function answer(e: MapEntry): LookupResult {
  return { verdict: e.verdict, entry: e, dropReason: e.verdict === 'deny' ? (e.dropReason ?? DROP_REASON.POLICY_DENY) : null };
}

export function lookupPolicy(dir: DirectionPolicy, identity: number, protocol: number, port: number): LookupResult {
  const l3 = identity === 0 ? null : best(dir.entries, identity, protocol, port);
  if (l3 && l3.verdict === 'deny') return answer(l3);
  const l4 = best(dir.entries, 0, protocol, port);
  if (l4) {
    if (!l3) return answer(l4);
    const p4 = VERDICT_PRECEDENCE[l4.verdict];
    const p3 = VERDICT_PRECEDENCE[l3.verdict];
    if (p4 > p3 || (p4 === p3 && prefixRank(l4) > prefixRank(l3))) return answer(l4);
  }
  if (l3) return answer(l3);
  return dir.enforced
    ? { verdict: 'default-deny', entry: null, dropReason: DROP_REASON.POLICY_DENIED }
    : { verdict: 'default-allow', entry: null, dropReason: null };
}
