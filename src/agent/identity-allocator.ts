/**
 * Numeric security identities for label sets, allocated in-process (local mode) and kept in
 * the state directory so a restart gives every endpoint the identity it had: the pinned
 * ipcache and policy maps keep meaning the same thing.
 *
 * Cluster-scoped identities start at 256, below which the reserved identities live; CIDR
 * identities are node-local and live in the 1<<24 range, as in Cilium.
 */
import { cidrIdentityLabels, formatLabel, type Label } from '../policy/index.js';
import { membraneError } from '../errors/index.js';
import type { StateStore } from './state-store.js';

export const FIRST_CLUSTER_IDENTITY = 256;
export const MAX_CLUSTER_IDENTITY = 65535;
export const LOCAL_IDENTITY_SCOPE = 1 << 24;

interface Persisted {
  /**
   * `cidr`: the identity's labels are those of this prefix (every containing `cidr:` prefix and
   * `reserved:world`, as `cidrIdentityLabels` derives them) plus `labels`: a learned address's
   * identity is stored in a line, not in its 36 labels.
   */
  identities: { id: number; labels: string[]; cidr?: string }[];
}

/** The longest `cidr:` prefix of a CIDR identity, when its labels are exactly that prefix's plus others. */
function cidrOf(labels: readonly Label[]): { cidr: string; rest: Label[] } | null {
  // The longest prefix by its length after the slash (read digit by digit: this runs for every
  // learned address at each save, where splitting 33 keys each was most of the save's cost).
  let longest: Label | null = null;
  let longestBits = -1;
  for (const l of labels) {
    if (l.source !== 'cidr') continue;
    const k = l.key;
    let bits = 0;
    for (let i = k.lastIndexOf('/') + 1; i > 0 && i < k.length; i++) bits = bits * 10 + (k.charCodeAt(i) - 48);
    if (bits > longestBits) {
      longest = l;
      longestBits = bits;
    }
  }
  if (longest === null) return null;
  let list: Label[];
  try {
    list = cidrIdentityLabels(longest.key);
  } catch {
    return null; // a prefix spelling this cannot re-derive: stored label by label
  }
  // A learned address's labels as fqdnIdentityLabels builds them: the derived ones in their order,
  // then labels of other sources (which no derived label can equal): compared field by field.
  let same = labels.length >= list.length;
  for (let i = 0; same && i < list.length; i++) {
    const a = labels[i]!;
    const b = list[i]!;
    same = a.source === b.source && a.key === b.key && a.value === b.value;
  }
  for (let i = list.length; same && i < labels.length; i++) same = labels[i]!.source !== 'cidr' && labels[i]!.source !== 'reserved';
  if (same) return { cidr: longest.key, rest: labels.slice(list.length) };
  const derived = new Set(list.map(formatLabel));
  const rest = labels.filter((l) => !derived.has(formatLabel(l)));
  // Only when re-deriving gives the same set back.
  return derived.size + rest.length === labels.length ? { cidr: longest.key, rest } : null;
}

export function labelKey(labels: readonly Label[]): string {
  return labels.map(formatLabel).sort().join(';');
}

export class IdentityAllocator {
  #byKey = new Map<string, number>();
  #byId = new Map<number, readonly Label[]>();
  #store: StateStore;
  #file = 'identities.json';
  #next: Record<'cluster' | 'local', number> = { cluster: FIRST_CLUSTER_IDENTITY, local: LOCAL_IDENTITY_SCOPE + 1 };
  #timer: NodeJS.Timeout | null = null;
  /** id → its saved line and the label set it was derived from (#document). */
  #lines = new Map<number, { labels: readonly Label[]; saved: Persisted['identities'][number] }>();

  /** Told of a timed save that failed (it is tried again in 5 s); the agent logs it. */
  readonly #onSaveError: (err: Error) => void;

  constructor(store: StateStore, parse: (s: string) => Label, onSaveError: (err: Error) => void = () => undefined) {
    this.#store = store;
    this.#onSaveError = onSaveError;
    const saved = store.read<Persisted>(this.#file, { identities: [] });
    for (const { id, labels, cidr } of saved.identities) {
      const parsed = [...(cidr !== undefined ? cidrIdentityLabels(cidr) : []), ...labels.map(parse)];
      this.#byKey.set(labelKey(parsed), id);
      this.#byId.set(id, parsed);
    }
  }

  /**
   * The identity of a label set, allocating the next free one in its scope when new. Cluster
   * identities are saved at once (endpoints and their pinned policy entries refer to them); local
   * ones (CIDR prefixes, and one per set of toFQDNs selectors learned addresses carry) are saved within 5 s (off the event loop), or
   * by `flush()`, so a burst of answers costs one write, not one per address. A local identity lost
   * in a crash is allocated again by the next regeneration, which rewrites the maps that use it.
   */
  allocate(labels: readonly Label[], scope: 'cluster' | 'local' = 'cluster'): number {
    const key = labelKey(labels);
    const known = this.#byKey.get(key);
    if (known !== undefined) return known;
    const [first, last] =
      scope === 'cluster' ? [FIRST_CLUSTER_IDENTITY, MAX_CLUSTER_IDENTITY] : [LOCAL_IDENTITY_SCOPE + 1, LOCAL_IDENTITY_SCOPE + 0xffffff - 1];
    // Next free id after the last one handed out in this scope (wrapping once): O(1) in practice.
    let id = Math.max(first, this.#next[scope]);
    let scanned = 0;
    while (this.#byId.has(id) && scanned <= last - first) {
      id = id >= last ? first : id + 1;
      scanned++;
    }
    if (this.#byId.has(id)) throw membraneError('MEMBRANE_ERR_IDENTITY_EXHAUSTED', `${scope} scope is full`);
    this.#next[scope] = id >= last ? first : id + 1;
    this.#byKey.set(key, id);
    this.#byId.set(id, labels);
    if (scope === 'cluster') this.#persist();
    else this.#persistSoon();
    return id;
  }

  /**
   * Gives back a local identity nothing uses any more (an address no toFQDNs selector selects, or
   * one relabelled). Cluster identities are never released here: pinned state may refer to them.
   */
  release(id: number): void {
    if (id <= LOCAL_IDENTITY_SCOPE) return;
    const labels = this.#byId.get(id);
    if (!labels) return;
    this.#byId.delete(id);
    this.#lines.delete(id);
    this.#byKey.delete(labelKey(labels));
    this.#persistSoon();
  }

  /** Writes pending allocations now (agent stop). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#persist();
  }

  labelsOf(id: number): readonly Label[] | undefined {
    return this.#byId.get(id);
  }

  entries(): { id: number; labels: readonly Label[] }[] {
    return [...this.#byId].map(([id, labels]) => ({ id, labels })).sort((a, b) => a.id - b.id);
  }

  #persistSoon(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      // Off the event loop (StateStore.writeSoon): at 1000 new addresses a second the file holds
      // thousands of lines, and a synchronous write plus fsync held every DNS answer waiting on
      // this thread for tens of ms. A failed write is tried again on the same schedule.
      this.#store.writeSoon(this.#file, () => this.#document()).catch((err: unknown) => {
        this.#onSaveError(err as Error);
        this.#persistSoon();
      });
    }, 5000);
    this.#timer.unref();
  }

  #persist(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#store.write(this.#file, this.#document());
  }

  /**
   * The saved form, each identity's line derived once (cidrOf re-derives 36 labels per learned
   * address: for thousands of them, rederiving all at every write took ~50 µs each).
   */
  #document(): Persisted {
    const identities: Persisted['identities'] = [];
    for (const [id, labels] of this.#byId) {
      let line = this.#lines.get(id);
      if (line === undefined || line.labels !== labels) {
        const c = cidrOf(labels);
        line = { labels, saved: c ? { id, cidr: c.cidr, labels: c.rest.map(formatLabel) } : { id, labels: labels.map(formatLabel) } };
        this.#lines.set(id, line);
      }
      identities.push(line.saved);
    }
    return { identities: identities.sort((a, b) => a.id - b.id) };
  }
}
