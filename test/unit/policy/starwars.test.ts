import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evaluateHttp, loadPolicyText, lookupPolicy, resolveEndpointPolicy } from '../../../src/policy/index.js';
import type { PolicyObject } from '../../../src/policy/index.js';
import { pod } from './builders.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/policy/${name}`, import.meta.url));

function load(name: string): PolicyObject[] {
  const r = loadPolicyText(readFileSync(fixture(name), 'utf8'), name);
  expect(r.problems).toEqual([]);
  return r.policies;
}

const deathstar = pod(1001, 'default', { org: 'empire', class: 'deathstar' });
const tiefighter = pod(1002, 'default', { org: 'empire', class: 'tiefighter' });
const xwing = pod(1003, 'default', { org: 'alliance', class: 'xwing' });
const identities = [deathstar, tiefighter, xwing];

describe('Star Wars demo policies', () => {
  it('without policy every endpoint allows everything', () => {
    const p = resolveEndpointPolicy({ policies: [], endpoint: deathstar, identities });
    expect(p.ingress.enforced).toBe(false);
    expect(lookupPolicy(p.ingress, xwing.id, 6, 80).verdict).toBe('default-allow');
  });

  it('rule1 L3/L4 loads as a namespaced CiliumNetworkPolicy', () => {
    const [p] = load('sw_l3_l4_policy.yaml');
    expect(p).toMatchObject({ kind: 'CiliumNetworkPolicy', name: 'rule1', namespace: 'default', file: 'sw_l3_l4_policy.yaml' });
  });

  it('rule1 L3/L4: deathstar ingress enforced; tiefighter allowed on TCP/80; xwing default-denied', () => {
    const policies = load('sw_l3_l4_policy.yaml');
    const p = resolveEndpointPolicy({ policies, endpoint: deathstar, identities });
    expect(p.ingress.enforced).toBe(true);
    expect(p.egress.enforced).toBe(false);
    const ref = { policy: 'rule1', namespace: 'default', kind: 'CiliumNetworkPolicy', direction: 'ingress', index: 0, specIndex: 0 };
    // deathstar itself is org=empire too, so it is selected by fromEndpoints.
    expect(p.ingress.entries).toEqual([
      { identity: deathstar.id, protocol: 6, port: 80, portPrefixLen: 16, verdict: 'allow', derivedFrom: [ref] },
      {
        identity: tiefighter.id,
        protocol: 6,
        port: 80,
        portPrefixLen: 16,
        verdict: 'allow',
        derivedFrom: [ref],
      },
    ]);
    expect(lookupPolicy(p.ingress, tiefighter.id, 6, 80).verdict).toBe('allow');
    expect(lookupPolicy(p.ingress, tiefighter.id, 6, 81)).toEqual({ verdict: 'default-deny', entry: null, dropReason: 133 });
    expect(lookupPolicy(p.ingress, tiefighter.id, 17, 80).verdict).toBe('default-deny');
    expect(lookupPolicy(p.ingress, xwing.id, 6, 80)).toEqual({ verdict: 'default-deny', entry: null, dropReason: 133 });
    // deathstar itself is org=empire too: selected by fromEndpoints.
    expect(lookupPolicy(p.ingress, deathstar.id, 6, 80).verdict).toBe('allow');
  });

  it('rule1 does not select tiefighter or xwing', () => {
    const policies = load('sw_l3_l4_policy.yaml');
    for (const ep of [tiefighter, xwing]) {
      const p = resolveEndpointPolicy({ policies, endpoint: ep, identities });
      expect(p.ingress).toEqual({ enforced: false, entries: [] });
      expect(p.egress).toEqual({ enforced: false, entries: [] });
    }
  });

  it('rule1 L7: tiefighter redirected to the proxy with the HTTP rule; POST landing allowed, PUT exhaust-port denied', () => {
    const policies = load('sw_l3_l4_l7_policy.yaml');
    const p = resolveEndpointPolicy({ policies, endpoint: deathstar, identities });
    const r = lookupPolicy(p.ingress, tiefighter.id, 6, 80);
    expect(r.verdict).toBe('redirect');
    expect(r.entry?.l7).toEqual({ kind: 'http', rules: [{ method: 'POST', path: '/v1/request-landing' }], allowAll: false });
    const l7 = r.entry!.l7!;
    if (l7.kind !== 'http') throw new Error('expected http');
    const req = (method: string, path: string) => ({ method, path, host: 'deathstar.default.svc.cluster.local', headers: {} });
    expect(evaluateHttp(l7, req('POST', '/v1/request-landing'))).toEqual({ allowed: true, matchedRule: 0 });
    expect(evaluateHttp(l7, req('PUT', '/v1/exhaust-port'))).toEqual({ allowed: false, matchedRule: null });
    expect(evaluateHttp(l7, req('POST', '/v1/request-landing/extra'))).toEqual({ allowed: false, matchedRule: null });
    expect(lookupPolicy(p.ingress, xwing.id, 6, 80).verdict).toBe('default-deny');
  });

  it('a namespaced policy only selects peers in its own namespace', () => {
    const policies = load('sw_l3_l4_policy.yaml');
    const otherNsFighter = pod(1004, 'other', { org: 'empire', class: 'tiefighter' });
    const p = resolveEndpointPolicy({ policies, endpoint: deathstar, identities: [...identities, otherNsFighter] });
    expect(lookupPolicy(p.ingress, otherNsFighter.id, 6, 80).verdict).toBe('default-deny');
    // and it does not select a deathstar in another namespace
    const otherDeathstar = pod(1005, 'other', { org: 'empire', class: 'deathstar' });
    expect(resolveEndpointPolicy({ policies, endpoint: otherDeathstar, identities }).ingress.enforced).toBe(false);
  });
});
