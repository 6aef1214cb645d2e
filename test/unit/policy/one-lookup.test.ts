/**
 * Property test: for random rule sets, one lookup in the resolved map state gives the same
 * answer as evaluating every rule directly (deny beats allow; L7 merged; L4 allow ⇒ allow-all).
 */
import { describe, expect, it } from 'vitest';
import { lookupPolicy, reservedIdentities, resolveEndpointPolicy } from '../../../src/policy/index.js';
import type { Identity, PolicyObject } from '../../../src/policy/index.js';
import { peerIdentities, portRanges } from '../../../src/policy/resolve/resolve.js';
import { cnp, from, pod, ports, spec } from './builders.js';
import type { PeerRuleBuilder } from './builders.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const endpoint = pod(5000, 'default', { app: 'server' });
const peers: Identity[] = [
  pod(5001, 'default', { app: 'a', tier: 'web' }),
  pod(5002, 'default', { app: 'b', tier: 'web' }),
  pod(5003, 'default', { app: 'c', tier: 'db' }),
  pod(5004, 'other', { app: 'a', tier: 'web' }),
];
const PORT_POOL = [0, 53, 79, 80, 81, 443, 8000, 8080, 8088];

function randomRule(r: () => number, deny: boolean): PeerRuleBuilder {
  const b = from();
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const peerKind = r();
  if (peerKind < 0.35) b.withEndpoints(pick([{ app: 'a' }, { app: 'b' }, { tier: 'web' }, { tier: 'db' }]));
  else if (peerKind < 0.45) b.withEntities(pick(['all', 'world', 'cluster']));
  else if (peerKind < 0.55) b.withEndpoints({ app: 'a' }, { app: 'c' });
  const withPorts = peerKind >= 0.55 || r() < 0.7;
  if (withPorts) {
    const pr = ports();
    const n = 1 + Math.floor(r() * 2);
    let tcpOnly = true;
    for (let i = 0; i < n; i++) {
      const port = pick(PORT_POOL.filter((p) => p !== 0));
      const proto = pick(['TCP', 'TCP', 'UDP', 'ANY']);
      if (proto !== 'TCP') tcpOnly = false;
      const range = r() < 0.3 ? port + Math.floor(r() * 40) : undefined;
      pr.withPort(String(port), proto, range);
    }
    if (!deny && tcpOnly && r() < 0.5) pr.withHttp({ method: pick(['GET', 'POST']), path: pick(['/a', '/b']) });
    b.withPorts(pr);
  }
  return b;
}

function randomPolicies(seed: number): PolicyObject[] {
  const r = rng(seed);
  const out: PolicyObject[] = [];
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const s = spec().withEndpointSelector({ app: 'server' });
    const na = Math.floor(r() * 4);
    const nd = r() < 0.5 ? Math.floor(r() * 3) : 0;
    for (let j = 0; j < na; j++) s.withIngress(randomRule(r, false));
    for (let j = 0; j < nd; j++) s.withIngressDeny(randomRule(r, true));
    if (na + nd === 0) s.withIngress(from());
    out.push(cnp(`p${i}`).withSpec(s).policy());
  }
  return out;
}

interface Expected {
  verdict: string;
  allowAll?: boolean;
  rules?: string[];
}

/** Direct evaluation of every rule, without map entries. */
function direct(policies: PolicyObject[], identities: readonly Identity[], id: number, proto: number, port: number): Expected {
  let denied = false;
  const allows: { l7: unknown }[] = [];
  let enforced = false;
  for (const p of policies) {
    for (const rule of p.rules) {
      enforced ||= rule.hasIngress && rule.defaultDenyIngress;
      for (const [section, deny] of [[rule.ingress, false], [rule.ingressDeny, true]] as const) {
        for (const pr of section) {
          const sel = pr.peers === null ? 'all' : pr.peers.map((x) => peerIdentities(x, identities, []));
          const selected = sel === 'all' || sel.some((s) => s === 'all' || s.has(id));
          if (!selected) continue;
          const hits =
            pr.ports === null
              ? [{ l7: null }]
              : pr.ports.filter((ps) => portRanges(ps, new Map()).some((x) => x.proto === proto && x.lo <= port && port <= x.hi)).map((ps) => ({ l7: ps.l7 }));
          if (hits.length === 0) continue;
          if (deny) denied = true;
          else allows.push(...hits);
        }
      }
    }
  }
  if (denied) return { verdict: 'deny' };
  if (allows.length === 0) return { verdict: enforced ? 'default-deny' : 'default-allow' };
  const l7 = allows.filter((a) => a.l7 !== null) as { l7: { kind: 'http'; rules: object[] } }[];
  if (l7.length === 0) return { verdict: 'allow' };
  return {
    verdict: 'redirect',
    allowAll: allows.some((a) => a.l7 === null),
    rules: [...new Set(l7.flatMap((a) => a.l7.rules.map((x) => JSON.stringify(x))))].sort(),
  };
}

describe('one lookup gives the full answer', () => {
  it('matches direct evaluation for 300 random rule sets', () => {
    const identities = [endpoint, ...peers];
    const allIds = [0, 1, 2, 6, 9, endpoint.id, ...peers.map((p) => p.id)];
    const probePorts = [...new Set(PORT_POOL.flatMap((p) => [p, p + 1, p + 39, p + 40, Math.max(0, p - 1)]))];
    let checked = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const policies = randomPolicies(seed);
      const ep = resolveEndpointPolicy({ policies, endpoint, identities });
      const withReserved = [...identities, ...[1, 2, 6, 9].map((id) => ({ id, labels: [] }))];
      // reserved identities as resolve sees them
      const resolvedIds = resolveIdsLike(withReserved);
      for (const id of allIds) {
        if (id === 0) continue;
        for (const proto of [6, 17, 132, 1]) {
          for (const port of probePorts) {
            const got = lookupPolicy(ep.ingress, id, proto, port);
            const want = direct(policies, resolvedIds, id, proto, port);
            const gotShape: Expected =
              got.verdict === 'redirect' && got.entry?.l7?.kind === 'http'
                ? { verdict: 'redirect', allowAll: got.entry.l7.allowAll, rules: [...new Set(got.entry.l7.rules.map((x) => JSON.stringify(x)))].sort() }
                : { verdict: got.verdict };
            if (JSON.stringify(gotShape) !== JSON.stringify(want)) {
              expect({ seed, id, proto, port, got: gotShape, entries: ep.ingress.entries.length }).toEqual({ seed, id, proto, port, got: want, entries: ep.ingress.entries.length });
            }
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(50000);
  });
});

function resolveIdsLike(ids: Identity[]): Identity[] {
  const m = new Map<number, Identity>();
  for (const r of reservedIdentities()) m.set(r.id, r);
  for (const i of ids) if (i.labels.length) m.set(i.id, i);
  return [...m.values()].filter((i) => i.id !== 0);
}
