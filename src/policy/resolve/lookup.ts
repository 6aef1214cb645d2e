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
 * (an endpoint with toFQDNs rules holds entries for every learned address). An array made by
 * `appendEntries` (an FQDN update: a few entries after thousands) indexes only what it adds, over
 * the index of the array it extends. Layers are kept at least twice as large going down (as the
 * digits of a binary counter: a smaller one below is merged into a new layer), so a chain has
 * O(log n) layers and an entry is copied O(log n) times over all the appends.
 */
interface EntryIndex {
  readonly own: ReadonlyMap<number, readonly MapEntry[]>;
  readonly base: EntryIndex | null;
}

const byIdentity = new WeakMap<readonly MapEntry[], EntryIndex>();
/** An array from `appendEntries` → the array it extends that was indexed (or the first of the chain), until it is indexed itself. */
const extended = new WeakMap<readonly MapEntry[], readonly MapEntry[]>();

/**
 * `entries` followed by `added` (a new array; neither is changed), whose lookups index only
 * `added` when `entries` (or the array it was appended to) has been indexed.
 */
export function appendEntries(entries: readonly MapEntry[], added: readonly MapEntry[]): MapEntry[] {
  const out = appendList(entries, added);
  // Through arrays never looked up, to the nearest one that was: no chain of arrays kept alive.
  extended.set(out, byIdentity.has(entries) ? entries : (extended.get(entries) ?? entries));
  return out;
}

/**
 * Arrays made by `appendList` → the array they extend, held weakly: a strong reference would keep
 * every earlier version of a list alive as long as its latest (one FQDN update appends to it each
 * time: memory quadratic in the updates between two regenerations).
 */
const parents = new WeakMap<readonly unknown[], WeakRef<readonly unknown[]>>();

/** `list` followed by `added` (a new array; neither is changed), remembered as extending `list` (`extendsList`). */
export function appendList<T>(list: readonly T[], added: readonly T[]): T[] {
  const out = list.concat(added);
  parents.set(out, new WeakRef(list));
  return out;
}

/**
 * Whether `list` starts with exactly the elements of `prefix`, in order: O(1) when `list` is
 * `prefix` or was made from it by one `appendList`/`appendEntries`, else a pass over `prefix`.
 */
export function extendsList<T>(list: readonly T[], prefix: readonly T[]): boolean {
  if (list === prefix || parents.get(list)?.deref() === prefix) return true;
  if (list.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (list[i] !== prefix[i]) return false;
  return true;
}

function indexEntries(entries: readonly MapEntry[], from: number): Map<number, MapEntry[]> {
  const own = new Map<number, MapEntry[]>();
  for (let i = from; i < entries.length; i++) {
    const e = entries[i]!;
    const list = own.get(e.identity);
    if (list) list.push(e);
    else own.set(e.identity, [e]);
  }
  return own;
}

function indexOf(entries: readonly MapEntry[]): EntryIndex {
  let index = byIdentity.get(entries);
  if (index) return index;
  const prefix = extended.get(entries);
  extended.delete(entries);
  const base = prefix !== undefined && prefix !== entries ? byIdentity.get(prefix) : undefined;
  if (base === undefined) {
    index = { own: indexEntries(entries, 0), base: null };
  } else {
    let own: ReadonlyMap<number, readonly MapEntry[]> = indexEntries(entries, prefix!.length);
    let below: EntryIndex | null = base;
    while (below !== null && below.own.size <= 2 * own.size) {
      own = merged(below.own, own);
      below = below.base;
    }
    index = { own, base: below };
  }
  byIdentity.set(entries, index);
  return index;
}

/** One layer of `lower` then `upper` (new map and lists; the layers stay as they are, other arrays' indexes share them). */
function merged(lower: ReadonlyMap<number, readonly MapEntry[]>, upper: ReadonlyMap<number, readonly MapEntry[]>): Map<number, readonly MapEntry[]> {
  const out = new Map(lower);
  for (const [id, list] of upper) {
    const l = out.get(id);
    out.set(id, l ? l.concat(list) : list);
  }
  return out;
}

function entriesOf(entries: readonly MapEntry[], identity: number): readonly MapEntry[] {
  const index = indexOf(entries);
  let found = index.own.get(identity);
  for (let b = index.base; b !== null; b = b.base) {
    const more = b.own.get(identity);
    if (more) found = found ? more.concat(found) : more;
  }
  return found ?? [];
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
