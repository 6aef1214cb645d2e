import { describe, expect, it } from 'vitest';
import { cidrIdentityLabels, loadPolicyText, lookupPolicy, policyCidrs, policyFqdnSelectors, rangeToPrefixes, resolveEndpointPolicy } from '../../../src/policy/index.js';
import type { DirectionPolicy, Identity, PolicyObject } from '../../../src/policy/index.js';
import { ccnp, cnp, from, pod, ports, spec, to, yamlOf } from './builders.js';

const server = pod(1000, 'default', { app: 'server' });
const client = pod(1001, 'default', { app: 'client' });
const other = pod(1002, 'default', { app: 'other' });
const remote = pod(1003, 'prod', { app: 'client' }, { team: 'blue' });
const serverSpec = () => spec().withEndpointSelector({ app: 'server' });
const ids: Identity[] = [server, client, other, remote];

function resolve(policies: PolicyObject[], endpoint: Identity = server, identities: Identity[] = ids) {
  return resolveEndpointPolicy({ policies, endpoint, identities });
}

function verdict(dir: DirectionPolicy, id: number, proto: number, port: number): string {
  return lookupPolicy(dir, id, proto, port).verdict;
}

describe('default deny', () => {
  it('an empty ingress rule enforces ingress only and allows nothing', () => {
    const p = resolve([cnp('deny-all').withSpec(serverSpec().withIngress(from())).policy()]);
    expect(p.ingress).toEqual({ enforced: true, entries: [] });
    expect(p.egress).toEqual({ enforced: false, entries: [] });
  });

  it('an empty ingress list does not enforce (next to a non-empty egress section)', () => {
    // `ingress: []` alone is rejected (Cilium Rule.Validate); beside a real section it enforces nothing.
    const p = resolve([cnp('x').withSpec(serverSpec().withField('ingress', []).withEgress(to())).policy()]);
    expect(p.ingress.enforced).toBe(false);
    expect(p.egress.enforced).toBe(true);
  });

  it('ingressDeny alone enforces ingress', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withIngressDeny(from().withEndpoints({ app: 'client' }))).policy()]);
    expect(p.ingress.enforced).toBe(true);
    expect(verdict(p.ingress, other.id, 6, 80)).toBe('default-deny');
  });

  it('enableDefaultDeny: false opts out, but another policy requesting default deny wins', () => {
    const optOut = cnp('opt-out').withSpec(serverSpec().withDefaultDeny({ ingress: false }).withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP')))).policy();
    const p = resolve([optOut]);
    expect(p.ingress.enforced).toBe(false);
    expect(verdict(p.ingress, client.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, other.id, 6, 80)).toBe('default-allow');
    const strict = cnp('strict').withSpec(serverSpec().withIngress(from())).policy();
    expect(resolve([optOut, strict]).ingress.enforced).toBe(true);
  });

  it('a toPorts-only rule admits every peer on those ports', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('80', 'TCP')))).policy()]);
    expect(p.ingress.entries).toMatchObject([{ identity: 0, protocol: 6, port: 80, portPrefixLen: 16, verdict: 'allow' }]);
    expect(verdict(p.ingress, other.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, 2, 6, 80)).toBe('allow');
  });

  it('fromEndpoints: [] selects no peer', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withField('fromEndpoints', []).withPorts(ports().withPort('80', 'TCP')))).policy()]);
    expect(p.ingress).toEqual({ enforced: true, entries: [] });
  });
});

describe('deny precedence and derived entries', () => {
  it('"allow any:80" + "deny X:*" ⇒ also "deny X:80"', () => {
    const p = resolve([
      cnp('x')
        .withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('80', 'TCP'))).withIngressDeny(from().withEndpoints({ app: 'client' })))
        .policy(),
    ]);
    expect(p.ingress.entries.map((e) => [e.identity, e.protocol, e.port, e.portPrefixLen, e.verdict, e.dropReason])).toEqual([
      [0, 6, 80, 16, 'allow', undefined],
      [client.id, 0, 0, 0, 'deny', 181],
      [client.id, 6, 80, 16, 'deny', 181],
    ]);
    expect(lookupPolicy(p.ingress, client.id, 6, 80)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(verdict(p.ingress, other.id, 6, 80)).toBe('allow');
    expect(lookupPolicy(p.ingress, client.id, 17, 53)).toMatchObject({ verdict: 'deny', dropReason: 181 });
  });

  it('a deny in one policy beats an allow in another, whatever the kinds', () => {
    const allow = ccnp('allow-all').withSpec(serverSpec().withIngress(from().withEntities('all'))).policy();
    const deny = cnp('deny-client-80').withSpec(serverSpec().withIngressDeny(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP')))).policy();
    const p = resolve([allow, deny]);
    expect(lookupPolicy(p.ingress, client.id, 6, 80)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(verdict(p.ingress, client.id, 6, 81)).toBe('allow');
    expect(verdict(p.ingress, other.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, 2, 6, 80)).toBe('allow');
  });

  it('an L4 wildcard deny beats an identity allow', () => {
    const p = resolve([
      cnp('x')
        .withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' })).withIngressDeny(from().withPorts(ports().withPort('22', 'TCP'))))
        .policy(),
    ]);
    expect(lookupPolicy(p.ingress, client.id, 6, 22)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(verdict(p.ingress, client.id, 6, 23)).toBe('allow');
  });

  it('deny over a port range inside an allowed range', () => {
    const p = resolve([
      cnp('x')
        .withSpec(
          serverSpec()
            .withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('8000', 'TCP', 8999)))
            .withIngressDeny(from().withPorts(ports().withPort('8080', 'TCP', 8090))),
        )
        .policy(),
    ]);
    for (const [port, v] of [[7999, 'default-deny'], [8000, 'allow'], [8079, 'allow'], [8080, 'deny'], [8090, 'deny'], [8091, 'allow'], [8999, 'allow'], [9000, 'default-deny']] as const) {
      expect([port, verdict(p.ingress, client.id, 6, port)]).toEqual([port, v]);
    }
  });
});

describe('L7 merge', () => {
  const get = (path: string) => ({ method: 'GET', path });

  it('HTTP rules of several policies on the same peer and port are OR-ed', () => {
    const a = cnp('a').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP').withHttp(get('/a'))))).policy();
    const b = cnp('b').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP').withHttp(get('/b'))))).policy();
    const r = lookupPolicy(resolve([a, b]).ingress, client.id, 6, 80);
    expect(r.verdict).toBe('redirect');
    expect(r.entry!.l7).toEqual({ kind: 'http', rules: [get('/a'), get('/b')], allowAll: false });
    expect(r.entry!.derivedFrom.map((d) => d.policy)).toEqual(['a', 'b']);
  });

  it('an L4 rule without L7 on the same port makes the L7 rules allow everything (still redirected)', () => {
    const a = cnp('a').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP').withHttp(get('/a'))))).policy();
    const b = cnp('b').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP')))).policy();
    const r = lookupPolicy(resolve([a, b]).ingress, client.id, 6, 80);
    expect(r.verdict).toBe('redirect');
    expect(r.entry!.l7).toEqual({ kind: 'http', rules: [get('/a')], allowAll: true });
  });

  it('a wildcard L7 rule plus an L3 allow for one peer: that peer is redirected with allow-all', () => {
    const p = resolve([
      cnp('x')
        .withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('80', 'TCP').withHttp(get('/public')))).withIngress(from().withEndpoints({ app: 'client' })))
        .policy(),
    ]);
    expect(lookupPolicy(p.ingress, client.id, 6, 80).entry!.l7).toEqual({ kind: 'http', rules: [get('/public')], allowAll: true });
    expect(lookupPolicy(p.ingress, other.id, 6, 80).entry!.l7).toEqual({ kind: 'http', rules: [get('/public')], allowAll: false });
    expect(verdict(p.ingress, client.id, 6, 443)).toBe('allow');
    expect(verdict(p.ingress, other.id, 6, 443)).toBe('default-deny');
  });

  it('DNS rules merge into patterns; matchPattern "*" is kept as match-all', () => {
    const dns = pod(1100, 'kube-system', { 'k8s-app': 'kube-dns' });
    const pol = cnp('dns')
      .withSpec(
        spec()
          .withEndpointSelector({ app: 'client' })
          .withEgress(
            to()
              .withEndpoints({ 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s-app': 'kube-dns' })
              .withPorts(ports().withPort('53', 'ANY').withDns({ matchName: 'API.github.com' }, { matchPattern: '*.cilium.io' })),
          ),
      )
      .policy();
    const p = resolve([pol], client, [...ids, dns]);
    const r = lookupPolicy(p.egress, dns.id, 17, 53);
    expect(r.verdict).toBe('redirect');
    expect(r.entry!.l7).toEqual({ kind: 'dns', patterns: ['api.github.com.', '*.cilium.io.'], allowAll: false });
    expect(verdict(p.egress, dns.id, 6, 53)).toBe('redirect');
    expect(verdict(p.egress, server.id, 17, 53)).toBe('default-deny');
  });
});

describe('peers', () => {
  it('CNP fromEndpoints {} means every pod of the policy namespace', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withSelector({}))).policy()]);
    expect(verdict(p.ingress, client.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, remote.id, 6, 80)).toBe('default-deny');
    expect(verdict(p.ingress, 2, 6, 80)).toBe('default-deny');
  });

  it('CCNP fromEndpoints {} means every pod of every namespace, but not reserved identities', () => {
    const p = resolve([ccnp('x').withSpec(serverSpec().withIngress(from().withSelector({}))).policy()]);
    expect(verdict(p.ingress, client.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, remote.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, 2, 6, 80)).toBe('default-deny');
    expect(verdict(p.ingress, 1, 6, 80)).toBe('default-deny');
  });

  it('CCNP endpointSelector is not namespace-scoped; CNP selectors naming the namespace leave it', () => {
    const c = ccnp('x').withSpec(spec().withEndpointSelector({ app: 'client' }).withIngress(from())).policy();
    expect(resolve([c], remote).ingress.enforced).toBe(true);
    const n = cnp('y').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client', 'k8s:io.kubernetes.pod.namespace': 'prod' }))).policy();
    const p = resolve([n]);
    expect(verdict(p.ingress, remote.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, client.id, 6, 80)).toBe('default-deny');
  });

  it('CNP selectors on namespace labels are not scoped to the policy namespace', () => {
    const n = cnp('y').withSpec(serverSpec().withIngress(from().withEndpoints({ 'k8s:io.cilium.k8s.namespace.labels.team': 'blue' }))).policy();
    expect(verdict(resolve([n]).ingress, remote.id, 6, 80)).toBe('allow');
  });

  it('matchExpressions In, NotIn, Exists, DoesNotExist', () => {
    const env = (id: number, labels: Record<string, string>) => pod(id, 'default', labels);
    const a = env(2001, { tier: 'web', env: 'prod' });
    const b = env(2002, { tier: 'db', env: 'prod' });
    const c = env(2003, { tier: 'web' });
    const sel = (me: object[]) => cnp('m').withSpec(serverSpec().withIngress(from().withSelector({ matchExpressions: me }))).policy();
    const allowed = (me: object[]) =>
      [a, b, c].filter((x) => verdict(resolve([sel(me)], server, [a, b, c]).ingress, x.id, 6, 80) === 'allow').map((x) => x.id);
    expect(allowed([{ key: 'tier', operator: 'In', values: ['web', 'api'] }])).toEqual([a.id, c.id]);
    expect(allowed([{ key: 'tier', operator: 'NotIn', values: ['web'] }])).toEqual([b.id]);
    expect(allowed([{ key: 'env', operator: 'Exists' }])).toEqual([a.id, b.id]);
    expect(allowed([{ key: 'env', operator: 'DoesNotExist' }])).toEqual([c.id]);
    expect(allowed([{ key: 'k8s:env', operator: 'Exists' }, { key: 'tier', operator: 'In', values: ['db'] }])).toEqual([b.id]);
  });

  it('entities: world, cluster, host, all', () => {
    const cidr: Identity = { id: 16777217, labels: cidrIdentityLabels('8.8.8.8/32') };
    const all = [...ids, cidr];
    const ent = (name: string) => resolve([cnp('e').withSpec(serverSpec().withIngress(from().withEntities(name))).policy()], server, all).ingress;
    const allowedIds = (d: DirectionPolicy) => [1, 2, 6, 7, 9, 10, client.id, remote.id, cidr.id].filter((id) => verdict(d, id, 6, 80) === 'allow');
    expect(allowedIds(ent('world'))).toEqual([2, 9, 10, cidr.id]);
    expect(allowedIds(ent('world-ipv4'))).toEqual([9, cidr.id]);
    expect(allowedIds(ent('cluster'))).toEqual([1, 6, 7, client.id, remote.id]);
    expect(allowedIds(ent('host'))).toEqual([1]);
    expect(allowedIds(ent('remote-node'))).toEqual([6, 7]);
    expect(allowedIds(ent('all'))).toEqual([1, 2, 6, 7, 9, 10, client.id, remote.id, cidr.id]);
    expect(ent('all').entries).toMatchObject([{ identity: 0, protocol: 0, verdict: 'allow' }]);
    expect(allowedIds(ent('none'))).toEqual([]);
  });

  it('toCIDRSet with except selects CIDR identities inside the prefix but outside the except', () => {
    const pol = cnp('c').withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withCIDRSet('10.0.0.0/8', ['10.96.0.0/12']))).policy();
    expect(policyCidrs([pol])).toEqual(['10.0.0.0/8', '10.96.0.0/12']);
    const inside: Identity = { id: 16777217, labels: cidrIdentityLabels('10.1.2.3/32') };
    const excepted: Identity = { id: 16777218, labels: cidrIdentityLabels('10.96.0.0/12') };
    const parent: Identity = { id: 16777219, labels: cidrIdentityLabels('10.0.0.0/8') };
    const outside: Identity = { id: 16777220, labels: cidrIdentityLabels('192.168.0.1/32') };
    const p = resolve([pol], client, [...ids, inside, excepted, parent, outside]).egress;
    expect(verdict(p, inside.id, 6, 443)).toBe('allow');
    expect(verdict(p, parent.id, 6, 443)).toBe('allow');
    expect(verdict(p, excepted.id, 6, 443)).toBe('default-deny');
    expect(verdict(p, outside.id, 6, 443)).toBe('default-deny');
    expect(verdict(p, 2, 6, 443)).toBe('default-deny');
    expect(verdict(p, server.id, 6, 443)).toBe('default-deny');
  });

  it('toCIDR 0.0.0.0/0 also covers the world identities', () => {
    const pol = cnp('c').withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withCIDR('0.0.0.0/0'))).policy();
    const v6: Identity = { id: 16777221, labels: cidrIdentityLabels('2001:db8::1/128') };
    const p = resolve([pol], client, [...ids, v6]).egress;
    expect(verdict(p, 2, 6, 443)).toBe('allow');
    expect(verdict(p, 9, 6, 443)).toBe('allow');
    expect(verdict(p, 10, 6, 443)).toBe('default-deny');
    expect(verdict(p, v6.id, 6, 443)).toBe('default-deny');
  });

  it('toServices by name and by selector select the service backends', () => {
    const services = [
      { name: 'deathstar', namespace: 'default', labels: { tier: 'front' }, selector: { app: 'server' } },
      { name: 'external', namespace: 'default', labels: {}, selector: null },
    ];
    const byName = cnp('s').withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withService('deathstar', 'default'))).policy();
    const p = resolveEndpointPolicy({ policies: [byName], endpoint: client, identities: ids, services }).egress;
    expect(verdict(p, server.id, 6, 80)).toBe('allow');
    expect(verdict(p, other.id, 6, 80)).toBe('default-deny');
    const bySel = cnp('s').withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withServiceSelector({ tier: 'front' }))).policy();
    expect(verdict(resolveEndpointPolicy({ policies: [bySel], endpoint: client, identities: ids, services }).egress, server.id, 6, 80)).toBe('allow');
    // a CNP without a namespace on k8sService only reaches services of its own namespace
    const prodSvc = [{ name: 'deathstar', namespace: 'prod', labels: {}, selector: { app: 'client' } }];
    const implicit = cnp('s').withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withService('deathstar'))).policy();
    expect(verdict(resolveEndpointPolicy({ policies: [implicit], endpoint: client, identities: ids, services: prodSvc }).egress, remote.id, 6, 80)).toBe('default-deny');
  });

  it('reserved labels in fromEndpoints are not namespace-scoped', () => {
    const p = resolve([cnp('h').withSpec(serverSpec().withIngress(from().withEndpoints({ 'reserved:host': '' }))).policy()]);
    expect(verdict(p.ingress, 1, 6, 22)).toBe('allow');
    expect(verdict(p.ingress, 6, 6, 22)).toBe('default-deny');
  });

  it('toFQDNs select identities labelled fqdn:<selector> by the FQDN subsystem', () => {
    const pol = cnp('f')
      .withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withFQDN({ matchName: 'API.github.com' }).withPorts(ports().withPort('443', 'TCP'))))
      .policy();
    expect(policyFqdnSelectors([pol])).toEqual([{ matchName: 'API.github.com', matchPattern: undefined, labelKey: 'api.github.com.' }]);
    const gh: Identity = { id: 16777300, labels: [...cidrIdentityLabels('140.82.112.5/32'), { source: 'fqdn', key: 'api.github.com.', value: '' }] };
    const p = resolve([pol], client, [...ids, gh]).egress;
    expect(p.enforced).toBe(true);
    expect(verdict(p, gh.id, 6, 443)).toBe('allow');
    expect(verdict(p, gh.id, 6, 80)).toBe('default-deny');
    expect(verdict(p, 2, 6, 443)).toBe('default-deny');
  });
});

describe('ports', () => {
  it('endPort ranges become prefix entries', () => {
    expect(rangeToPrefixes(80, 80)).toEqual([{ port: 80, prefixLen: 16 }]);
    expect(rangeToPrefixes(0, 65535)).toEqual([{ port: 0, prefixLen: 0 }]);
    expect(rangeToPrefixes(8000, 8080)).toEqual([
      { port: 8000, prefixLen: 10 },
      { port: 8064, prefixLen: 12 },
      { port: 8080, prefixLen: 16 },
    ]);
    const p = resolve([cnp('r').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('8000', 'TCP', 8080)))).policy()]);
    expect(p.ingress.entries.map((e) => [e.port, e.portPrefixLen])).toEqual([
      [8000, 10],
      [8064, 12],
      [8080, 16],
    ]);
    expect(verdict(p.ingress, client.id, 6, 8081)).toBe('default-deny');
  });

  it('protocol ANY covers TCP, UDP and SCTP', () => {
    const p = resolve([cnp('r').withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('53')))).policy()]);
    expect(p.ingress.entries.map((e) => e.protocol)).toEqual([6, 17, 132]);
    expect(verdict(p.ingress, client.id, 1, 53)).toBe('default-deny');
  });

  it('VRRP and IGMP match the whole protocol', () => {
    const p = resolve([cnp('v').withSpec(serverSpec().withIngress(from().withPorts(ports().withField('ports', [{ protocol: 'VRRP' }])))).policy()]);
    expect(p.ingress.entries).toMatchObject([{ identity: 0, protocol: 112, port: 0, portPrefixLen: 0 }]);
  });

  it('port "0" means every port of the protocol', () => {
    const p = resolve([cnp('r').withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('0', 'UDP')))).policy()]);
    expect(p.ingress.entries).toMatchObject([{ identity: 0, protocol: 17, port: 0, portPrefixLen: 0 }]);
  });

  it('ICMP types (numbers and names, IPv4 and IPv6)', () => {
    const p = resolve([cnp('i').withSpec(serverSpec().withIngress(from().withIcmp({ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }, { type: 0 }))).policy()]);
    expect(p.ingress.entries.map((e) => [e.protocol, e.port, e.portPrefixLen])).toEqual([
      [1, 0, 16],
      [1, 8, 16],
      [58, 128, 16],
    ]);
    expect(verdict(p.ingress, client.id, 1, 3)).toBe('default-deny');
  });

  it('named ports: ingress resolves against the endpoint, egress against each peer', () => {
    const pol = cnp('n').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('http', 'TCP')))).policy();
    const p = resolveEndpointPolicy({ policies: [pol], endpoint: { ...server, namedPorts: { http: { port: 8080, protocol: 6 } } }, identities: ids });
    expect(verdict(p.ingress, client.id, 6, 8080)).toBe('allow');
    expect(verdict(p.ingress, client.id, 6, 80)).toBe('default-deny');
    const udpOnly = resolveEndpointPolicy({ policies: [pol], endpoint: { ...server, namedPorts: { http: { port: 8080, protocol: 17 } } }, identities: ids });
    expect(udpOnly.ingress.entries).toEqual([]);

    const eg = cnp('e').withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withEndpoints({ app: 'server' }).withPorts(ports().withPort('web')))).policy();
    const srv: Identity = { ...server, namedPorts: { web: { port: 8443, protocol: 6 } } };
    const q = resolveEndpointPolicy({ policies: [eg], endpoint: client, identities: [srv, client, other] });
    expect(verdict(q.egress, server.id, 6, 8443)).toBe('allow');
    expect(verdict(q.egress, server.id, 6, 80)).toBe('default-deny');
  });
});

describe('Kubernetes NetworkPolicy', () => {
  const knp = (name: string, specObj: object, ns = 'x') => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec: specObj });
  const xa = pod(3001, 'x', { pod: 'a' });
  const xb = pod(3002, 'x', { pod: 'b' });
  const ya = pod(3003, 'y', { pod: 'a' }, { ns: 'y' });
  const za = pod(3004, 'z', { pod: 'a' }, { ns: 'z' });
  const all = [xa, xb, ya, za];
  const load = (...o: object[]) => {
    const r = loadPolicyText(yamlOf(...(o as Record<string, unknown>[])), 'knp.yaml');
    expect(r.problems).toEqual([]);
    return r.policies;
  };

  it('default deny ingress: podSelector {} with policyTypes [Ingress]', () => {
    const ps = load(knp('deny', { podSelector: {}, policyTypes: ['Ingress'] }));
    const p = resolve(ps, xa, all);
    expect(p.ingress).toEqual({ enforced: true, entries: [] });
    expect(p.egress.enforced).toBe(false);
  });

  it('an empty policyTypes list is defaulted', () => {
    const p = resolve(load(knp('d', { podSelector: {}, policyTypes: [] })), xa, all);
    expect(p.ingress.enforced).toBe(true);
    expect(p.egress.enforced).toBe(false);
  });

  it('egress section implies Egress policy type when policyTypes is absent', () => {
    const ps = load(knp('e', { podSelector: { matchLabels: { pod: 'a' } }, egress: [{ to: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }));
    const p = resolve(ps, xa, all);
    expect(p.ingress.enforced).toBe(true);
    expect(p.egress.enforced).toBe(true);
    expect(verdict(p.egress, xb.id, 6, 80)).toBe('allow');
    expect(verdict(p.egress, ya.id, 6, 80)).toBe('default-deny');
  });

  it('namespaceSelector, podSelector AND namespaceSelector, and empty from', () => {
    const ps = load(
      knp('n', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }, { from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In', values: ['z'] }] }, podSelector: { matchLabels: { pod: 'b' } } }] }],
      }),
    );
    const p = resolve(ps, xa, all);
    expect(verdict(p.ingress, ya.id, 6, 80)).toBe('allow');
    expect(verdict(p.ingress, ya.id, 6, 81)).toBe('default-deny');
    expect(verdict(p.ingress, ya.id, 17, 80)).toBe('default-deny');
    expect(verdict(p.ingress, za.id, 6, 80)).toBe('default-deny');
    expect(verdict(p.ingress, xb.id, 6, 80)).toBe('default-deny');
    const open = resolve(load(knp('o', { podSelector: {}, ingress: [{}] })), xa, all);
    expect(verdict(open.ingress, 2, 6, 80)).toBe('allow');
  });

  it('ipBlock with except, named ports and endPort', () => {
    const ps = load(
      knp('i', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [
          { to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ protocol: 'UDP', port: 81 }] },
          { ports: [{ port: 'serve-80', protocol: 'TCP' }] },
          { ports: [{ port: 8000, endPort: 8010 }] },
        ],
      }),
    );
    expect(policyCidrs(ps)).toEqual(['10.0.0.0/8', '10.1.0.0/16']);
    const inside: Identity = { id: 16777217, labels: cidrIdentityLabels('10.2.0.1/32') };
    const excepted: Identity = { id: 16777218, labels: cidrIdentityLabels('10.1.0.0/16') };
    const xbNamed: Identity = { ...xb, namedPorts: { 'serve-80': { port: 80, protocol: 6 } } };
    const p = resolve(ps, xa, [xa, xbNamed, ya, inside, excepted]).egress;
    expect(verdict(p, inside.id, 17, 81)).toBe('allow');
    expect(verdict(p, excepted.id, 17, 81)).toBe('default-deny');
    expect(verdict(p, inside.id, 6, 81)).toBe('default-deny');
    expect(verdict(p, xb.id, 6, 80)).toBe('allow');
    expect(verdict(p, ya.id, 6, 8005)).toBe('allow');
    expect(verdict(p, ya.id, 6, 8011)).toBe('default-deny');
  });

  it('validation errors use the API server paths', () => {
    const r = loadPolicyText(
      yamlOf(
        knp('bad', {
          podSelector: {},
          policyTypes: ['Ingres'],
          ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] }, podSelector: {} }, {}], ports: [{ port: 70000 }, { port: 80, endPort: 79 }, { port: 'http', endPort: 90 }] }],
        }),
      ),
      'knp.yaml',
    );
    expect(r.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'spec.policyTypes[0]: Unsupported value: "Ingres": supported values: "Ingress", "Egress"',
      'spec.ingress[0].from[0]: Forbidden: may not specify more than 1 peer type when ipBlock is specified',
      'spec.ingress[0].from[1]: Required value: must specify a peer',
      'spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
      'spec.ingress[0].ports[1].endPort: Invalid value: 79: must be greater than or equal to `port`',
      'spec.ingress[0].ports[2].endPort: Invalid value: may not be specified when `port` is non-numeric',
    ]);
  });
});
