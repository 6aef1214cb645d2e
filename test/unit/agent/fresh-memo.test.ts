/**
 * issue-8/9 applyFqdn resolves a learned address's identity once per signature (the labels the
 * policies' selectors name), not once per address: the memoised entries are exactly what the
 * unmemoised resolution gives — for addresses a toCIDR/toCIDRSet rule also selects (their
 * `cidr:` labels count), entity rules, visibility — and a policy change is never answered from
 * the memo of the policy before (the regenerator's revision invalidates it).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Regenerator, fqdnIdentityLabels } from '../../../src/agent/regenerate.js';
import { endpointVisibility } from '../../../src/agent/visibility.js';
import type { IdentityAllocator } from '../../../src/agent/identity-allocator.js';
import type { Endpoint, EndpointManager } from '../../../src/agent/endpoints.js';
import type { Datapath } from '../../../src/datapath/index.js';
import {
  FreshIdentityMemo,
  applyVisibility,
  endpointLabels,
  loadPolicyText,
  resolveEndpointPolicy,
  type EndpointPolicy,
  type Identity,
  type MapEntry,
  type PolicyObject,
} from '../../../src/policy/index.js';
import { MemoryDatapath, SharedIdentities } from '../../support/memory-datapath.js';

const BASE = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mediabot}
spec:
  endpointSelector: {matchLabels: {class: mediabot}}
  egress:
  - toFQDNs: [{matchName: api.github.com}, {matchPattern: "*.example.com"}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  - toCIDR: [10.78.200.0/24]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: guard}
spec:
  endpointSelector: {matchLabels: {class: guard}}
  egress:
  - toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  egressDeny:
  - toCIDRSet: [{cidr: 10.78.0.0/16, except: [10.78.201.0/24]}]
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

/** The change: mediabot may reach 10.78.202.0/24 on 8080, and the guard's deny spares 10.78.200.0/24 too. */
const CHANGED = BASE.replace(
  '    toPorts: [{ports: [{port: "80", protocol: TCP}]}]\n',
  '    toPorts: [{ports: [{port: "80", protocol: TCP}]}]\n  - toCIDR: [10.78.202.0/24]\n    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]\n',
).replace('except: [10.78.201.0/24]', 'except: [10.78.201.0/24, 10.78.200.0/24]');

function policies(text: string): PolicyObject[] {
  const r = loadPolicyText(text, 'fresh-memo.yaml');
  expect(r.problems).toEqual([]);
  return r.policies;
}

const PODS = ['mediabot', 'guard', 'browser', 'web'];

/** Learned addresses: inside the toCIDR allow, inside the except, under the deny only, outside every CIDR rule. */
function answers(first: number, keys: string[]): Array<{ ip: string; labelKeys: string[] }> {
  const out: Array<{ ip: string; labelKeys: string[] }> = [];
  for (const net of [200, 201, 202, 203]) for (let i = first; i < first + 3; i++) out.push({ ip: `${net === 203 ? '10.79.1' : `10.78.${net}`}.${i}`, labelKeys: keys });
  return out;
}

function freshIdentities(list: Array<{ ip: string; labelKeys: string[] }>, ids: SharedIdentities): Identity[] {
  return list.map(({ ip, labelKeys }) => {
    const labels = fqdnIdentityLabels(ip, labelKeys);
    return { id: ids.allocate(labels, 'local'), labels };
  });
}

/** Entries by identity, as comparable text (order within a direction does not matter to a lookup). */
function byIdentity(ingress: readonly MapEntry[], egress: readonly MapEntry[], ids: readonly number[]): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const id of ids) out[id] = [];
  for (const [dir, list] of [['in', ingress], ['out', egress]] as const) for (const e of list) out[e.identity]?.push(`${dir} ${JSON.stringify(e)}`);
  for (const id of ids) out[id]!.sort();
  return out;
}

describe('issue-8 FreshIdentityMemo', () => {
  it('gives each fresh identity the entries the unmemoised resolution gives, for every endpoint kind, before and after a policy change', () => {
    const ids = new SharedIdentities();
    const memo = new FreshIdentityMemo();
    const visibility = endpointVisibility({ 'policy.cilium.io/proxy-visibility': '<Egress/80/TCP/HTTP>,<Egress/443/TCP/HTTP>' }).visibility ?? null;
    expect(visibility).not.toBeNull();
    let stamp = 1;
    for (const text of [BASE, CHANGED]) {
      const pols = policies(text);
      memo.begin(stamp++);
      // Several batches: the first teaches the memo, the later ones are answered from it.
      for (const [b, keys] of [[1, ['*.example.com.']], [10, ['*.example.com.']], [20, ['api.github.com.']], [30, ['*.example.com.', 'api.github.com.']], [40, ['*.example.com.']]] as const) {
        const fresh = freshIdentities(answers(b, [...keys]), ids);
        const freshIds = fresh.map((i) => i.id);
        for (const pod of PODS) {
          for (const vis of [null, visibility]) {
            const endpoint = { labels: endpointLabels({ namespace: 'default', podLabels: { class: pod } }) };
            const finish = vis ? (p: EndpointPolicy) => applyVisibility(p, vis) : undefined;
            const kind = `${pod}|${vis ? 'vis' : ''}`;
            const got = memo.resolve(kind, { policies: pols, services: [], endpoint, ...(finish ? { finish } : {}) }, fresh);
            const plain = resolveEndpointPolicy({ policies: pols, endpoint, identities: fresh, services: [] });
            const want = finish ? finish(plain) : plain;
            expect([text === BASE ? 'base' : 'changed', b, kind, byIdentity(got.ingress, got.egress, freshIds)]).toEqual([
              text === BASE ? 'base' : 'changed',
              b,
              kind,
              byIdentity(want.ingress.entries, want.egress.entries, freshIds),
            ]);
          }
        }
      }
    }
    // It was the memo that answered: most identities shared a signature with one resolved before.
    expect(memo.hits).toBeGreaterThan(memo.misses);
  });

  it('an address under a toCIDR rule gets that rule\'s entries, one outside does not, though both have the same fqdn labels', () => {
    const ids = new SharedIdentities();
    const memo = new FreshIdentityMemo();
    memo.begin(1);
    const pols = policies(BASE);
    const endpoint = { labels: endpointLabels({ namespace: 'default', podLabels: { class: 'mediabot' } }) };
    const [outside, inside] = freshIdentities([{ ip: '10.79.1.1', labelKeys: ['*.example.com.'] }, { ip: '10.78.200.1', labelKeys: ['*.example.com.'] }], ids);
    const ports = (id: number) =>
      memo
        .resolve('mediabot', { policies: pols, services: [], endpoint }, [outside!, inside!])
        .egress.filter((e) => e.identity === id)
        .map((e) => e.port)
        .sort((a, b) => a - b);
    expect(ports(outside!.id)).toEqual([443]);
    expect(ports(inside!.id)).toEqual([80, 443]);
  });
});

function node(ids: SharedIdentities): { r: Regenerator; dp: MemoryDatapath } {
  const eps = PODS.map((name, i) => ({
    id: i + 1,
    name,
    namespace: 'default',
    podLabels: { class: name },
    ip: `10.78.1.${i + 2}`,
    ifname: 'lo',
    ifindex: 0,
    identity: 0,
    labels: [],
    policy: null,
    state: 'not-ready',
  })) as unknown as Endpoint[];
  const dp = new MemoryDatapath();
  const manager = { list: () => eps } as unknown as EndpointManager;
  return { r: new Regenerator(dp as unknown as Datapath, manager, ids as unknown as IdentityAllocator, { http: 15001, dns: 15053, tls: 15443 }, pino({ level: 'silent' })), dp };
}

/** The learned addresses' ipcache entries and every endpoint's policy entries (with their values). */
const view = (dp: MemoryDatapath) => ({
  ipcache: Object.fromEntries([...dp.ipcache].filter(([p]) => /^10\.7[89]\.(20\d|1)\./.test(p) && !p.startsWith('10.78.1.')).sort()),
  policy: Object.fromEntries([...dp.policy].map(([id, m]) => [id, [...m].map(([k, v]) => `${k} ${JSON.stringify(v)}`).sort()])),
});

describe('issue-8 applyFqdn with the memo equals a full regeneration', () => {
  it('over answers sharing signatures, addresses under toCIDR rules, and a policy change in between', () => {
    const ids = new SharedIdentities();
    const { r, dp } = node(ids);
    let text = BASE;
    r.regenerate(policies(text));
    const full = (): ReturnType<typeof view> => {
      const f = node(ids);
      f.r.applyFqdn([...r.fqdnIps()].map(([ip, labelKeys]) => ({ ip, labelKeys })));
      f.r.regenerate(policies(text));
      return view(f.dp);
    };
    const steps: Array<() => void> = [
      () => r.applyFqdn(answers(1, ['*.example.com.'])),
      () => r.applyFqdn(answers(10, ['*.example.com.'])),
      // relabelled: a second name selects addresses already learned
      () => r.applyFqdn(answers(1, ['*.example.com.', 'api.github.com.'])),
      () => {
        text = CHANGED;
        r.regenerate(policies(text));
      },
      // the same signatures as before the change: the memo of the old policy must not answer
      () => r.applyFqdn(answers(20, ['*.example.com.'])),
      () => r.applyFqdn(answers(30, ['*.example.com.'])),
      // expired, then learned again
      () => r.applyFqdn(answers(10, [])),
      () => r.applyFqdn(answers(10, ['*.example.com.'])),
    ];
    for (const [i, step] of steps.entries()) {
      step();
      expect([i, view(dp)]).toEqual([i, full()]);
    }
    // The addresses the changed policy's toCIDR names got its port 8080 from the incremental path.
    const id = dp.ipcache.get('10.78.202.20/32')!;
    expect([...dp.policy.get(1)!.values()].some((e) => e.identity === id && e.egress && e.port === 8080 && !e.deny)).toBe(true);
  });
});
