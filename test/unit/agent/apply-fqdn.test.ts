/**
 * issue-8 the incremental FQDN path equals a full regeneration: after any sequence of
 * `applyFqdn` calls (addresses learned, relabelled, forgotten, AAAA), the ipcache and every
 * endpoint's policy entries are what a full pass computes from the same learned addresses —
 * including endpoints without toFQDNs rules whose CIDR, entity or deny rules select the
 * learned addresses (a fresh identity is `reserved:world` + `cidr:` labels too).
 *
 * The Datapath here is an in-memory port (the regenerator's map writes land in Maps); the real
 * maps are exercised by the mediabot e2e test. Endpoint links are `lo` (it exists everywhere).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Regenerator } from '../../../src/agent/regenerate.js';
import type { IdentityAllocator } from '../../../src/agent/identity-allocator.js';
import type { Endpoint, EndpointManager } from '../../../src/agent/endpoints.js';
import type { Datapath } from '../../../src/datapath/index.js';
import { loadPolicyText, type PolicyObject } from '../../../src/policy/index.js';
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
  ipcache: Object.fromEntries([...dp.ipcache].filter(([p]) => p.startsWith('10.78.200.')).sort()),
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
    const entriesOf = (ep: number) => [...(dp.policy.get(ep)?.values() ?? [])].filter((e) => e.identity === id);
    expect(entriesOf(2).some((e) => e.egress && e.deny)).toBe(true); // guard: the CIDR deny
    expect(entriesOf(3).some((e) => e.egress && !e.deny && e.port === 443)).toBe(true); // browser: toEntities world
    expect(entriesOf(4).some((e) => !e.egress && !e.deny)).toBe(true); // web: fromEntities world
    expect(entriesOf(1).some((e) => e.egress && !e.deny && e.port === 443)).toBe(true); // mediabot: toFQDNs
  });

  it('costs writes for the changed addresses only, however many are learned', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    r.regenerate(world().policies);
    r.applyFqdn(Array.from({ length: 500 }, (_, i) => ({ ip: `10.78.${201 + (i >> 8)}.${i & 255}`, labelKeys: ['*.example.com.'] })));
    const before = dp.writes;
    r.applyFqdn([{ ip: '10.78.200.99', labelKeys: ['*.example.com.'] }]);
    // one ipcache write, and for each of the four endpoints at most a couple of entries
    expect(dp.writes - before).toBeLessThanOrEqual(1 + 4 * 2);
  });
});
