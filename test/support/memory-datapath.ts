/**
 * An in-memory Datapath port for Regenerator tests (the regenerator's map writes land in Maps;
 * the real maps are exercised by the privileged e2e tests), and an identity allocator that two
 * regenerators can share so a label set has the same id in both.
 */
import type { PolicyMapEntry, PolicySnapshot } from '../../src/datapath/index.js';
import { formatLabel, type Label } from '../../src/policy/index.js';

export const key = (e: PolicyMapEntry): string => JSON.stringify([e.egress, e.identity, e.protocol, e.port, e.portPrefixLen]);

/** The maps, in memory. */
export class MemoryDatapath {
  ipcache = new Map<string, number>();
  endpoints = new Map<string, unknown>();
  policy = new Map<number, Map<string, PolicyMapEntry>>();
  writes = 0;
  syncIpcache(m: ReadonlyMap<string, number>) {
    this.ipcache = new Map(m);
    return { upserted: m.size, deleted: 0 };
  }
  upsertIpcache(p: string, id: number) {
    this.writes++;
    this.ipcache.set(p, id);
  }
  deleteIpcache(p: string) {
    this.writes++;
    return this.ipcache.delete(p);
  }
  dumpEndpoints() {
    return new Map(this.endpoints);
  }
  upsertEndpoint(ip: string, v: unknown) {
    this.endpoints.set(ip, v);
  }
  attachEndpoint() {}
  policySnapshot(): PolicySnapshot {
    return new Map([...this.policy].map(([id, m]) => [id, new Map([...m].map(([k, v]) => [k, { key: new Uint8Array(), valueHex: JSON.stringify(v) }]))]));
  }
  snapshotOf(id: number, entries: readonly PolicyMapEntry[]): PolicySnapshot {
    return new Map([[id, new Map(entries.map((e) => [key(e), { key: new Uint8Array(), valueHex: JSON.stringify({ ...e, endpointId: 0 }) }]))]]);
  }
  writeEndpointPolicy(id: number, upserts: readonly PolicyMapEntry[], deletes: readonly PolicyMapEntry[]) {
    const cur = this.policy.get(id) ?? new Map<string, PolicyMapEntry>();
    const written = new Set(upserts.map(key));
    for (const e of upserts) cur.set(key(e), { ...e, endpointId: 0 });
    let deleted = 0;
    for (const e of deletes) if (!written.has(key(e)) && cur.delete(key(e))) deleted++;
    this.policy.set(id, cur);
    this.writes += upserts.length + deleted;
    return { upserted: upserts.length, deleted };
  }
  syncEndpointPolicy(id: number, desired: readonly PolicyMapEntry[], snap: PolicySnapshot = this.policySnapshot()) {
    const cur = this.policy.get(id) ?? new Map<string, PolicyMapEntry>();
    const known = snap.get(id) ?? new Map();
    const want = new Set(desired.map(key));
    let upserted = 0;
    let deleted = 0;
    for (const e of desired) {
      if (known.get(key(e))?.valueHex !== JSON.stringify({ ...e, endpointId: 0 })) upserted++;
      cur.set(key(e), { ...e, endpointId: 0 });
    }
    for (const k of known.keys()) {
      if (!want.has(k)) {
        cur.delete(k);
        deleted++;
      }
    }
    this.policy.set(id, cur);
    this.writes += upserted + deleted;
    return { upserted, deleted };
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
}
