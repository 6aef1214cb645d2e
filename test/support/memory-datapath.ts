/**
 * An in-memory Datapath port for Regenerator tests and the regeneration benchmark (the
 * regenerator's map writes land in Maps; the real maps are exercised by the privileged e2e
 * tests), and an identity allocator that two regenerators can share so a label set has the same
 * id in both.
 *
 * Policy entries are kept as entries (tests read them back); their map key and value text come
 * from a codec: by default JSON (cheap, readable), or `bpfCodec` — the real datapath's encoding
 * (bench/regen-stall.ts: so that map-write costs are the codec's, not the bpf syscalls').
 */
import type { DeferredDeletes, PolicyMapEntry, PolicySnapshot } from '../../src/datapath/index.js';
import { encodePolicyEntry } from '../../src/datapath/maps/policy.js';
import { formatLabel, type Label } from '../../src/policy/index.js';

export const key = (e: PolicyMapEntry): string => JSON.stringify([e.egress, e.identity, e.protocol, e.port, e.portPrefixLen]);

/** How an entry of endpoint `id` is keyed and valued in the map (snapshots compare `valueHex`). */
export interface PolicyCodec {
  encode(e: PolicyMapEntry, id: number): { key: Uint8Array; keyText: string; valueHex: string };
}

const NO_KEY = new Uint8Array();

export const jsonCodec: PolicyCodec = {
  encode: (e) => ({ key: NO_KEY, keyText: key(e), valueHex: JSON.stringify({ ...e, endpointId: 0 }) }),
};

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/** The datapath's own policy-map encoding (src/datapath/maps/policy.ts). */
export const bpfCodec: PolicyCodec = {
  encode: (e, id) => {
    const { key: k, value } = encodePolicyEntry({ ...e, endpointId: id });
    return { key: k, keyText: hex(k), valueHex: hex(value) };
  },
};

interface Stored {
  readonly entry: PolicyMapEntry;
  readonly key: Uint8Array;
  readonly valueHex: string;
}

/** The maps, in memory. */
export class MemoryDatapath {
  ipcache = new Map<string, number>();
  endpoints = new Map<string, unknown>();
  /** endpoint id → map key text → the entry written (endpointId 0). */
  policy = new Map<number, Map<string, PolicyMapEntry>>();
  /** ipcache and policy-map writes (upserts and deletes). */
  writes = 0;
  readonly #codec: PolicyCodec;
  readonly #encoded = new Map<number, Map<string, Stored>>();

  constructor(codec: PolicyCodec = jsonCodec) {
    this.#codec = codec;
  }

  syncIpcache(m: ReadonlyMap<string, number>) {
    let upserted = 0;
    for (const [k, v] of m) if (this.ipcache.get(k) !== v) upserted++;
    let deleted = 0;
    for (const k of this.ipcache.keys()) if (!m.has(k)) deleted++;
    this.ipcache = new Map(m);
    return { upserted, deleted };
  }
  upsertIpcache(p: string, id: number) {
    this.writes++;
    this.ipcache.set(p, id);
  }
  deleteIpcache(p: string) {
    this.writes++;
    return this.ipcache.delete(p);
  }
  /** The entries written for endpoint `id` (none when it has none). */
  entriesOf(id: number): PolicyMapEntry[] {
    return [...(this.policy.get(id)?.values() ?? [])];
  }
  dumpEndpoints() {
    return new Map(this.endpoints);
  }
  upsertEndpoint(ip: string, v: unknown) {
    this.endpoints.set(ip, v);
  }
  deleteEndpoint(ip: string) {
    return this.endpoints.delete(ip);
  }
  attachEndpoint() {}
  detachEndpoint() {}
  policySnapshot(): PolicySnapshot {
    return new Map([...this.#encoded].map(([id, m]) => [id, new Map([...m].map(([k, s]) => [k, { key: s.key, valueHex: s.valueHex }]))]));
  }
  snapshotOf(id: number, entries: readonly PolicyMapEntry[]): PolicySnapshot {
    return new Map([[id, new Map(entries.map((e) => this.#codec.encode(e, id)).map((x) => [x.keyText, { key: x.key, valueHex: x.valueHex }]))]]);
  }
  writeEndpointPolicy(id: number, upserts: readonly PolicyMapEntry[], deletes: readonly PolicyMapEntry[], deferred?: DeferredDeletes) {
    const written = new Set<string>();
    for (const e of upserts) written.add(this.#set(id, e));
    let deleted = 0;
    for (const e of deletes) {
      const k = this.#codec.encode(e, id).keyText;
      if (written.has(k)) continue;
      if (deferred) deferred.push(() => this.#deferredDelete(id, k));
      else if (this.#delete(id, k)) deleted++;
    }
    this.writes += upserts.length + deleted;
    return { upserted: upserts.length, deleted };
  }
  /** As the real map: `desired` written where it differs from `snap`, keys of `snap` not desired deleted (or deferred). */
  syncEndpointPolicy(id: number, desired: readonly PolicyMapEntry[], snap: PolicySnapshot = this.policySnapshot(), deferred?: DeferredDeletes) {
    const known = snap.get(id) ?? new Map<string, { key: Uint8Array; valueHex: string }>();
    const want = new Set<string>();
    let upserted = 0;
    for (const e of desired) {
      const x = this.#codec.encode(e, id);
      want.add(x.keyText);
      if (known.get(x.keyText)?.valueHex !== x.valueHex) upserted++;
      this.#store(id, e, x);
    }
    let deleted = 0;
    for (const k of known.keys()) {
      if (want.has(k)) continue;
      if (deferred) {
        deferred.push(() => this.#deferredDelete(id, k));
        continue;
      }
      this.#delete(id, k);
      deleted++;
    }
    this.#maps(id);
    this.writes += upserted + deleted;
    return { upserted, deleted };
  }

  #maps(id: number): { entries: Map<string, PolicyMapEntry>; encoded: Map<string, Stored> } {
    let entries = this.policy.get(id);
    if (!entries) this.policy.set(id, (entries = new Map()));
    let encoded = this.#encoded.get(id);
    if (!encoded) this.#encoded.set(id, (encoded = new Map()));
    return { entries, encoded };
  }
  #set(id: number, e: PolicyMapEntry): string {
    const x = this.#codec.encode(e, id);
    this.#store(id, e, x);
    return x.keyText;
  }
  #store(id: number, e: PolicyMapEntry, x: { key: Uint8Array; keyText: string; valueHex: string }): void {
    const m = this.#maps(id);
    const entry = { ...e, endpointId: 0 };
    m.entries.set(x.keyText, entry);
    m.encoded.set(x.keyText, { entry, key: x.key, valueHex: x.valueHex });
  }
  #deferredDelete(id: number, k: string): boolean {
    const gone = this.#delete(id, k);
    if (gone) this.writes++;
    return gone;
  }
  #delete(id: number, k: string): boolean {
    const m = this.#maps(id);
    m.encoded.delete(k);
    return m.entries.delete(k);
  }
}

/** One allocator shared by both regenerators, so a label set has the same id in both. */
export class SharedIdentities {
  #byKey = new Map<string, number>();
  #labels = new Map<number, readonly Label[]>();
  #next = { cluster: 256, local: (1 << 24) + 1 };
  allocate(labels: readonly Label[], scope: 'cluster' | 'local' = 'cluster'): number {
    const k = labels.map(formatLabel).sort().join(';');
    let id = this.#byKey.get(k);
    if (id === undefined) {
      id = this.#next[scope]++;
      this.#byKey.set(k, id);
      this.#labels.set(id, labels);
    }
    return id;
  }
  release(): void {}
  labelsOf(id: number) {
    return this.#labels.get(id);
  }
  entries() {
    return [...this.#labels].map(([id, labels]) => ({ id, labels }));
  }
}
