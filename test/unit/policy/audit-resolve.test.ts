/**
 * Audit: resolution and lookup against Cilium v1.19 semantics (probes of identity × proto × port).
 *
 * Sources (cilium/cilium), restated in our words: pkg/k8s/apis/cilium.io/utils/utils.go
 * (getEndpointSelector, ParseToCiliumRule), the rules→PolicyEntries conversion next to it
 * (RulesToPolicyEntries, mergeEndpointSelectors, evaluateDefaultDenyForRule),
 * pkg/policy/types/simulate.go (findEntries), pkg/policy/api/entity.go, pkg/identity/numericidentity.go
 * (reservedIdentityLabels), pkg/policy/distillery_test.go, bpf/lib/policy.h,
 * Documentation/security/policy/{language,layer3,layer4,layer7,deny}.rst.
 */
import { describe, expect, it } from 'vitest';
import { cidrIdentityLabels, lookupPolicy, resolveEndpointPolicy, evaluateHttp } from '../../../src/policy/index.js';
import type { DirectionPolicy, Identity, L7Rules, PolicyObject } from '../../../src/policy/index.js';
import { ccnp, cnp, from, pod, ports, spec, to } from './builders.js';

const server = pod(1000, 'default', { app: 'server' });
const client = pod(1001, 'default', { app: 'client' });
const prodClient = pod(1002, 'prod', { app: 'client' }, { team: 'blue' });
const noLabel = pod(1003, 'default', {});
const cidr10 = { id: 16777217, labels: cidrIdentityLabels('10.1.2.3/32') };
const cidr10except = { id: 16777218, labels: cidrIdentityLabels('10.96.0.1/32') };
const cidr6 = { id: 16777219, labels: cidrIdentityLabels('2001:db8::1/128') };
const ids: Identity[] = [server, client, prodClient, noLabel, cidr10, cidr10except, cidr6];
const HOST = 1;
const WORLD = 2;
const UNMANAGED = 3;
const HEALTH = 4;
const INIT = 5;
const REMOTE_NODE = 6;
const KUBE_APISERVER = 7;
const INGRESS = 8;
const WORLD4 = 9;
const WORLD6 = 10;
const TCP = 6;
const UDP = 17;
const SCTP = 132;
const ICMP = 1;

const serverSpec = () => spec().withEndpointSelector({ app: 'server' });

function resolve(policies: PolicyObject[], endpoint: Identity = server) {
  return resolveEndpointPolicy({ policies, endpoint, identities: ids });
}
function v(dir: DirectionPolicy, id: number, proto = TCP, port = 80): string {
  return lookupPolicy(dir, id, proto, port).verdict;
}
function httpOf(l7: L7Rules | undefined): L7Rules & { kind: 'http' } {
  if (l7?.kind !== 'http') throw new Error('expected HTTP L7 rules');
  return l7;
}
function req(method: string, path: string) {
  return { method, path, host: 'server', headers: {} };
}
function allowed(dir: DirectionPolicy, id: number, proto = TCP, port = 80): boolean {
  const r = v(dir, id, proto, port);
  return r === 'allow' || r === 'redirect' || r === 'default-allow';
}

describe('audit: empty vs absent peer lists', () => {
  // mergeEndpointSelectors: an empty but present list of endpoints/entities/CIDRs/CIDR sets selects
  // no identity, even with toPorts; an absent list with toPorts is the wildcard.
  it('fromCIDR: [], fromCIDRSet: [], fromEntities: [] with toPorts select nothing', () => {
    for (const f of ['fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromEndpoints']) {
      const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withField(f, []).withPorts(ports().withPort('80', 'TCP')))).policy()]);
      expect(p.ingress.enforced, f).toBe(true);
      for (const id of [client.id, WORLD, HOST, cidr10.id]) expect(v(p.ingress, id), `${f} ${id}`).toBe('default-deny');
    }
  });

  it('an empty present list wins over another member of the same rule', () => {
    // Same function: the check happens before any selector is collected.
    const p = resolve([cnp('x').withSpec(serverSpec().withEgress(to().withField('toCIDR', []).withEndpoints({ app: 'client' }))).policy()]);
    expect(v(p.egress, client.id)).toBe('default-deny');
  });

  it('toPorts without any peer field admits every peer, reserved and CIDR ones included', () => {
    // layer4.rst: a toPorts-only rule applies to all peers.
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('80', 'TCP')))).policy()]);
    for (const id of [client.id, prodClient.id, WORLD, HOST, REMOTE_NODE, cidr10.id]) expect(v(p.ingress, id)).toBe('allow');
    expect(v(p.ingress, client.id, TCP, 81)).toBe('default-deny');
  });

  it('ingress: [{}] enforces and allows nothing', () => {
    // language.rst "Ingress/Egress Default Deny"; an entry with neither L3 nor L4 adds no allow.
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from())).policy()]);
    expect(p.ingress.enforced).toBe(true);
    expect(p.ingress.entries).toEqual([]);
    expect(p.egress.enforced).toBe(false);
  });
});

describe('audit: default deny per direction', () => {
  // evaluateDefaultDenyForRule: with enableDefaultDeny unset, a direction defaults to deny when the
  // rule has an allow *or* a deny section for it, so a deny-only policy enforces that direction.
  it('a deny-only policy puts that direction into default deny', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withEgressDeny(to().withEntities('world'))).policy()]);
    expect(p.egress.enforced).toBe(true);
    expect(lookupPolicy(p.egress, WORLD, TCP, 443)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(lookupPolicy(p.egress, client.id, TCP, 443)).toMatchObject({ verdict: 'default-deny', dropReason: 133 });
    expect(p.ingress.enforced).toBe(false);
  });

  // Same function + findEntries: enableDefaultDeny.egress=false keeps the deny but not default deny;
  // a second policy selecting the endpoint without opting out turns default deny on (OR).
  it('enableDefaultDeny: false on a deny-only policy: the deny applies, the rest stays open', () => {
    const optOut = cnp('x').withSpec(serverSpec().withDefaultDeny({ egress: false }).withEgressDeny(to().withEntities('world'))).policy();
    const p = resolve([optOut]);
    expect(p.egress.enforced).toBe(false);
    expect(lookupPolicy(p.egress, WORLD, TCP, 443)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(v(p.egress, client.id)).toBe('default-allow');
    const other = cnp('y').withSpec(serverSpec().withEgress(to().withEndpoints({ app: 'client' }))).policy();
    const q = resolve([optOut, other]);
    expect(q.egress.enforced).toBe(true);
    expect(v(q.egress, prodClient.id)).toBe('default-deny');
  });

  // RulesToPolicyEntries creates entries per rule item only: enableDefaultDeny.ingress=true without
  // any ingress section contributes nothing to ingress.
  it('enableDefaultDeny.ingress: true without an ingress section does not enforce ingress', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withDefaultDeny({ ingress: true }).withEgress(to().withEntities('all'))).policy()]);
    expect(p.ingress.enforced).toBe(false);
  });
});

describe('audit: selectors and namespace scoping', () => {
  // getEndpointSelector: a namespaced policy adds k8s:io.kubernetes.pod.namespace=<ns> to peer
  // selectors unless they name that key (k8s: or any source) or a namespace-labels key.
  it('CNP peer selectors are scoped to the policy namespace unless they name it', () => {
    const mk = (sel: Record<string, unknown>) => resolve([cnp('x').withNamespace('default').withSpec(serverSpec().withIngress(from().withSelector(sel))).policy()]);
    let p = mk({ matchLabels: { app: 'client' } });
    expect(v(p.ingress, client.id)).toBe('allow');
    expect(v(p.ingress, prodClient.id)).toBe('default-deny');
    p = mk({ matchLabels: { app: 'client', 'k8s:io.kubernetes.pod.namespace': 'prod' } });
    expect(v(p.ingress, prodClient.id)).toBe('allow');
    expect(v(p.ingress, client.id)).toBe('default-deny');
    p = mk({ matchLabels: { app: 'client', 'io.kubernetes.pod.namespace': 'prod' } });
    expect(v(p.ingress, prodClient.id)).toBe('allow');
    p = mk({ matchLabels: { 'io.cilium.k8s.namespace.labels.team': 'blue' } });
    expect(v(p.ingress, prodClient.id)).toBe('allow');
    expect(v(p.ingress, client.id)).toBe('default-deny');
    // An empty selector in a namespaced policy means "every pod of my namespace", not reserved peers.
    p = mk({});
    expect(v(p.ingress, client.id)).toBe('allow');
    expect(v(p.ingress, noLabel.id)).toBe('allow');
    expect(v(p.ingress, prodClient.id)).toBe('default-deny');
    expect(v(p.ingress, WORLD)).toBe('default-deny');
    expect(v(p.ingress, HOST)).toBe('default-deny');
  });

  // getEndpointSelector (subject side): the policy's namespace replaces a namespace written in
  // matchLabels only; one written in matchExpressions is ANDed with it, so naming another
  // namespace there selects no endpoint at all.
  it('CNP endpointSelector: a namespace in matchExpressions is ANDed with the policy namespace', () => {
    const selecting = (expr: Record<string, unknown>) =>
      resolve([
        cnp('x')
          .withNamespace('default')
          .withSpec(spec().withEndpointSelector({ app: 'server' }, [expr]).withIngress(from().withSelector({ matchLabels: { app: 'client' } })))
          .policy(),
      ]).ingress.enforced;
    expect(selecting({ key: 'k8s:io.kubernetes.pod.namespace', operator: 'In', values: ['default'] })).toBe(true);
    expect(selecting({ key: 'k8s:io.kubernetes.pod.namespace', operator: 'In', values: ['prod'] })).toBe(false);
  });

  // getEndpointSelector: selectors with a reserved: key are left unscoped.
  it('reserved: selectors are not namespace-scoped', () => {
    const p = resolve([cnp('x').withNamespace('default').withSpec(serverSpec().withIngress(from().withSelector({ matchLabels: { 'reserved:host': '' } }))).policy()]);
    expect(v(p.ingress, HOST)).toBe('allow');
  });

  // getEndpointSelector (clusterwide): an empty selector gets "namespace label exists", so it selects
  // every pod of every namespace and no reserved identity.
  it('CCNP: fromEndpoints {} selects pods of all namespaces, not reserved identities', () => {
    const p = resolve([ccnp('x').withSpec(serverSpec().withIngress(from().withSelector({}))).policy()]);
    expect(v(p.ingress, client.id)).toBe('allow');
    expect(v(p.ingress, prodClient.id)).toBe('allow');
    for (const id of [HOST, WORLD, REMOTE_NODE, HEALTH, cidr10.id]) expect(v(p.ingress, id)).toBe('default-deny');
  });

  // ParseToCiliumRule: the subject selector of a CNP always gets the policy namespace.
  it('CNP endpointSelector {} selects only pods of the policy namespace', () => {
    const pol = cnp('x').withNamespace('prod').withSpec(spec().withEndpointSelector({}).withIngress(from())).policy();
    expect(resolve([pol], server).ingress.enforced).toBe(false);
    expect(resolve([pol], prodClient).ingress.enforced).toBe(true);
  });

  // Kubernetes label-selector semantics used by EndpointSelector: NotIn and DoesNotExist match when
  // the key is absent; In/Exists need it.
  it('matchExpressions operators', () => {
    const mk = (expr: object) => resolve([cnp('x').withNamespace('default').withSpec(serverSpec().withIngress(from().withSelector({ matchExpressions: [expr] }))).policy()]);
    let p = mk({ key: 'app', operator: 'NotIn', values: ['client'] });
    expect(v(p.ingress, client.id)).toBe('default-deny');
    expect(v(p.ingress, noLabel.id)).toBe('allow');
    p = mk({ key: 'app', operator: 'DoesNotExist' });
    expect(v(p.ingress, noLabel.id)).toBe('allow');
    expect(v(p.ingress, client.id)).toBe('default-deny');
    p = mk({ key: 'app', operator: 'In', values: ['client', 'x'] });
    expect(v(p.ingress, client.id)).toBe('allow');
    expect(v(p.ingress, noLabel.id)).toBe('default-deny');
    p = mk({ key: 'app', operator: 'Exists' });
    expect(v(p.ingress, client.id)).toBe('allow');
    expect(v(p.ingress, noLabel.id)).toBe('default-deny');
  });
});

describe('audit: entities', () => {
  const withEntity = (e: string) => resolve([cnp('x').withSpec(serverSpec().withIngress(from().withEntities(e))).policy()]);

  // entity.go: cluster = host, remote-node, init, ingress, health, unmanaged, kube-apiserver and every
  // pod of the cluster; never world or CIDR identities.
  it('cluster', () => {
    const p = withEntity('cluster');
    for (const id of [HOST, REMOTE_NODE, KUBE_APISERVER, INIT, INGRESS, HEALTH, UNMANAGED, client.id, prodClient.id]) expect(allowed(p.ingress, id), String(id)).toBe(true);
    for (const id of [WORLD, WORLD4, WORLD6, cidr10.id]) expect(allowed(p.ingress, id), String(id)).toBe(false);
  });

  // entity.go: world = reserved:world, world-ipv4, world-ipv6; CIDR identities carry world labels.
  it('world, world-ipv4, world-ipv6', () => {
    let p = withEntity('world');
    for (const id of [WORLD, WORLD4, WORLD6, cidr10.id, cidr6.id]) expect(allowed(p.ingress, id)).toBe(true);
    for (const id of [HOST, REMOTE_NODE, client.id]) expect(allowed(p.ingress, id)).toBe(false);
    p = withEntity('world-ipv4');
    expect(allowed(p.ingress, cidr10.id)).toBe(true);
    expect(allowed(p.ingress, cidr6.id)).toBe(false);
    expect(allowed(p.ingress, WORLD6)).toBe(false);
  });

  // entity.go: all is the wildcard; none selects nothing.
  it('all and none', () => {
    const p = withEntity('all');
    for (const id of [HOST, WORLD, REMOTE_NODE, client.id, prodClient.id, cidr10.id]) expect(v(p.ingress, id)).toBe('allow');
    const q = withEntity('none');
    expect(q.ingress.enforced).toBe(true);
    for (const id of [HOST, WORLD, client.id]) expect(v(q.ingress, id)).toBe('default-deny');
  });

  // numericidentity.go reservedIdentityLabels: identity 7 carries kube-apiserver *and* remote-node,
  // so the remote-node entity also admits it.
  it('remote-node admits the kube-apiserver identity; kube-apiserver does not admit remote nodes', () => {
    expect(allowed(withEntity('remote-node').ingress, KUBE_APISERVER)).toBe(true);
    expect(allowed(withEntity('kube-apiserver').ingress, REMOTE_NODE)).toBe(false);
  });
});

describe('audit: CIDR selection', () => {
  // layer3.rst: CIDR rules select peers without a label identity (outside the cluster); pods are
  // not selected by a CIDR that covers their IP. except subtracts from the rule it is in.
  it('toCIDRSet with except', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withEgress(to().withCIDRSet('10.0.0.0/8', ['10.96.0.0/12']))).policy()]);
    expect(v(p.egress, cidr10.id)).toBe('allow');
    expect(v(p.egress, cidr10except.id)).toBe('default-deny');
    expect(v(p.egress, client.id)).toBe('default-deny');
    expect(v(p.egress, WORLD)).toBe('default-deny');
  });

  // cidr.go: 0.0.0.0/0 covers all IPv4 outside the cluster (world-ipv4), not IPv6.
  it('0.0.0.0/0 selects IPv4 world only', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withEgress(to().withCIDR('0.0.0.0/0'))).policy()]);
    expect(v(p.egress, WORLD4)).toBe('allow');
    expect(v(p.egress, cidr10.id)).toBe('allow');
    expect(v(p.egress, cidr6.id)).toBe('default-deny');
    expect(v(p.egress, WORLD6)).toBe('default-deny');
    expect(v(p.egress, HOST)).toBe('default-deny');
  });
});

describe('audit: ports', () => {
  // l4.go / PortProtocol: protocol ANY (or unset) covers TCP, UDP and SCTP; port 0 covers all ports.
  it('ANY and port 0', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('0')))).policy()]);
    for (const proto of [TCP, UDP, SCTP]) for (const port of [1, 80, 65535]) expect(v(p.ingress, client.id, proto, port)).toBe('allow');
    expect(v(p.ingress, client.id, ICMP, 8)).toBe('default-deny');
  });

  // api/l4.go PortProtocol.EndPort: an inclusive range; endPort below port means the single port.
  it('endPort ranges', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('8000', 'TCP', 8100), ports().withPort('9000', 'TCP', 10)))).policy()]);
    expect(v(p.ingress, client.id, TCP, 7999)).toBe('default-deny');
    expect(v(p.ingress, client.id, TCP, 8000)).toBe('allow');
    expect(v(p.ingress, client.id, TCP, 8100)).toBe('allow');
    expect(v(p.ingress, client.id, TCP, 8101)).toBe('default-deny');
    expect(v(p.ingress, client.id, TCP, 9000)).toBe('allow');
    expect(v(p.ingress, client.id, TCP, 9001)).toBe('default-deny');
  });

  // Named ports on ingress resolve against the selected endpoint's own container ports.
  it('named ports resolve against the endpoint', () => {
    const pol = cnp('x').withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('HTTP-alt', 'TCP')))).policy();
    const p = resolveEndpointPolicy({ policies: [pol], endpoint: { ...server, namedPorts: { 'http-alt': { port: 8080, protocol: TCP } } }, identities: ids });
    expect(v(p.ingress, client.id, TCP, 8080)).toBe('allow');
    expect(v(p.ingress, client.id, TCP, 80)).toBe('default-deny');
  });

  // layer4.rst ICMP: icmps fields allow the named type only.
  it('ICMP types', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withIngress(from().withIcmp({ type: 'EchoRequest' }))).policy()]);
    expect(v(p.ingress, client.id, ICMP, 8)).toBe('allow');
    expect(v(p.ingress, client.id, ICMP, 0)).toBe('default-deny');
    expect(v(p.ingress, client.id, TCP, 80)).toBe('default-deny');
  });
});

describe('audit: deny precedence', () => {
  // deny.rst + distillery_test.go (case "allow any:80 + deny foo:*"): the deny wins for foo on 80,
  // others keep the allow; the drop reason is POLICY_DENY (181).
  it('deny X:* beats allow any:80, via a derived X:80 entry', () => {
    const p = resolve([
      cnp('x').withSpec(serverSpec().withIngress(from().withPorts(ports().withPort('80', 'TCP'))).withIngressDeny(from().withEndpoints({ app: 'client' }))).policy(),
    ]);
    expect(lookupPolicy(p.ingress, client.id, TCP, 80)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(v(p.ingress, noLabel.id, TCP, 80)).toBe('allow');
  });

  // deny.rst: deny takes precedence over allow from any policy, and an L4 deny on a range beats an
  // L3 allow of the same peer.
  it('L4 deny range beats L3 allow', () => {
    const p = resolve([
      cnp('a').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }))).policy(),
      ccnp('d').withSpec(serverSpec().withIngressDeny(from().withPorts(ports().withPort('1000', 'TCP', 2000)))).policy(),
    ]);
    expect(lookupPolicy(p.ingress, client.id, TCP, 1500)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(v(p.ingress, client.id, TCP, 999)).toBe('allow');
    expect(v(p.ingress, client.id, UDP, 1500)).toBe('allow');
  });

  // deny.rst: a deny for world does not affect in-cluster peers.
  it('egressDeny world leaves in-cluster peers to the allows', () => {
    const p = resolve([cnp('x').withSpec(serverSpec().withEgress(to().withEntities('all')).withEgressDeny(to().withEntities('world'))).policy()]);
    expect(v(p.egress, client.id)).toBe('allow');
    expect(v(p.egress, HOST)).toBe('allow');
    expect(v(p.egress, cidr10.id)).toBe('deny');
  });
});

describe('audit: L7', () => {
  // layer7.rst: when an L4 rule without L7 and an L4 rule with L7 cover the same port/peer, the L7
  // part has no effect: every request passes.
  it('an L4-only rule wildcards L7 on the same port', () => {
    const p = resolve([
      cnp('x')
        .withSpec(
          serverSpec()
            .withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'GET', path: '/public' })))
            .withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP'))),
        )
        .policy(),
    ]);
    const r = lookupPolicy(p.ingress, client.id, TCP, 80);
    expect(['allow', 'redirect']).toContain(r.verdict);
    if (r.verdict === 'redirect') expect(evaluateHttp(httpOf(r.entry!.l7), req('DELETE', '/private')).allowed).toBe(true);
  });

  // language.rst (L7 section): HTTP rules from several rules/policies on one port are OR-ed.
  it('HTTP rules of two policies on one port merge', () => {
    const a = cnp('a').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'GET', path: '/a' })))).policy();
    const b = cnp('b').withSpec(serverSpec().withIngress(from().withEndpoints({ app: 'client' }).withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'POST', path: '/b' })))).policy();
    const r = lookupPolicy(resolve([a, b]).ingress, client.id, TCP, 80);
    expect(r.verdict).toBe('redirect');
    const l7 = httpOf(r.entry!.l7);
    expect(evaluateHttp(l7, req('GET', '/a')).allowed).toBe(true);
    expect(evaluateHttp(l7, req('POST', '/b')).allowed).toBe(true);
    expect(evaluateHttp(l7, req('GET', '/b')).allowed).toBe(false);
    // Envoy regex matchers are full-string: '/a' does not match '/a/x'.
    expect(evaluateHttp(l7, req('GET', '/a/x')).allowed).toBe(false);
  });
});

describe('audit: toServices', () => {
  // service.go + layer3.rst: toServices uses the service's pod selector as an endpoint selector;
  // combined with toPorts (accepted since 1.17) the allow is limited to those ports.
  it('toServices with toPorts allows the backends on that port only', () => {
    const pol = cnp('x').withNamespace('default').withSpec(serverSpec().withEgress(to().withService('backend').withPorts(ports().withPort('8080', 'TCP')))).policy();
    const p = resolveEndpointPolicy({
      policies: [pol],
      endpoint: server,
      identities: ids,
      services: [{ name: 'backend', namespace: 'default', labels: {}, selector: { app: 'client' } }],
    });
    expect(v(p.egress, client.id, TCP, 8080)).toBe('allow');
    expect(v(p.egress, client.id, TCP, 80)).toBe('default-deny');
    expect(v(p.egress, prodClient.id, TCP, 8080)).toBe('default-deny');
  });
});
