/**
 * issue-11 proxy visibility on the agent's two write paths: a full regeneration and the
 * incremental FQDN path (applyFqdn) write the same map entries, keys and values, for an endpoint
 * with a visibility annotation, so an address learned from DNS is redirected for visibility as
 * it would be after a full pass, and judged as without the annotation.
 *
 * The Datapath is the in-memory port of apply-fqdn.test.ts (copied: test files export nothing).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Regenerator } from '../../../src/agent/regenerate.js';
import { endpointVisibility } from '../../../src/agent/visibility.js';
import type { IdentityAllocator } from '../../../src/agent/identity-allocator.js';
import type { Endpoint, EndpointManager } from '../../../src/agent/endpoints.js';
import type { Datapath, PolicyMapEntry, PolicySnapshot } from '../../../src/datapath/index.js';
import { formatLabel, loadPolicyText, type Label, type PolicyObject } from '../../../src/policy/index.js';

const key = (e: PolicyMapEntry): string => JSON.stringify([e.egress, e.identity, e.protocol, e.port, e.portPrefixLen]);

/** The maps, in memory. */
class MemoryDatapath {
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
class SharedIdentities {
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

const POLICIES = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mediabot}
spec:
  endpointSelector: {matchLabels: {class: mediabot}}
  egress:
  - toFQDNs: [{matchName: api.github.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}, {port: "80", protocol: TCP}]}]
  - toEntities: [cluster]
    toPorts: [{ports: [{port: "53", protocol: UDP}], rules: {dns: [{matchPattern: "*"}]}}]
`;

function policies(): PolicyObject[] {
  const r = loadPolicyText(POLICIES, 'vis.yaml');
  expect(r.problems).toEqual([]);
  return r.policies;
}

function node(ids: SharedIdentities): { r: Regenerator; dp: MemoryDatapath } {
  const eps = [
    {
      id: 1,
      name: 'mediabot',
      namespace: 'default',
      podLabels: { class: 'mediabot' },
      ...endpointVisibility({ 'policy.cilium.io/proxy-visibility': '<Egress/80/TCP/HTTP>,<Egress/53/UDP/DNS>' }),
      ip: '10.78.1.2',
      ifname: 'lo',
      ifindex: 0,
      identity: 0,
      labels: [],
      policy: null,
      state: 'not-ready',
    },
  ] as unknown as Endpoint[];
  const dp = new MemoryDatapath();
  const manager = { list: () => eps } as unknown as EndpointManager;
  const r = new Regenerator(dp as unknown as Datapath, manager, ids as unknown as IdentityAllocator, { http: 15001, dns: 15053, tls: 15443 }, pino({ level: 'silent' }));
  return { r, dp };
}

const entries = (dp: MemoryDatapath) => Object.fromEntries([...dp.policy].map(([id, m]) => [id, [...m.entries()].sort(([a], [b]) => a.localeCompare(b))]));

describe('issue-11 proxy visibility on the incremental FQDN path', () => {
  it('applyFqdn writes what a full pass writes: the learned address is redirected on 80, allowed on 443, the DNS rules stay', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(policies());
    const learned = [{ ip: '10.78.200.20', labelKeys: ['api.github.com.'] }];
    r.applyFqdn(learned);

    const full = node(ids);
    full.r.applyFqdn(learned);
    full.r.regenerate(policies());
    expect(entries(dp)).toEqual(entries(full.dp));

    const fqdnId = dp.ipcache.get('10.78.200.20/32')!;
    const mine = [...dp.policy.get(1)!.values()].filter((e) => e.identity === fqdnId);
    expect(mine.map((e) => [e.port, e.proxyPort]).sort((a, b) => a[0]! - b[0]!)).toEqual([
      [80, 15001],
      [443, 0],
    ]);
    // The DNS rule's own redirect on 53 is the policy's, not replaced (same proxy, its rules).
    expect([...dp.policy.get(1)!.values()].some((e) => e.port === 53 && e.proxyPort === 15053)).toBe(true);
  });
});
