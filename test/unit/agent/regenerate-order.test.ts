/**
 * issue-9 a full regeneration writes in Cilium's order: an endpoint's new policy entries before
 * the ipcache moves addresses to the identities they name, and its stale entries only after the
 * ipcache has moved addresses away from them. Between the two, a packet is judged by the old
 * state or the new one, never dropped because its address already carries an identity the policy
 * map has no entry for yet (a new CIDR prefix, a new endpoint) — nor because an entry went while
 * its address still had the old identity.
 *
 * The Datapath is the shared in-memory port (test/support/memory-datapath.ts); endpoint links are `lo`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Regenerator } from '../../../src/agent/regenerate.js';
import { EndpointManager } from '../../../src/agent/endpoints.js';
import { IdentityAllocator } from '../../../src/agent/identity-allocator.js';
import { StateStore } from '../../../src/agent/state-store.js';
import { loadPolicyText, parseLabel, type PolicyObject } from '../../../src/policy/index.js';
import type { Datapath } from '../../../src/datapath/index.js';
import { MemoryDatapath } from '../../support/memory-datapath.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function store(): StateStore {
  const d = mkdtempSync(join(tmpdir(), 'membrane-regen-order-'));
  dirs.push(d);
  return new StateStore(d);
}

/** A regenerator over the in-memory maps, with its endpoints. */
function node(): { dp: MemoryDatapath; endpoints: EndpointManager; r: Regenerator } {
  const dp = new MemoryDatapath();
  const endpoints = new EndpointManager(store());
  const r = new Regenerator(dp as unknown as Datapath, endpoints, new IdentityAllocator(store(), parseLabel), { http: 15001, dns: 15053, tls: 15443 }, pino({ level: 'silent' }));
  return { dp, endpoints, r };
}

const policy = (name: string, pod: string, cidr: string): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}}
spec:
  endpointSelector: {matchLabels: {app: ${pod}}}
  egress:
  - toCIDR: [${cidr}]
    toPorts: [{ports: [{port: "22", protocol: TCP}]}]
`;

function load(text: string): PolicyObject[] {
  const r = loadPolicyText(text, 'order.yaml');
  expect(r.problems).toEqual([]);
  return r.policies;
}

describe('Regenerator, order of a full pass', () => {
  it('issue-9 a new prefix: entries for its identity before its ipcache entry; a removed one: its entries after', () => {
    const { dp, endpoints, r } = node();
    endpoints.upsert({ name: 'ops', namespace: 'default', podLabels: { app: 'ops' }, ip: '10.77.1.2', ifname: 'lo' });
    endpoints.upsert({ name: 'backup', namespace: 'default', podLabels: { app: 'backup' }, ip: '10.77.1.3', ifname: 'lo' });
    const ops = endpoints.get('default', 'ops')!;
    // ops may reach the whole /16 on port 22; later backup gets a rule for a /24 inside it.
    const wide = load(policy('ops', 'ops', '10.200.0.0/16'));
    const both = [...wide, ...load(policy('backup', 'backup', '10.200.7.0/24'))];
    r.regenerate(wide);
    expect(dp.ipcache.has('10.200.7.0/24')).toBe(false);

    // What ops's map allows on port 22, each time the ipcache is written.
    const opsAllows = (id: number): boolean => dp.entriesOf(ops.id).some((e) => e.identity === id && e.egress && !e.deny && e.port === 22);
    const seen: Array<{ id: number | undefined; allowed: boolean; before: number | undefined }> = [];
    const sync = dp.syncIpcache.bind(dp);
    dp.syncIpcache = (m: ReadonlyMap<string, number>) => {
      const id = m.get('10.200.7.0/24');
      const before = dp.ipcache.get('10.200.7.0/24');
      seen.push({ id, allowed: id !== undefined ? opsAllows(id) : before !== undefined && opsAllows(before), before });
      return sync(m);
    };

    r.regenerate(both);
    const narrow = dp.ipcache.get('10.200.7.0/24');
    expect(narrow).toBeDefined();
    // The /24's identity is selected by ops's /16 rule, and the entry was there when the ipcache moved the /24 to it.
    expect(opsAllows(narrow!)).toBe(true);
    expect(seen).toEqual([{ id: narrow, allowed: true, before: undefined }]);

    seen.length = 0;
    r.regenerate(wide);
    // The /24 left the ipcache while ops's entry for its identity was still there; then the entry went.
    expect(seen).toEqual([{ id: undefined, allowed: true, before: narrow }]);
    expect(dp.ipcache.has('10.200.7.0/24')).toBe(false);
    expect(opsAllows(narrow!)).toBe(false);
  });

  it('issue-9 an ipcache write that fails leaves the entries of both policies, and the next pass removes the stale ones', () => {
    const { dp, endpoints, r } = node();
    endpoints.upsert({ name: 'ops', namespace: 'default', podLabels: { app: 'ops' }, ip: '10.77.1.2', ifname: 'lo' });
    const ops = endpoints.get('default', 'ops')!;
    const a = load(policy('ops', 'ops', '10.200.0.0/16'));
    const b = load(policy('ops', 'ops', '10.201.0.0/16'));
    r.regenerate(a);
    const idA = dp.ipcache.get('10.200.0.0/16')!;
    const allows = (id: number | undefined): boolean => id !== undefined && dp.entriesOf(ops.id).some((e) => e.identity === id && e.port === 22);
    const sync = dp.syncIpcache.bind(dp);
    dp.syncIpcache = () => {
      throw new Error('map full');
    };
    expect(() => r.regenerate(b)).toThrow('map full');
    // Nothing removed while the ipcache could not move: the old prefix is still allowed.
    expect(allows(idA)).toBe(true);
    dp.syncIpcache = sync;
    r.regenerate(b);
    expect(dp.ipcache.has('10.200.0.0/16')).toBe(false);
    expect([allows(idA), allows(dp.ipcache.get('10.201.0.0/16'))]).toEqual([false, true]);
  });

  it('issue-9 a failed pass, then an FQDN update, then a pass: the stale entries still go', () => {
    const { dp, endpoints, r } = node();
    endpoints.upsert({ name: 'ops', namespace: 'default', podLabels: { app: 'ops' }, ip: '10.77.1.2', ifname: 'lo' });
    const ops = endpoints.get('default', 'ops')!;
    const fqdn = `  - toFQDNs: [{matchPattern: "*.example.com"}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
`;
    const a = load(policy('ops', 'ops', '10.200.0.0/16') + fqdn);
    const b = load(policy('ops', 'ops', '10.201.0.0/16') + fqdn);
    r.regenerate(a);
    const idA = dp.ipcache.get('10.200.0.0/16')!;
    const sync = dp.syncIpcache.bind(dp);
    dp.syncIpcache = () => {
      throw new Error('map full');
    };
    expect(() => r.regenerate(b)).toThrow('map full');
    expect(ops.state).toBe('not-ready');
    dp.syncIpcache = sync;
    // An answer in between: a new label set, so every ready endpoint's entries are written.
    r.applyFqdn([{ ip: '10.9.9.9', labelKeys: ['*.example.com.'] }]);
    r.regenerate(b);
    expect(ops.state).toBe('ready');
    expect(dp.entriesOf(ops.id).some((e) => e.identity === idA)).toBe(false);
  });

  it('issue-9 a pod relabelled in place: its peers allow its new identity before the endpoints map gives its packets that identity', () => {
    const { dp, endpoints, r } = node();
    const policies = load(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: app, operator: In, values: [client, client2]}]}]
    toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
`);
    // The client first, so the loop reaches it before db.
    endpoints.upsert({ name: 'client', namespace: 'default', podLabels: { app: 'client' }, ip: '10.77.1.2', ifname: 'lo' });
    endpoints.upsert({ name: 'db', namespace: 'default', podLabels: { app: 'db' }, ip: '10.77.1.9', ifname: 'lo' });
    r.regenerate(policies);
    const db = endpoints.get('default', 'db')!;
    const dbAllows = (id: number): boolean => dp.entriesOf(db.id).some((e) => e.identity === id && !e.egress && e.port === 5432);
    const seen: Array<[number, boolean]> = [];
    const upsert = dp.upsertEndpoint.bind(dp);
    dp.upsertEndpoint = (ip: string, v: unknown) => {
      if (ip === '10.77.1.2') {
        const id = (v as { identity: number }).identity;
        seen.push([id, dbAllows(id)]);
      }
      upsert(ip, v);
    };
    endpoints.upsert({ name: 'client', namespace: 'default', podLabels: { app: 'client2' }, ip: '10.77.1.2', ifname: 'lo' });
    r.regenerate(policies);
    const client = endpoints.get('default', 'client')!;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every(([, ok]) => ok)).toBe(true);
    expect(seen.at(-1)![0]).toBe(client.identity);
    expect((dp.endpoints.get('10.77.1.2') as { identity: number }).identity).toBe(client.identity);
  });

  it('issue-9 a new endpoint: the peers that may reach it have its identity in their maps before its address does', () => {
    const { dp, endpoints, r } = node();
    const policies = load(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: db}}]
    toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
`);
    endpoints.upsert({ name: 'client', namespace: 'default', podLabels: { app: 'client' }, ip: '10.77.1.2', ifname: 'lo' });
    r.regenerate(policies);
    const client = endpoints.get('default', 'client')!;
    const allows = (id: number): boolean => dp.entriesOf(client.id).some((e) => e.identity === id && e.egress && e.port === 5432);
    const seen: boolean[] = [];
    const sync = dp.syncIpcache.bind(dp);
    dp.syncIpcache = (m: ReadonlyMap<string, number>) => {
      const id = m.get('10.77.1.9/32');
      if (id !== undefined && dp.ipcache.get('10.77.1.9/32') !== id) seen.push(allows(id));
      return sync(m);
    };
    endpoints.upsert({ name: 'db', namespace: 'default', podLabels: { app: 'db' }, ip: '10.77.1.9', ifname: 'lo' });
    r.regenerate(policies);
    const db = endpoints.get('default', 'db')!;
    expect(dp.ipcache.get('10.77.1.9/32')).toBe(db.identity);
    expect(seen).toEqual([true]);
  });
});
