import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPolicyText, parseLabel, TraceInputError, tracePolicy } from '../../../src/policy/index.js';
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
    expect(tracePolicy({ policies, dst: deathstar, srcCidr: '8.8.8.8', dport: 443 })).toMatchObject({ verdict: 'allowed', egress: { evaluated: false } });
    expect(tracePolicy({ policies, dst: deathstar, srcCidr: '8.8.8.8', dport: 80 }).verdict).toBe('denied');
    expect(tracePolicy({ policies, src: tiefighter, dstCidr: '10.2.3.4', dport: 5432 })).toMatchObject({ verdict: 'allowed', ingress: { evaluated: false } });
    expect(tracePolicy({ policies, src: tiefighter, dstCidr: '10.1.3.4', dport: 5432 })).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENIED' });
    // Against the agent, the address is judged and named as the ipcache holds it: the identity of
    // the longest policy prefix holding it (its labels as the agent gave them), or reserved:world.
    const prefix = { id: 16777228, labels: [parseLabel('cidr:10.0.0.0/8'), parseLabel('reserved:world')] };
    const agentBacked = tracePolicy({ policies, src: tiefighter, dstCidr: '10.2.3.4', dport: 5432, cidrIdentity: { dst: prefix } });
    expect(agentBacked).toMatchObject({ verdict: 'allowed', egress: { peerIdentity: 16777228 } });
    expect(agentBacked.lines[2]).toBe('  destination identity 16777228: cidr:10.0.0.0/8 reserved:world');
    const world = tracePolicy({ policies, src: tiefighter, dstCidr: '8.8.8.8', dport: 5432, cidrIdentity: { dst: { id: 2, labels: [parseLabel('reserved:world')] } } });
    expect(world).toMatchObject({ verdict: 'denied', egress: { peerIdentity: 2 } });
    expect(world.lines[2]).toBe('  destination identity 2: reserved:world');
    // An agent identity equal to the other side's stand-in number: the stand-in moves, two identities stay two.
    const clash = tracePolicy({ policies, srcCidr: '8.8.8.8', dstCidr: '10.2.3.4', dport: 5432, cidrIdentity: { dst: { ...prefix, id: (1 << 24) + 1 } } });
    expect(clash.lines[2]).toBe(`  destination identity ${(1 << 24) + 1}: cidr:10.0.0.0/8 reserved:world`);
    expect(clash.lines[1]).not.toMatch(new RegExp(`identity ${(1 << 24) + 1}:`));
    // A what-if (--dst-fqdn) is traced with the offline labels, not the address's identity now.
    expect(tracePolicy({ policies, src: tiefighter, dstCidr: '10.2.3.4', dstFqdn: 'x.example', dport: 5432, cidrIdentity: { dst: prefix } }).egress.peerIdentity).toBe((1 << 24) + 2);
    // A side is labels or a CIDR: both at once is contradictory input, not a guess.
    expect(() => tracePolicy({ policies, src: xwing, dst: deathstar, srcCidr: '8.8.8.8', dport: 443 })).toThrow(TraceInputError);
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

/** Policies from YAML text, problem-free. */
function yaml(text: string): PolicyObject[] {
  const r = loadPolicyText(text, 'inline.yaml');
  expect(r.problems).toEqual([]);
  return r.policies;
}

function inputError(fn: () => unknown): TraceInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TraceInputError);
    return err as TraceInputError;
  }
  throw new Error('expected a TraceInputError');
}

describe('issue-7: trace never answers ALLOWED for a flow the policy denies', () => {
  const rule1 = () => fixture('sw_l3_l4_policy.yaml');

  it('issue-7 label sources: k8s:org=alliance is the label org of source k8s, not k8s:k8s:org', () => {
    const r = tracePolicy({ policies: rule1(), src: { labels: { 'k8s:org': 'alliance', 'k8s:class': 'xwing' } }, dst: { labels: { 'k8s:org': 'empire', 'k8s:class': 'deathstar' } }, dport: 80 });
    expect(r).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENIED' });
    expect(r.lines.join('\n')).not.toContain('k8s:k8s:');
    expect(r.lines.join('\n')).toContain('selected by CiliumNetworkPolicy default/rule1');
    const ok = tracePolicy({ policies: rule1(), src: { labels: { 'k8s:org': 'empire', class: 'tiefighter' } }, dst: { labels: { 'any:org': 'empire', 'k8s:class': 'deathstar' } }, dport: 80 });
    expect(ok.verdict).toBe('allowed');
  });

  it('issue-7 label sources: container: and unspec: labels keep their source, so a k8s: selector does not select them', () => {
    const policies = yaml(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: k8s-only}
spec:
  endpointSelector: {matchLabels: {"k8s:app": db}}
  ingress: [{}]
`);
    expect(tracePolicy({ policies, src: { labels: { app: 'x' } }, dst: { labels: { app: 'db' } }, dport: 5432 }).verdict).toBe('denied');
    expect(tracePolicy({ policies, src: { labels: { app: 'x' } }, dst: { labels: { 'container:app': 'db' } }, dport: 5432 }).verdict).toBe('allowed');
  });

  it('issue-7 label sources: unknown sources, cidr: labels and sources no endpoint has are bad input', () => {
    for (const labels of [{ 'k8ss:org': 'empire' }, { 'cidr:10.0.0.0/8': '' }, { 'fqdn:x': '' }, { 'container:io.kubernetes.pod.namespace': 'x' }, { org: 'empire', 'k8s:org': 'alliance' }]) {
      const e = inputError(() => tracePolicy({ policies: rule1(), src: { labels }, dst: deathstar, dport: 80 }));
      expect(e).toMatchObject({ side: 'src', field: 'labels' });
    }
  });

  it('issue-7 service account label is honoured (vader → leia is denied, luke → leia allowed)', () => {
    const policies = fixture('../cli/trace/service-account.yaml');
    const sa = (name: string) => ({ labels: { 'io.cilium.k8s.policy.serviceaccount': name } });
    const vader = tracePolicy({ policies, src: sa('vader'), dst: sa('leia'), dport: 80 });
    expect(vader).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENIED' });
    expect(vader.lines[1]).toContain('k8s:io.cilium.k8s.policy.serviceaccount=vader');
    expect(tracePolicy({ policies, src: sa('luke'), dst: sa('leia'), dport: 80 }).verdict).toBe('allowed');
  });

  it('issue-7 cluster label is honoured (cluster1 → cluster3 is denied, → cluster2 allowed)', () => {
    const policies = fixture('../cli/trace/cross-cluster.yaml');
    const src = { labels: { name: 'x-wing', 'io.cilium.k8s.policy.cluster': 'cluster1' } };
    const to = (c: string) => ({ labels: { name: 'rebel-base', 'k8s:io.cilium.k8s.policy.cluster': c } });
    expect(tracePolicy({ policies, src, dst: to('cluster3'), dport: 80 })).toMatchObject({ verdict: 'denied', egress: { verdict: 'default-deny' } });
    expect(tracePolicy({ policies, src, dst: to('cluster2'), dport: 80 }).verdict).toBe('allowed');
  });

  it('issue-7 namespace labels: the label and the namespace field must agree', () => {
    const ns = (labels: Record<string, string>, extra: object = {}) => ({ policies: rule1(), src: xwing, dst: { labels: { org: 'empire', class: 'deathstar', ...labels }, ...extra }, dport: 80 });
    // The label alone moves the pod: rule1 (namespace default) no longer selects it.
    const moved = tracePolicy(ns({ 'io.kubernetes.pod.namespace': 'other' }));
    expect(moved.verdict).toBe('allowed');
    expect(moved.lines[2]).toContain('k8s:io.kubernetes.pod.namespace=other');
    expect(inputError(() => tracePolicy(ns({ 'io.kubernetes.pod.namespace': 'other' }, { namespace: 'default' })))).toMatchObject({ side: 'dst', field: 'namespace' });
    expect(inputError(() => tracePolicy(ns({ 'io.cilium.k8s.namespace.labels.team': 'a' }, { namespaceLabels: { team: 'b' } })))).toMatchObject({ field: 'namespaceLabels' });
    expect(inputError(() => tracePolicy(ns({ 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'x' })))).toMatchObject({ field: 'labels' });
    expect(tracePolicy(ns({ 'io.kubernetes.pod.namespace': 'default' }, { namespace: 'default' })).verdict).toBe('denied');
  });

  it('issue-7 named ports: the destination\'s container ports resolve ingress and egress named-port rules', () => {
    const policies = fixture('../cli/trace/named-port.yaml');
    const client = { labels: { kind: 'client' } };
    const echo = (namedPorts?: Record<string, { port: number; protocol?: 'TCP' | 'UDP' }>) => ({ labels: { kind: 'echo' }, ...(namedPorts ? { namedPorts } : {}) });
    const ports = { 'http-8080': { port: 8080 }, 'dns-53': { port: 53, protocol: 'UDP' as const } };
    expect(tracePolicy({ policies, src: client, dst: echo(ports), dport: 8080 })).toMatchObject({ verdict: 'allowed', ingress: { verdict: 'allow' } });
    expect(tracePolicy({ policies, src: client, dst: echo(ports), dport: 8081 }).verdict).toBe('denied');
    expect(tracePolicy({ policies, src: client, dst: echo(ports), dport: 53, protocol: 'UDP' })).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENY', egress: { verdict: 'deny' } });
    // Without the ports the rules match nothing, and the trace says so.
    const blind = tracePolicy({ policies, src: client, dst: echo(), dport: 8080 });
    expect(blind.verdict).toBe('denied');
    expect(blind.lines.join('\n')).toContain("named port http-8080 (CiliumNetworkPolicy default/echo-named-port ingress[0]) is not among the destination's named ports");
    expect(inputError(() => tracePolicy({ policies, src: client, dst: { labels: { kind: 'echo' }, namedPorts: { HTTP: { port: 80 } } }, dport: 80 }))).toMatchObject({ field: 'namedPorts' });
    expect(inputError(() => tracePolicy({ policies, src: client, dst: { labels: { kind: 'echo' }, namedPorts: { http: { port: 0 } } }, dport: 80 }))).toMatchObject({ field: 'namedPorts' });
  });

  it('issue-7 entities: reserved:host is subject to host policies only; world and remote-node to none', () => {
    const policies = fixture('../cli/trace/host.yaml');
    const echo = { labels: { kind: 'echo' } };
    const fromHost = tracePolicy({ policies, src: { labels: { 'reserved:host': '' } }, dst: echo, dport: 8080 });
    expect(fromHost).toMatchObject({ verdict: 'allowed', egress: { evaluated: true, enforced: false }, ingress: { verdict: 'allow', peerIdentity: 1 } });
    expect(tracePolicy({ policies, src: { entity: 'remote-node' }, dst: echo, dport: 8080 })).toMatchObject({ verdict: 'denied', egress: { evaluated: false }, ingress: { peerIdentity: 6 } });
    // The node's ingress: the host policy allows only 22 from the world.
    const worldToHost = tracePolicy({ policies, src: { labels: { 'reserved:world': '' } }, dst: { entity: 'host' }, dport: 80 });
    expect(worldToHost).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENIED', egress: { evaluated: false }, ingress: { evaluated: true, enforced: true } });
    expect(worldToHost.lines.join('\n')).toContain('host policies CiliumClusterwideNetworkPolicy node-ssh-only');
    expect(tracePolicy({ policies, srcCidr: '192.0.2.1', dst: { labels: { $host: '' } }, dport: 22 }).verdict).toBe('allowed');
    // A pod to the node: the pod's egress (none here), then the host policy.
    expect(tracePolicy({ policies, src: echo, dst: { labels: { 'reserved:host': '' } }, dport: 22 })).toMatchObject({ verdict: 'denied', ingress: { peerIdentity: 256 } });
    // Without host policies the node is not in default deny.
    expect(tracePolicy({ policies: rule1(), src: tiefighter, dst: { entity: 'host' }, dport: 10250 }).verdict).toBe('allowed');
  });

  it('issue-7 entities: groups, unknown names and entities with pod labels are bad input', () => {
    for (const src of [{ entity: 'cluster' }, { entity: 'all' }, { labels: { 'reserved:unknown': '' } }, { labels: { 'reserved:nope': '' } }, { labels: { 'reserved:host': '', org: 'x' } }, { entity: 'host', namespace: 'default' }]) {
      expect(inputError(() => tracePolicy({ policies: rule1(), src, dst: deathstar, dport: 80 })).side).toBe('src');
    }
  });

  it('issue-7 a side needs labels, an entity or a CIDR', () => {
    expect(inputError(() => tracePolicy({ policies: rule1(), dst: deathstar, dport: 80 }))).toMatchObject({ side: 'src' });
    expect(inputError(() => tracePolicy({ policies: rule1(), src: tiefighter, dst: { labels: {} }, dport: 80 }))).toMatchObject({ side: 'dst' });
  });
});
