/**
 * The identities a resolution sees, and which of them each peer selector selects.
 *
 *   IdentityView ── ids (no identity 0), named ports (all, per identity), select(selector) → ids
 *     ├─ arrayView(identities): computed from one array, memoised per array (the stateless path)
 *     └─ SelectorCache: kept across changes (PolicyEngine): a label index finds a selector's
 *        candidates (its most selective `In`/`Exists` requirement), each selector's result is
 *        cached, and an identity added or removed updates only the cached selectors it matches,
 *        stamping them, so a resolution can tell whether what it read is still current
 *        (Cilium's SelectorCache, pkg/policy/selectorcache.go, plays the same part).
 * Matching is `selectorMatches` in every case: the index only narrows the candidates.
 */
import type { Label } from '../api/labels.js';
import { selectorMatches } from '../api/selector.js';
import type { Selector } from '../api/types.js';
import type { Identity, NamedPort } from './identity.js';

export type NamedPorts = ReadonlyMap<string, readonly NamedPort[]>;

export interface IdentityView {
  /** Every identity but 0 (unknown), in the order the caller gave them. */
  readonly ids: readonly Identity[];
  /** The named ports of every identity, merged (egress named ports of a wildcard peer). */
  allNamed(): NamedPorts;
  /** One identity's named ports. */
  namedOf(id: number): NamedPorts;
  /** Ids of `ids` whose labels `selector` selects. */
  select(selector: Selector): ReadonlySet<number>;
}

/** Named ports by lower-cased name, duplicates (same port and protocol) once, in source order. */
export function namedPortMap(...sources: (Readonly<Record<string, NamedPort>> | undefined)[]): Map<string, NamedPort[]> {
  const m = new Map<string, NamedPort[]>();
  for (const s of sources) {
    if (!s) continue;
    for (const [name, np] of Object.entries(s)) {
      const list = m.get(name.toLowerCase()) ?? [];
      if (!list.some((x) => x.port === np.port && x.protocol === np.protocol)) list.push(np);
      m.set(name.toLowerCase(), list);
    }
  }
  return m;
}

const EMPTY_NAMED: NamedPorts = new Map();
const selectorKeys = new WeakMap<Selector, string>();

/** A selector's cache key: its requirements as written (after namespace scoping). */
export function selectorKey(s: Selector): string {
  let k = selectorKeys.get(s);
  if (k === undefined) {
    k = JSON.stringify(s.requirements.map((r) => [r.source, r.key, r.operator, r.values]));
    selectorKeys.set(s, k);
  }
  return k;
}

/** Label key → label value → ids carrying it (any source: matching checks the source). */
class LabelIndex {
  #byKey = new Map<string, Map<string, Set<number>>>();

  add(id: number, labels: readonly Label[]): void {
    for (const l of labels) {
      let values = this.#byKey.get(l.key);
      if (!values) this.#byKey.set(l.key, (values = new Map()));
      let ids = values.get(l.value);
      if (!ids) values.set(l.value, (ids = new Set()));
      ids.add(id);
    }
  }

  remove(id: number, labels: readonly Label[]): void {
    for (const l of labels) {
      const values = this.#byKey.get(l.key);
      const ids = values?.get(l.value);
      if (!ids) continue;
      ids.delete(id);
      if (ids.size === 0) values!.delete(l.value);
      if (values!.size === 0) this.#byKey.delete(l.key);
    }
  }

  /** The smallest candidate list any one requirement gives, or null when none narrows (NotIn, DoesNotExist only). */
  candidates(s: Selector): Iterable<number> | null {
    let best: Set<number>[] | null = null;
    let bestSize = Infinity;
    for (const r of s.requirements) {
      if (r.operator !== 'In' && r.operator !== 'Exists') continue;
      const values = this.#byKey.get(r.key);
      if (!values) return [];
      const sets = r.operator === 'In' ? r.values.flatMap((v) => (values.has(v) ? [values.get(v)!] : [])) : [...values.values()];
      const size = sets.reduce((n, x) => n + x.size, 0);
      if (size < bestSize) {
        best = sets;
        bestSize = size;
      }
    }
    if (best === null) return null;
    if (best.length === 1) return best[0]!;
    const out = new Set<number>();
    for (const set of best) for (const id of set) out.add(id);
    return out;
  }
}

function selectAll(view: { readonly ids: readonly Identity[] }, index: LabelIndex, byId: ReadonlyMap<number, Identity>, s: Selector): Set<number> {
  const out = new Set<number>();
  const cands = index.candidates(s);
  if (cands === null) {
    for (const i of view.ids) if (selectorMatches(s, i.labels)) out.add(i.id);
    return out;
  }
  for (const id of cands) {
    const i = byId.get(id);
    if (i && selectorMatches(s, i.labels)) out.add(id);
  }
  return out;
}

const arrayViews = new WeakMap<readonly Identity[], IdentityView>();

/**
 * The view of one identities array, built once per array (the agent's identities of one
 * regeneration, a test's fixture): repeated resolutions against the same array share its
 * named ports, label index and selector results.
 */
export function arrayView(identities: readonly Identity[]): IdentityView {
  let v = arrayViews.get(identities);
  if (v) return v;
  const ids = identities.filter((i) => i.id !== 0);
  const byId = new Map(ids.map((i) => [i.id, i]));
  const index = new LabelIndex();
  for (const i of ids) index.add(i.id, i.labels);
  const named = new Map<number, NamedPorts>();
  const selected = new Map<string, Set<number>>();
  let all: NamedPorts | null = null;
  v = {
    ids,
    allNamed: () => (all ??= namedPortMap(...ids.map((i) => i.namedPorts))),
    namedOf: (id) => {
      let m = named.get(id);
      if (!m) named.set(id, (m = byId.has(id) ? namedPortMap(byId.get(id)!.namedPorts) : EMPTY_NAMED));
      return m;
    },
    select: (s) => {
      const k = selectorKey(s);
      let out = selected.get(k);
      if (!out) selected.set(k, (out = selectAll(v!, index, byId, s)));
      return out;
    },
  };
  arrayViews.set(identities, v);
  return v;
}

function sameLabels(a: readonly Label[], b: readonly Label[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.source !== y.source || x.key !== y.key || x.value !== y.value) return false;
  }
  return true;
}

function sameNamed(a: Identity['namedPorts'], b: Identity['namedPorts']): boolean {
  if (a === b) return true;
  const ea = Object.entries(a ?? {});
  const eb = Object.entries(b ?? {});
  if (ea.length !== eb.length) return false;
  return ea.every(([k, v], i) => eb[i]![0] === k && eb[i]![1].port === v.port && eb[i]![1].protocol === v.protocol);
}

interface CacheEntry {
  readonly selector: Selector;
  readonly ids: Set<number>;
  stamp: number;
}

/** Above this many identity changes in one `setIdentities`, cached selectors are dropped and recomputed when next asked. */
const BULK_CHANGE = 256;
const LOG_SIZE = 4096;

/**
 * Identities kept across changes, with each selector's result cached and stamped. `stamp(key)`
 * changes whenever the selector's result does; `namedStamp` whenever any identity's named ports do.
 */
export class SelectorCache implements IdentityView {
  #byId = new Map<number, Identity>();
  #ids: Identity[] | null = [];
  #index = new LabelIndex();
  #entries = new Map<string, CacheEntry>();
  #clock = 0;
  #named = new Map<number, NamedPorts>();
  #allNamed: NamedPorts | null = null;
  #namedStamp = 0;
  /** Identity changes (added, removed, relabelled) by clock tick, the last LOG_SIZE of them. */
  #log: { tick: number; id: number }[] = [];
  #logFloor = 0;
  /** Id → the `setIdentities` call that last listed it (kept across calls: no set per call). */
  #seen = new Map<number, number>();
  #seenGen = 0;

  /** Where `select` records (selector key, stamp) while a resolution runs. */
  recording: Map<string, number> | null = null;

  get ids(): readonly Identity[] {
    this.#ids ??= [...this.#byId.values()].sort((a, b) => a.id - b.id);
    return this.#ids;
  }

  get namedStamp(): number {
    return this.#namedStamp;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Advances with every change; a resolution remembers it to ask `changedSince` later. */
  get clock(): number {
    return this.#clock;
  }

  /** Ids added, removed or relabelled after `tick`; null when the log no longer reaches back that far. */
  changedSince(tick: number): Set<number> | null {
    if (tick < this.#logFloor) return null;
    const out = new Set<number>();
    for (let i = this.#log.length - 1; i >= 0 && this.#log[i]!.tick > tick; i--) out.add(this.#log[i]!.id);
    return out;
  }

  /** The current stamp of a cached selector; undefined when it is no longer cached. */
  stamp(key: string): number | undefined {
    return this.#entries.get(key)?.stamp;
  }

  /**
   * Makes the identities equal to the concatenation of `lists` (identity 0 is left out; each id
   * in one list at most, the lists disjoint), updating cached selectors by the difference. Returns how many
   * identities were added, removed or relabelled. O(identities) map reads and no allocation
   * beyond the changes: the agent hands its whole list on every regeneration.
   */
  setIdentities(...lists: (readonly Identity[])[]): number {
    const gen = ++this.#seenGen;
    const seen = this.#seen;
    const changes: { id: number; next: Identity | null }[] = [];
    for (const identities of lists) {
      for (const i of identities) {
        if (i.id === 0) continue;
        seen.set(i.id, gen);
        const cur = this.#byId.get(i.id);
        if (cur === i) continue;
        if (!cur || !sameLabels(cur.labels, i.labels)) changes.push({ id: i.id, next: i });
        else if (!sameNamed(cur.namedPorts, i.namedPorts)) {
          this.#byId.set(i.id, i);
          this.#ids = null;
          this.#namedChanged(i.id);
        } else this.#byId.set(i.id, i);
      }
    }
    for (const id of this.#byId.keys()) {
      if (seen.get(id) !== gen) {
        changes.push({ id, next: null });
        seen.delete(id);
      }
    }
    if (changes.length > BULK_CHANGE) this.#entries.clear();
    for (const c of changes) {
      const cur = this.#byId.get(c.id);
      if (cur) this.#remove(cur);
      if (c.next) this.#add(c.next);
    }
    return changes.length;
  }

  /** Adds or replaces one identity (identity 0 is ignored): O(cached selectors). */
  upsert(i: Identity): void {
    if (i.id === 0) return;
    const cur = this.#byId.get(i.id);
    if (cur === i) return;
    if (cur && sameLabels(cur.labels, i.labels)) {
      this.#byId.set(i.id, i);
      this.#ids = null;
      if (!sameNamed(cur.namedPorts, i.namedPorts)) this.#namedChanged(i.id);
      return;
    }
    if (cur) this.#remove(cur);
    this.#add(i);
  }

  /** Removes one identity, if known: O(cached selectors). */
  delete(id: number): void {
    const cur = this.#byId.get(id);
    if (cur) this.#remove(cur);
  }

  allNamed(): NamedPorts {
    this.#allNamed ??= namedPortMap(...this.ids.map((i) => i.namedPorts));
    return this.#allNamed;
  }

  namedOf(id: number): NamedPorts {
    let m = this.#named.get(id);
    if (!m) {
      const i = this.#byId.get(id);
      this.#named.set(id, (m = i ? namedPortMap(i.namedPorts) : EMPTY_NAMED));
    }
    return m;
  }

  select(s: Selector): ReadonlySet<number> {
    const k = selectorKey(s);
    let e = this.#entries.get(k);
    if (!e) {
      e = { selector: s, ids: selectAll(this, this.#index, this.#byId, s), stamp: ++this.#clock };
      this.#entries.set(k, e);
    }
    this.recording?.set(k, e.stamp);
    return e.ids;
  }

  #logChange(id: number): void {
    this.#log.push({ tick: ++this.#clock, id });
    if (this.#log.length > LOG_SIZE) {
      const dropped = this.#log.splice(0, LOG_SIZE / 2);
      this.#logFloor = dropped[dropped.length - 1]!.tick;
    }
  }

  #add(i: Identity): void {
    this.#logChange(i.id);
    this.#byId.set(i.id, i);
    this.#ids = null;
    this.#index.add(i.id, i.labels);
    for (const e of this.#entries.values()) {
      if (selectorMatches(e.selector, i.labels)) {
        e.ids.add(i.id);
        e.stamp = ++this.#clock;
      }
    }
    if (i.namedPorts && Object.keys(i.namedPorts).length > 0) this.#namedChanged(i.id);
  }

  #remove(i: Identity): void {
    this.#logChange(i.id);
    this.#byId.delete(i.id);
    this.#seen.delete(i.id);
    this.#ids = null;
    this.#index.remove(i.id, i.labels);
    for (const e of this.#entries.values()) if (e.ids.delete(i.id)) e.stamp = ++this.#clock;
    if (i.namedPorts && Object.keys(i.namedPorts).length > 0) this.#namedChanged(i.id);
  }

  #namedChanged(id: number): void {
    this.#named.delete(id);
    this.#allNamed = null;
    this.#namedStamp++;
  }
}
