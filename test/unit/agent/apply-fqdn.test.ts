/**
 * issue-8 the incremental FQDN path equals a full regeneration: after any sequence of
 * `applyFqdn` calls (addresses learned, relabelled, forgotten, AAAA), the ipcache and every
 * endpoint's policy entries are what a full pass computes from the same learned addresses —
 * including endpoints without toFQDNs rules whose CIDR, entity or deny rules select the
 * learned addresses (a learned address's identity is `reserved:world` + the `cidr:` labels of
 * the policy prefix that holds it + its `fqdn:` labels, as Cilium 1.16+ labels them: CFP-28427).
 *
 * The Datapath here is an in-memory port (the regenerator's map writes land in Maps); the real
 * maps are exercised by the mediabot e2e test. Endpoint links are `lo` (it exists everywhere).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Regenerator, fqdnIdentityLabels } from '../../../src/agent/regenerate.js';
import type { IdentityAllocator } from '../../../src/agent/identity-allocator.js';
import type { Endpoint, EndpointManager } from '../../../src/agent/endpoints.js';
import { ipv4ToNumber, parseIpv4Prefix, type Datapath } from '../../../src/datapath/index.js';
import { formatLabel, loadPolicyText, policyFqdnSelectors, type PolicyObject } from '../../../src/policy/index.js';
import { FqdnPrelearn } from '../../../src/proxyworker/prelearn.js';
import { MemoryDatapath, SharedIdentities } from '../../support/memory-datapath.js';

const POLICIES = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mediabot}
spec:
  endpointSelector: {matchLabels: {class: mediabot}}
  egress:
  - toFQDNs: [{matchName: api.github.com}, {matchPattern: "*.example.com"}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: guard}
spec:
  endpointSelector: {matchLabels: {class: guard}}
  egress:
  - toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  egressDeny:
  - toCIDR: [10.78.200.20/32]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: browser}
spec:
  endpointSelector: {matchLabels: {class: browser}}
  egress:
  - toEntities: [world]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web}
spec:
  endpointSelector: {matchLabels: {class: web}}
  ingress:
  - fromEntities: [world]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ops}
spec:
  endpointSelector: {matchLabels: {class: ops}}
  egress:
  - toCIDRSet: [{cidr: 10.78.200.0/24, except: [10.78.200.128/25]}]
    toPorts: [{ports: [{port: "22", protocol: TCP}]}]
`;

function world(): { policies: PolicyObject[]; pods: Array<{ name: string; ip: string }> } {
  const r = loadPolicyText(POLICIES, 'apply-fqdn.yaml');
  expect(r.problems).toEqual([]);
  return {
    policies: r.policies,
    pods: [
      { name: 'mediabot', ip: '10.78.1.2' },
      { name: 'guard', ip: '10.78.1.3' },
      { name: 'browser', ip: '10.78.1.4' },
      { name: 'web', ip: '10.78.1.5' },
      { name: 'ops', ip: '10.78.1.6' },
    ],
  };
}

function node(ids: SharedIdentities): { r: Regenerator; dp: MemoryDatapath } {
  const { pods } = world();
  const eps = pods.map((p, i) => ({
    id: i + 1,
    name: p.name,
    namespace: 'default',
    podLabels: { class: p.name },
    ip: p.ip,
    ifname: 'lo',
    ifindex: 0,
    identity: 0,
    labels: [],
    policy: null,
    state: 'not-ready',
  })) as unknown as Endpoint[];
  const dp = new MemoryDatapath();
  const manager = { list: () => eps } as unknown as EndpointManager;
  const r = new Regenerator(dp as unknown as Datapath, manager, ids as unknown as IdentityAllocator, { http: 15001, dns: 15053, tls: 15443 }, pino({ level: 'silent' }));
  return { r, dp };
}

/** The maps as a full pass writes them, for the learned addresses `incremental` holds now. */
function fullPass(ids: SharedIdentities, learned: ReadonlyMap<string, readonly string[]>): MemoryDatapath {
  const { r, dp } = node(ids);
  r.applyFqdn([...learned].map(([ip, labelKeys]) => ({ ip, labelKeys })));
  r.regenerate(world().policies);
  return dp;
}

const view = (dp: MemoryDatapath) => ({
  ipcache: Object.fromEntries([...dp.ipcache].filter(([p]) => p.startsWith('10.78.200.') || p.startsWith('10.79.')).sort()),
  policy: Object.fromEntries([...dp.policy].map(([id, m]) => [id, [...m.keys()].sort()])),
});

describe('issue-8 applyFqdn equals a full regeneration', () => {
  it('after every step of a sequence of answers, relabels and expiries', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    const steps: Array<Array<{ ip: string; labelKeys: string[] }>> = [
      [{ ip: '10.78.200.20', labelKeys: ['api.github.com.'] }, { ip: '10.78.200.21', labelKeys: ['api.github.com.'] }],
      [{ ip: '10.78.200.30', labelKeys: ['*.example.com.'] }, { ip: '2606:50c0:8000::154', labelKeys: ['api.github.com.'] }],
      // a second name shares an address: relabelled, new identity
      [{ ip: '10.78.200.20', labelKeys: ['*.example.com.', 'api.github.com.'] }],
      // expired: no selector selects it any more
      [{ ip: '10.78.200.21', labelKeys: [] }],
      [{ ip: '10.78.200.20', labelKeys: [] }, { ip: '10.78.200.40', labelKeys: ['*.example.com.'] }],
      // inside the ops CIDR's except, and outside every policy prefix
      [{ ip: '10.78.200.130', labelKeys: ['*.example.com.'] }, { ip: '10.79.0.1', labelKeys: ['*.example.com.'] }],
      // the last address of an identity goes while another joins it
      [{ ip: '10.78.200.40', labelKeys: [] }, { ip: '10.78.200.41', labelKeys: ['*.example.com.'] }],
    ];
    for (const [i, step] of steps.entries()) {
      r.applyFqdn(step);
      expect([i, view(dp)]).toEqual([i, view(fullPass(ids, r.fqdnIps()))]);
    }
    // An IPv6 address (an AAAA answer) is never taken: the datapath is IPv4-only.
    expect([...r.fqdnIps().keys()].some((ip) => ip.includes(':'))).toBe(false);
  });

  it('a learned address is denied to the pod whose egressDeny names it, and allowed to world rules', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    r.applyFqdn([{ ip: '10.78.200.20', labelKeys: ['api.github.com.'] }]);
    const id = dp.ipcache.get('10.78.200.20/32')!;
    const entriesOf = (ep: number) => dp.entriesOf(ep).filter((e) => e.identity === id);
    expect(entriesOf(2).some((e) => e.egress && e.deny)).toBe(true); // guard: the CIDR deny
    expect(entriesOf(3).some((e) => e.egress && !e.deny && e.port === 443)).toBe(true); // browser: toEntities world
    expect(entriesOf(4).some((e) => !e.egress && !e.deny)).toBe(true); // web: fromEntities world
    expect(entriesOf(1).some((e) => e.egress && !e.deny && e.port === 443)).toBe(true); // mediabot: toFQDNs
  });

  it('a new address of a known name costs one ipcache write: addresses the same selectors select share an identity', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    r.applyFqdn(Array.from({ length: 500 }, (_, i) => ({ ip: `10.78.${201 + (i >> 8)}.${i & 255}`, labelKeys: ['*.example.com.'] })));
    const before = dp.writes;
    const policyBefore = JSON.stringify(view(dp).policy);
    r.applyFqdn([{ ip: '10.79.0.99', labelKeys: ['*.example.com.'] }]);
    expect(dp.writes - before).toBe(1);
    expect(JSON.stringify(view(dp).policy)).toBe(policyBefore);
    const shared = dp.ipcache.get('10.78.201.7/32')!;
    expect(dp.ipcache.get('10.79.0.99/32')).toBe(shared);
    expect(ids.labelsOf(shared)!.map(formatLabel).sort()).toEqual(['fqdn:*.example.com.', 'reserved:world', 'reserved:world-ipv4']);
  });

  it('a learned address inside a policy prefix carries the labels of that prefix, so the CIDR rule and its except select it', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    r.applyFqdn([
      { ip: '10.78.200.30', labelKeys: ['*.example.com.'] },
      { ip: '10.78.200.31', labelKeys: ['*.example.com.'] },
      { ip: '10.78.200.130', labelKeys: ['*.example.com.'] },
    ]);
    const id30 = dp.ipcache.get('10.78.200.30/32')!;
    const id130 = dp.ipcache.get('10.78.200.130/32')!;
    expect(dp.ipcache.get('10.78.200.31/32')).toBe(id30);
    expect(id130).not.toBe(id30);
    expect(ids.labelsOf(id30)!.map(formatLabel)).toContain('cidr:10.78.200.0/24');
    expect(ids.labelsOf(id130)!.map(formatLabel)).toContain('cidr:10.78.200.128/25');
    const ops = (id: number) => dp.entriesOf(5).some((e) => e.identity === id && e.egress && !e.deny && e.port === 22);
    expect([ops(id30), ops(id130)]).toEqual([true, false]);
  });

  it('the first pass gives back the local identities of learned addresses no address holds (an earlier run labelled each address alone)', () => {
    const ids = new SharedIdentities();
    const stale = ids.allocate(fqdnIdentityLabels('10.78.200.21', ['api.github.com.']), 'local');
    const released: number[] = [];
    ids.release = (id?: number) => void released.push(id!);
    const { r, dp } = node(ids);
    r.applyFqdn([{ ip: '10.78.200.21', labelKeys: ['api.github.com.'] }]); // restored before the first pass
    r.regenerate(world().policies);
    const held = dp.ipcache.get('10.78.200.21/32')!;
    expect(held).not.toBe(stale);
    expect(released).toEqual([stale]);
  });

  it('IPv6 CIDRs in a policy: the pass completes (the ipcache is IPv4-only), and ::/0 does not select a learned IPv4 address outside every policy prefix', () => {
    const v6 = loadPolicyText(
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: v6}
spec:
  endpointSelector: {matchLabels: {class: web}}
  egress:
  - toCIDR: ["::/0", "2001:db8::/32"]
    toPorts: [{ports: [{port: "8443", protocol: TCP}]}]
`,
      'v6.yaml',
    );
    expect(v6.problems).toEqual([]);
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate([...world().policies, ...v6.policies]);
    r.applyFqdn([{ ip: '10.79.0.5', labelKeys: ['*.example.com.'] }]);
    const id = dp.ipcache.get('10.79.0.5/32')!;
    const ports = (ep: number) => dp.entriesOf(ep).filter((e) => e.identity === id && e.egress && !e.deny).map((e) => e.port);
    expect([ports(4), ports(3)]).toEqual([[], [443]]); // web's ::/0 does not select it; browser's toEntities world does
    expect([...dp.ipcache.keys()].some((p) => p.includes(':'))).toBe(false);
  });

  it('a policy that names a prefix holding a learned address relabels it after the pass: its entries are written before its ipcache entry moves', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies.filter((p) => p.name !== 'guard'));
    r.applyFqdn([{ ip: '10.78.200.20', labelKeys: ['api.github.com.'] }]);
    const loose = dp.ipcache.get('10.78.200.20/32')!;
    // Every time the address's ipcache entry is written, mediabot's toFQDNs entry for that identity is already there.
    const allowed = (id: number) => dp.entriesOf(1).some((e) => e.identity === id && e.egress && !e.deny && e.port === 443);
    const seen: Array<[number, boolean]> = [];
    const upsert = dp.upsertIpcache.bind(dp);
    dp.upsertIpcache = (p: string, id: number) => {
      if (p === '10.78.200.20/32') seen.push([id, allowed(id)]);
      upsert(p, id);
    };
    const sync = dp.syncIpcache.bind(dp);
    dp.syncIpcache = (m: ReadonlyMap<string, number>) => {
      const id = m.get('10.78.200.20/32');
      if (id !== undefined) seen.push([id, allowed(id)]);
      return sync(m);
    };
    r.regenerate(world().policies);
    const id = dp.ipcache.get('10.78.200.20/32')!;
    expect(id).not.toBe(loose);
    expect(seen.every(([, ok]) => ok)).toBe(true);
    expect(seen.map(([i]) => i)).toEqual([loose, id]);
    expect(ids.labelsOf(id)!.map(formatLabel)).toContain('cidr:10.78.200.20/32');
    expect(dp.entriesOf(2).some((e) => e.identity === id && e.egress && e.deny)).toBe(true);
    // The identity it left has no entries left anywhere.
    expect([...dp.policy.values()].some((m) => [...m.values()].some((e) => e.identity === loose))).toBe(false);
    // And the next pass, with nothing changed, moves nothing.
    const writes = dp.writes;
    r.regenerate(world().policies);
    expect([dp.ipcache.get('10.78.200.20/32'), dp.writes]).toEqual([id, writes]);
  });
});

describe('issue-9 a proxy worker gives a new address the identity applyFqdn would (src/proxyworker/prelearn.ts)', () => {
  /** A worker's FqdnPrelearn fed the agent's table, as the pool sends it after a sync. */
  function worker(r: Regenerator, policies = world().policies): FqdnPrelearn {
    const t = r.fqdnLearnTable();
    const w = new FqdnPrelearn();
    w.setTable({ version: String(t.version), selectorsVersion: 0, selectors: policyFqdnSelectors(policies), identities: t.identities });
    return w;
  }
  /** The identity the (in-memory) ipcache's longest prefix gives an address: what the worker reads from the kernel's LPM map. */
  const lpm = (dp: MemoryDatapath) => (ip: string): number => {
    const n = ipv4ToNumber(ip);
    let best: { bits: number; id: number } = { bits: -1, id: 2 };
    for (const [prefix, id] of dp.ipcache) {
      const p = parseIpv4Prefix(prefix);
      if (p.bits > best.bits && ((n & p.mask) >>> 0) === p.base) best = { bits: p.bits, id };
    }
    return best.id;
  };
  const identities = (plan: ReturnType<FqdnPrelearn['plan']>) => plan?.map(({ ip, identity }) => ({ ip, identity })) ?? null;

  it('for every address whose label set has an identity (inside a policy prefix or not), the one applyFqdn then writes', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    r.applyFqdn([{ ip: '10.78.200.30', labelKeys: ['*.example.com.'] }, { ip: '10.79.0.1', labelKeys: ['*.example.com.'] }]);
    const inside = dp.ipcache.get('10.78.200.30/32')!;
    const outside = dp.ipcache.get('10.79.0.1/32')!;
    expect(inside).not.toBe(outside);
    const plan = worker(r).plan('WWW.Example.com.', ['10.78.200.31', '10.79.0.2', '2606:50c0:8000::154'], lpm(dp));
    expect(identities(plan)).toEqual([{ ip: '10.78.200.31', identity: inside }, { ip: '10.79.0.2', identity: outside }]);
    r.applyFqdn([{ ip: '10.78.200.31', labelKeys: ['*.example.com.'] }, { ip: '10.79.0.2', labelKeys: ['*.example.com.'] }]);
    expect([dp.ipcache.get('10.78.200.31/32'), dp.ipcache.get('10.79.0.2/32')]).toEqual([inside, outside]);
  });

  it('an address whose label set has no identity yet (another selector, another prefix), or a name no selector admits, takes the round trip', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    expect(worker(r).plan('www.example.com', ['10.79.0.2'], lpm(dp))).toBeNull(); // no address holds that label set yet
    r.applyFqdn([{ ip: '10.79.0.1', labelKeys: ['*.example.com.'] }]);
    const w = worker(r);
    expect(w.plan('api.github.com', ['10.79.0.3'], lpm(dp))).toBeNull(); // another selector's label set
    expect(w.plan('www.example.com', ['10.78.200.130'], lpm(dp))).toBeNull(); // inside the ops except prefix: other cidr labels
    expect(w.plan('www.example.org', ['10.79.0.4'], lpm(dp))).toBeNull(); // no selector: the agent decides (its selectors may be newer)
    expect(new FqdnPrelearn().plan('www.example.com', ['10.79.0.2'], lpm(dp))).toBeNull(); // no table yet
  });

  it('a deny prefix the agent wrote after the worker got its table: the worker reads the prefix from the ipcache and leaves the address to the agent', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    r.applyFqdn([{ ip: '10.79.0.1', labelKeys: ['*.example.com.'] }]);
    const stale = worker(r);
    expect(stale.plan('www.example.com', ['10.79.0.2'], lpm(dp))).not.toBeNull();
    const denied = loadPolicyText(
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: no-79}
spec:
  endpointSelector: {matchLabels: {class: mediabot}}
  egressDeny:
  - toCIDR: [10.79.0.0/16]
`,
      'no-79.yaml',
    ).policies;
    r.regenerate([...world().policies, ...denied]);
    expect(stale.plan('www.example.com', ['10.79.0.2'], lpm(dp))).toBeNull();
  });

  it('the table lists only identities some address holds and none with a deny entry of its own; its version moves only when it changes', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    // guard's egressDeny toCIDR 10.78.200.20/32 gives that address's identity a deny entry.
    r.applyFqdn([{ ip: '10.79.0.1', labelKeys: ['*.example.com.'] }, { ip: '10.78.200.20', labelKeys: ['api.github.com.'] }]);
    const t1 = r.fqdnLearnTable();
    expect(t1.identities.map(([, id]) => id)).toEqual([dp.ipcache.get('10.79.0.1/32')]);
    r.regenerate(world().policies);
    expect(r.fqdnLearnTable().version).toBe(t1.version);
    r.applyFqdn([{ ip: '10.79.0.1', labelKeys: [] }]);
    const t2 = r.fqdnLearnTable();
    expect(t2.version).not.toBe(t1.version);
    expect(t2.identities).toEqual([]);
    expect(worker(r).plan('www.example.com', ['10.79.0.2'], lpm(dp))).toBeNull();
  });

  it('settlePrewritten takes back a worker-written entry the agent did not keep, and leaves the ones it did', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    r.applyFqdn([{ ip: '10.79.0.1', labelKeys: ['*.example.com.'] }]);
    const id = dp.ipcache.get('10.79.0.1/32')!;
    // Two addresses written by a worker; the agent learns only the first (the second's endpoint went).
    dp.upsertIpcache('10.79.0.2/32', id);
    dp.upsertIpcache('10.79.0.3/32', id);
    r.applyFqdn([{ ip: '10.79.0.2', labelKeys: ['*.example.com.'] }]);
    expect(r.settlePrewritten([{ ip: '10.79.0.2', identity: id }, { ip: '10.79.0.3', identity: id }])).toBe(1);
    expect([dp.ipcache.get('10.79.0.2/32'), dp.ipcache.has('10.79.0.3/32')]).toEqual([id, false]);
    // The agent's own /32 entries (an endpoint's address) are never taken.
    expect(r.settlePrewritten([{ ip: '10.78.1.2', identity: id }])).toBe(0);
    expect(dp.ipcache.has('10.78.1.2/32')).toBe(true);
  });
});
