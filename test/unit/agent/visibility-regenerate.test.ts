/**
 * issue-11 proxy visibility on the agent's two write paths: a full regeneration and the
 * incremental FQDN path (applyFqdn) write the same map entries, keys and values, for an endpoint
 * with a visibility annotation, so an address learned from DNS is redirected for visibility as
 * it would be after a full pass, and judged as without the annotation.
 *
 * The Datapath is the in-memory port of test/support/memory-datapath.ts.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Regenerator } from '../../../src/agent/regenerate.js';
import { endpointVisibility } from '../../../src/agent/visibility.js';
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
