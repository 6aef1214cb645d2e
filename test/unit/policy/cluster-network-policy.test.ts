/**
 * ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2): user-visible outcomes of tiers,
 * priorities and actions (Cilium pkg/k8s/cluster_network_policy.go, pkg/policy/rules.go), and
 * validation errors that name the field.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, loadPolicyText, tracePolicy } from '../../../src/policy/index.js';
import type { PolicyObject } from '../../../src/policy/index.js';
import { cnp, from, ports, spec, to, yamlOf } from './builders.js';

type Obj = Record<string, unknown>;

/** Fluent builder for ClusterNetworkPolicy objects. */
class KcnpBuilder {
  #spec: Obj = { tier: 'Admin', priority: 0, subject: { namespaces: {} } };
  readonly #ingress: Obj[] = [];
  readonly #egress: Obj[] = [];
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }

  withTier(tier: string): this {
    this.#spec = { ...this.#spec, tier };
    return this;
  }
  withPriority(priority: number): this {
    this.#spec = { ...this.#spec, priority };
    return this;
  }
  /** Subject: pods with these labels in any namespace. */
  withSubjectPods(labels: Record<string, string>): this {
    this.#spec = { ...this.#spec, subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: labels } } } };
    return this;
  }
  withIngress(action: string, peers: Obj[], protocols?: Obj[]): this {
    this.#ingress.push({ action, from: peers, ...(protocols ? { protocols } : {}) });
    return this;
  }
  withEgress(action: string, peers: Obj[], protocols?: Obj[]): this {
    this.#egress.push({ action, to: peers, ...(protocols ? { protocols } : {}) });
    return this;
  }
  object(): Obj {
    return {
      apiVersion: 'policy.networking.k8s.io/v1alpha2',
      kind: 'ClusterNetworkPolicy',
      metadata: { name: this.name },
      spec: { ...this.#spec, ...(this.#ingress.length ? { ingress: this.#ingress } : {}), ...(this.#egress.length ? { egress: this.#egress } : {}) },
    };
  }
  policy(): PolicyObject {
    const r = loadPolicyText(yamlOf(this.object()), 'kcnp.yaml');
    if (r.problems.length) throw new Error(`unexpected problems: ${JSON.stringify(r.problems)}`);
    return r.policies[0]!;
  }
}

const kcnp = (name: string): KcnpBuilder => new KcnpBuilder(name);
const podsPeer = (labels: Record<string, string>): Obj => ({ pods: { namespaceSelector: {}, podSelector: { matchLabels: labels } } });
const allPods: Obj = { namespaces: {} };
const tcp = (port: number): Obj => ({ tcp: { destinationPort: { number: port } } });

const ns = 'shop';
const client = { labels: { app: 'client' }, namespace: ns };
const client2 = { labels: { app: 'client2' }, namespace: ns };
const server = { labels: { app: 'server' }, namespace: ns };

function ingressVerdict(policies: PolicyObject[], src = client, dport = 80, http?: { method: string; path: string }): string {
  return tracePolicy({ policies, src, dst: server, dport, protocol: 'TCP', ...(http ? { http } : {}) }).verdict;
}

describe('ClusterNetworkPolicy: Admin tier', () => {
  it('lower priority wins: Accept at 10 over Deny at 20, Deny at 5 over Accept at 10', () => {
    const accept = kcnp('accept').withPriority(10).withSubjectPods({ app: 'server' }).withIngress('Accept', [podsPeer({ app: 'client' })]).policy();
    const deny20 = kcnp('deny').withPriority(20).withSubjectPods({ app: 'server' }).withIngress('Deny', [allPods]).policy();
    expect(ingressVerdict([accept, deny20])).toBe('allowed');
    expect(ingressVerdict([accept, deny20], client2)).toBe('denied');
    const deny5 = kcnp('deny').withPriority(5).withSubjectPods({ app: 'server' }).withIngress('Deny', [allPods]).policy();
    const r = tracePolicy({ policies: [accept, deny5], src: client, dst: server, dport: 80 });
    expect(r).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENY' });
  });

  it('a trace names the deciding rule by its name and action', () => {
    const o = kcnp('guard').withPriority(5).withSubjectPods({ app: 'server' }).withIngress('Deny', [podsPeer({ app: 'client' })]).object();
    ((o.spec as Obj).ingress as Obj[])[0]!.name = 'no-clients';
    const policy = loadPolicyText(yamlOf(o), 'kcnp.yaml').policies[0]!;
    const t = tracePolicy({ policies: [policy], src: client, dst: server, dport: 80, protocol: 'TCP' });
    expect(t.verdict).toBe('denied');
    expect(t.lines.join('\n')).toContain('ClusterNetworkPolicy guard ingress[0] "no-clients" (Deny)');
  });

  it('rule order inside one policy decides (first matching rule wins)', () => {
    const acceptFirst = kcnp('p').withSubjectPods({ app: 'server' }).withIngress('Accept', [podsPeer({ app: 'client' })]).withIngress('Deny', [allPods]).policy();
    expect(ingressVerdict([acceptFirst])).toBe('allowed');
    const denyFirst = kcnp('p').withSubjectPods({ app: 'server' }).withIngress('Deny', [allPods]).withIngress('Accept', [podsPeer({ app: 'client' })]).policy();
    expect(ingressVerdict([denyFirst])).toBe('denied');
  });

  it('Accept is final: a CNP deny of the same traffic does not apply', () => {
    const accept = kcnp('accept').withSubjectPods({ app: 'server' }).withIngress('Accept', [podsPeer({ app: 'client' })]).policy();
    const denyAll = cnp('deny').withNamespace(ns).withSpec(spec().withEndpointSelector({ app: 'server' }).withIngressDeny(from().withEntities('all'))).policy();
    expect(ingressVerdict([accept, denyAll])).toBe('allowed');
    expect(ingressVerdict([accept, denyAll], client2)).toBe('denied');
  });

  it('Accept is final over CNP L7 rules too: no proxy redirect', () => {
    const accept = kcnp('accept').withSubjectPods({ app: 'server' }).withIngress('Accept', [podsPeer({ app: 'client' })]).policy();
    const l7 = cnp('l7').withNamespace(ns).withSpec(spec().withEndpointSelector({ app: 'server' }).withIngress(from().withEntities('all').withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'GET' })))).policy();
    const r = tracePolicy({ policies: [accept, l7], src: client, dst: server, dport: 80, http: { method: 'POST', path: '/' } });
    expect(r).toMatchObject({ verdict: 'allowed', redirect: null });
    // Everyone else still gets the CNP's L7 rules.
    expect(ingressVerdict([accept, l7], client2, 80, { method: 'POST', path: '/' })).toBe('denied');
    expect(ingressVerdict([accept, l7], client2, 80, { method: 'GET', path: '/' })).toBe('allowed');
  });

  it('a ClusterNetworkPolicy alone does not put the pod into default deny', () => {
    const deny = kcnp('deny').withSubjectPods({ app: 'server' }).withIngress('Deny', [podsPeer({ app: 'client2' })]).policy();
    expect(ingressVerdict([deny])).toBe('allowed');
    expect(ingressVerdict([deny], client2)).toBe('denied');
  });
});

describe('ClusterNetworkPolicy: Pass', () => {
  const passThenDeny = kcnp('admin')
    .withSubjectPods({ app: 'server' })
    .withIngress('Pass', [podsPeer({ app: 'client' })])
    .withIngress('Deny', [allPods])
    .policy();

  it('Pass skips the rest of the Admin tier and the CNP decides, with its L7 rules', () => {
    const l7 = cnp('l7').withNamespace(ns).withSpec(spec().withEndpointSelector({ app: 'server' }).withIngress(from().withEntities('all').withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'GET' })))).policy();
    const get = tracePolicy({ policies: [passThenDeny, l7], src: client, dst: server, dport: 80, http: { method: 'GET', path: '/' } });
    expect(get).toMatchObject({ verdict: 'allowed', redirect: 'http' });
    expect(ingressVerdict([passThenDeny, l7], client, 80, { method: 'POST', path: '/' })).toBe('denied');
    // What the CNP does not allow stays denied for the passed peer.
    expect(ingressVerdict([passThenDeny, l7], client, 81)).toBe('denied');
    // Not passed: the Admin Deny.
    const other = tracePolicy({ policies: [passThenDeny, l7], src: client2, dst: server, dport: 80, http: { method: 'GET', path: '/' } });
    expect(other).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENY', redirect: null });
  });

  it('Pass with no developer-tier policy falls through to the default (allowed)', () => {
    expect(ingressVerdict([passThenDeny])).toBe('allowed');
    expect(ingressVerdict([passThenDeny], client2)).toBe('denied');
  });

  it('Pass lands on a CNP deny', () => {
    const denyClient = cnp('deny').withNamespace(ns).withSpec(spec().withEndpointSelector({ app: 'server' }).withIngressDeny(from().withEndpoints({ app: 'client' }))).policy();
    expect(ingressVerdict([passThenDeny, denyClient])).toBe('denied');
  });

  it('egress: Pass to a CNP that allows port 443 only', () => {
    const admin = kcnp('egress-admin')
      .withSubjectPods({ app: 'client' })
      .withEgress('Pass', [podsPeer({ app: 'server' })])
      .withEgress('Deny', [allPods])
      .policy();
    const allow443 = cnp('egress').withNamespace(ns).withSpec(spec().withEndpointSelector({ app: 'client' }).withEgress(to().withEndpoints({ app: 'server' }).withPorts(ports().withPort('443', 'TCP')))).policy();
    const at = (dport: number, dst = server): string => tracePolicy({ policies: [admin, allow443], src: client, dst, dport, protocol: 'TCP' }).verdict;
    expect(at(443)).toBe('allowed');
    expect(at(80)).toBe('denied');
    expect(at(443, client2)).toBe('denied');
  });
});

describe('ClusterNetworkPolicy: Baseline tier', () => {
  const baselineDeny = kcnp('baseline').withTier('Baseline').withSubjectPods({ app: 'server' }).withIngress('Deny', [podsPeer({ app: 'client' })]).policy();
  const baselineAccept = kcnp('baseline-accept').withTier('Baseline').withSubjectPods({ app: 'server' }).withIngress('Accept', [podsPeer({ app: 'client' })]).withIngress('Deny', [allPods]).policy();

  it('applies to a pod no developer-tier policy selects', () => {
    expect(ingressVerdict([baselineDeny])).toBe('denied');
    expect(ingressVerdict([baselineDeny], client2)).toBe('allowed');
    expect(ingressVerdict([baselineAccept])).toBe('allowed');
    expect(ingressVerdict([baselineAccept], client2)).toBe('denied');
  });

  it('does not apply once a developer-tier policy selects the pod in that direction', () => {
    const allowClient2 = cnp('np').withNamespace(ns).withSpec(spec().withEndpointSelector({ app: 'server' }).withIngress(from().withEndpoints({ app: 'client2' }))).policy();
    // The CNP's allow beats the Baseline deny, and its default deny beats the Baseline accept.
    expect(ingressVerdict([baselineDeny, allowClient2], client2)).toBe('allowed');
    expect(ingressVerdict([baselineAccept, allowClient2])).toBe('denied');
    expect(ingressVerdict([baselineAccept, allowClient2], client2)).toBe('allowed');
    // Egress is another direction: the ingress CNP does not make it final.
    const egressBaseline = kcnp('eb').withTier('Baseline').withSubjectPods({ app: 'server' }).withEgress('Deny', [allPods]).policy();
    expect(tracePolicy({ policies: [egressBaseline, allowClient2], src: server, dst: client, dport: 80, protocol: 'TCP' }).verdict).toBe('denied');
  });

  it('an Admin Pass reaches the Baseline tier when no developer-tier policy selects the pod', () => {
    const pass = kcnp('pass').withSubjectPods({ app: 'server' }).withIngress('Pass', [allPods]).policy();
    expect(ingressVerdict([pass, baselineDeny])).toBe('denied');
    expect(ingressVerdict([pass, baselineDeny], client2)).toBe('allowed');
  });
});

describe('ClusterNetworkPolicy: protocols', () => {
  it('restricts a rule to its ports; a range is inclusive', () => {
    const p = kcnp('ports')
      .withSubjectPods({ app: 'server' })
      .withIngress('Accept', [allPods], [tcp(80), { tcp: { destinationPort: { range: { start: 8000, end: 8010 } } } }])
      .withIngress('Deny', [allPods])
      .policy();
    expect(ingressVerdict([p], client, 80)).toBe('allowed');
    expect(ingressVerdict([p], client, 8010)).toBe('allowed');
    expect(ingressVerdict([p], client, 8011)).toBe('denied');
    expect(tracePolicy({ policies: [p], src: client, dst: server, dport: 80, protocol: 'UDP' }).verdict).toBe('denied');
  });
});

describe('ClusterNetworkPolicy: validation', () => {
  const problems = (o: Obj): string[] => loadPolicyText(yamlOf(o), 'bad.yaml').problems.map(formatProblem);
  const base = (patch: Obj): Obj => {
    const o = kcnp('bad').withIngress('Accept', [allPods]).object();
    return { ...o, spec: { ...(o.spec as Obj), ...patch } };
  };

  it('bad tier names the field', () => {
    expect(problems(base({ tier: 'Developer' }))).toEqual(['bad.yaml: bad: spec.tier: Unsupported value: "Developer": supported values: "Admin", "Baseline"']);
  });

  it('bad action names the field', () => {
    expect(problems(base({ ingress: [{ action: 'Allow', from: [allPods] }] }))).toEqual([
      'bad.yaml: bad: spec.ingress[0].action: Unsupported value: "Allow": supported values: "Accept", "Deny", "Pass"',
    ]);
  });

  it('unsupported peer types name the field', () => {
    expect(problems(base({ egress: [{ action: 'Accept', to: [{ domainNames: ['example.com'] }] }] }))).toEqual([
      'bad.yaml: bad: spec.egress[0].to[0].domainNames: egress peer `domainNames` is not supported by Membrane',
    ]);
    expect(problems(base({ egress: [{ action: 'Deny', to: [{ nodes: {} }] }] }))[0]).toContain('spec.egress[0].to[0].nodes: egress peer `nodes` is not supported by Membrane');
    // Ingress has only namespaces and pods peers.
    expect(problems(base({ ingress: [{ action: 'Deny', from: [{ networks: ['10.0.0.0/8'] }] }] }))).toEqual(['bad.yaml: bad: spec.ingress[0].from[0].networks: unknown field "networks"', 'bad.yaml: bad: spec.ingress[0].from[0]: a peer must set exactly one of namespaces, pods']);
  });

  it('priority range, missing peers, two peer types, bad port range', () => {
    expect(problems(base({ priority: 1001 }))).toEqual(['bad.yaml: bad: spec.priority: Invalid value: 1001: must be between 0 and 1000, inclusive']);
    expect(problems(base({ ingress: [{ action: 'Deny' }] }))).toEqual(['bad.yaml: bad: spec.ingress[0].from: required field is missing']);
    expect(problems(base({ ingress: [{ action: 'Deny', from: [{ namespaces: {}, pods: { podSelector: {} } }] }] }))).toEqual([
      'bad.yaml: bad: spec.ingress[0].from[0]: a peer must set exactly one of namespaces, pods, got namespaces and pods',
    ]);
    expect(problems(base({ ingress: [{ action: 'Deny', from: [allPods], protocols: [{ tcp: { destinationPort: { range: { start: 90, end: 80 } } } }] }] }))).toEqual([
      'bad.yaml: bad: spec.ingress[0].protocols[0].tcp.destinationPort.range: Start port must be less than End port',
    ]);
  });

  it('networks is a set, and a networks peer takes no named port (the CRD\'s XValidation)', () => {
    expect(problems(base({ egress: [{ action: 'Deny', to: [{ networks: ['10.9.0.0/16', '10.9.0.0/16'] }] }] }))).toEqual([
      'bad.yaml: bad: spec.egress[0].to[0].networks[1]: Duplicate value: "10.9.0.0/16"',
    ]);
    expect(problems(base({ egress: [{ action: 'Deny', to: [{ networks: ['10.0.0.0/8'] }], protocols: [{ destinationNamedPort: 'http' }] }] }))).toEqual([
      'bad.yaml: bad: spec.egress[0]: Invalid value: "object": networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames',
    ]);
    // A pods peer with a named port is fine.
    expect(problems(base({ egress: [{ action: 'Deny', to: [allPods], protocols: [{ destinationNamedPort: 'http' }] }] }))).toEqual([]);
  });

  it('the apiVersion must be v1alpha2', () => {
    expect(problems({ ...base({}), apiVersion: 'policy.networking.k8s.io/v1alpha1' })[0]).toContain('apiVersion: unsupported apiVersion "policy.networking.k8s.io/v1alpha1" for ClusterNetworkPolicy');
  });
});
