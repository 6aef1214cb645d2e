import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPolicyText, tracePolicy } from '../../../src/policy/index.js';
import type { PolicyObject } from '../../../src/policy/index.js';
import { ccnp, cnp, from, ports, spec, to } from './builders.js';

function fixture(name: string): PolicyObject[] {
  const r = loadPolicyText(readFileSync(fileURLToPath(new URL(`../../fixtures/policy/${name}`, import.meta.url)), 'utf8'), name);
  expect(r.problems).toEqual([]);
  return r.policies;
}

const ns = 'default';
const tiefighter = { labels: { org: 'empire', class: 'tiefighter' }, namespace: ns };
const xwing = { labels: { org: 'alliance', class: 'xwing' }, namespace: ns };
const deathstar = { labels: { org: 'empire', class: 'deathstar' }, namespace: ns };

describe('tracePolicy', () => {
  it('no policy: allowed', () => {
    const r = tracePolicy({ policies: [], src: xwing, dst: deathstar, dport: 80 });
    expect(r).toMatchObject({ verdict: 'allowed', redirect: null, dropReason: null, matched: [] });
    expect(r.lines.at(-1)).toBe('Final verdict: ALLOWED');
  });

  it('Star Wars L3/L4: tiefighter allowed, xwing denied by default deny', () => {
    const policies = fixture('sw_l3_l4_policy.yaml');
    const ok = tracePolicy({ policies, src: tiefighter, dst: deathstar, dport: 80, protocol: 'TCP' });
    expect(ok).toMatchObject({ verdict: 'allowed', redirect: null, dropReason: null, matched: [{ policy: 'rule1', namespace: 'default', direction: 'ingress', rule: 0 }] });
    expect(ok.ingress).toMatchObject({ evaluated: true, enforced: true, verdict: 'allow' });
    expect(ok.egress).toMatchObject({ evaluated: true, enforced: false, verdict: 'default-allow' });
    const no = tracePolicy({ policies, src: xwing, dst: deathstar, dport: 80 });
    expect(no).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENIED', matched: [] });
    expect(no.lines.at(-1)).toBe('Final verdict: DENIED');
    expect(no.lines.join('\n')).toContain('default deny, POLICY_DENIED, 133');
  });

  it('Star Wars L7: POST landing allowed, PUT exhaust-port denied (403)', () => {
    const policies = fixture('sw_l3_l4_l7_policy.yaml');
    const post = tracePolicy({ policies, src: tiefighter, dst: deathstar, dport: 80, http: { method: 'POST', path: '/v1/request-landing' } });
    expect(post).toMatchObject({ verdict: 'allowed', redirect: 'http' });
    expect(post.ingress.l7).toEqual({ kind: 'http', evaluated: true, allowed: true, matched: 0 });
    const put = tracePolicy({ policies, src: tiefighter, dst: deathstar, dport: 80, http: { method: 'PUT', path: '/v1/exhaust-port' } });
    expect(put).toMatchObject({ verdict: 'denied', redirect: 'http', dropReason: null });
    expect(put.lines.join('\n')).toContain('403 Access denied');
    const l3only = tracePolicy({ policies, src: tiefighter, dst: deathstar, dport: 80 });
    expect(l3only).toMatchObject({ verdict: 'allowed', redirect: 'http' });
    expect(tracePolicy({ policies, src: xwing, dst: deathstar, dport: 80, http: { method: 'POST', path: '/v1/request-landing' } }).verdict).toBe('denied');
  });

  it('an egress deny of the source wins and reports POLICY_DENY', () => {
    const policies = [
      cnp('deny-xwing').withSpec(spec().withEndpointSelector({ class: 'xwing' }).withEgressDeny(to().withEndpoints({ class: 'deathstar' }).withPorts(ports().withPort('80', 'TCP')))).policy(),
    ];
    const r = tracePolicy({ policies, src: xwing, dst: deathstar, dport: 80 });
    expect(r).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENY', matched: [{ policy: 'deny-xwing', direction: 'egress', rule: 0 }] });
    expect(r.egress.verdict).toBe('deny');
    expect(r.ingress.verdict).toBe('default-allow');
  });

  it('external sources and destinations by CIDR', () => {
    const policies = [
      ccnp('world-in').withSpec(spec().withEndpointSelector({ class: 'deathstar' }).withIngress(from().withEntities('world').withPorts(ports().withPort('443', 'TCP')))).policy(),
      cnp('out').withSpec(spec().withEndpointSelector({ class: 'tiefighter' }).withEgress(to().withCIDRSet('10.0.0.0/8', ['10.1.0.0/16']))).policy(),
    ];
    expect(tracePolicy({ policies, src: xwing, dst: deathstar, srcCidr: '8.8.8.8', dport: 443 })).toMatchObject({ verdict: 'allowed', egress: { evaluated: false } });
    expect(tracePolicy({ policies, src: xwing, dst: deathstar, srcCidr: '8.8.8.8', dport: 80 }).verdict).toBe('denied');
    expect(tracePolicy({ policies, src: tiefighter, dst: deathstar, dstCidr: '10.2.3.4', dport: 5432 })).toMatchObject({ verdict: 'allowed', ingress: { evaluated: false } });
    expect(tracePolicy({ policies, src: tiefighter, dst: deathstar, dstCidr: '10.1.3.4', dport: 5432 })).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENIED' });
  });

  it('DNS names through the L7 DNS rules', () => {
    const policies = [
      cnp('dns')
        .withSpec(
          spec()
            .withEndpointSelector({ class: 'tiefighter' })
            .withEgress(to().withEndpoints({ class: 'deathstar' }).withPorts(ports().withPort('53', 'UDP').withDns({ matchPattern: '*.empire.org' }))),
        )
        .policy(),
    ];
    const base = { policies, src: tiefighter, dst: deathstar, dport: 53, protocol: 'UDP' as const };
    expect(tracePolicy({ ...base, dnsName: 'api.empire.org' })).toMatchObject({ verdict: 'allowed', redirect: 'dns' });
    expect(tracePolicy({ ...base, dnsName: 'rebels.org' })).toMatchObject({ verdict: 'denied', redirect: 'dns' });
  });

  it('namespace labels and services can be given', () => {
    const policies = [
      cnp('ns')
        .withNamespace('prod')
        .withSpec(spec().withEndpointSelector({ app: 'db' }).withIngress(from().withEndpoints({ 'k8s:io.cilium.k8s.namespace.labels.team': 'blue' })))
        .policy(),
      cnp('svc').withNamespace('prod').withSpec(spec().withEndpointSelector({ app: 'web' }).withEgress(to().withService('db'))).policy(),
    ];
    const db = { labels: { app: 'db' }, namespace: 'prod' };
    expect(tracePolicy({ policies, src: { labels: { app: 'x' }, namespace: 'dev', namespaceLabels: { team: 'blue' } }, dst: db, dport: 5432 }).verdict).toBe('allowed');
    expect(tracePolicy({ policies, src: { labels: { app: 'x' }, namespace: 'dev' }, dst: db, dport: 5432 }).verdict).toBe('denied');
    const services = [{ name: 'db', namespace: 'prod', labels: {}, selector: { app: 'db' } }];
    const web = { labels: { app: 'web' }, namespace: 'prod', namespaceLabels: { team: 'blue' } };
    expect(tracePolicy({ policies, src: web, dst: db, dport: 5432, services }).verdict).toBe('allowed');
    expect(tracePolicy({ policies, src: web, dst: db, dport: 5432 }).egress.dropReason).toBe('POLICY_DENIED');
  });

  it('ICMP uses the type as the port', () => {
    const policies = [cnp('icmp').withSpec(spec().withEndpointSelector({ class: 'deathstar' }).withIngress(from().withEndpoints({ org: 'empire' }).withIcmp({ type: 8 }))).policy()];
    expect(tracePolicy({ policies, src: tiefighter, dst: deathstar, protocol: 'ICMP' }).verdict).toBe('allowed');
    expect(tracePolicy({ policies, src: tiefighter, dst: deathstar, protocol: 'ICMP', dport: 13 }).verdict).toBe('denied');
  });
});
