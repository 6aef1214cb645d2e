/**
 * Issue 7: the policy kinds Membrane now accepts the way Cilium does, and what they enforce.
 * - CiliumCIDRGroup, referenced from fromCIDRSet/toCIDRSet by name (cidrGroupRef) or by labels
 *   (cidrGroupSelector): the same identities as the equivalent `cidr:` entries.
 * - authentication.mode (required, test-always-fail): accepted with a warning, and what the rule
 *   allows is dropped with AUTH_REQUIRED (189), below a deny rule's POLICY_DENY (181).
 * - Kafka / l7proto rules: a warning naming the ports that fail closed.
 */
import { describe, expect, it } from 'vitest';
import {
  cidrIdentityLabels,
  DROP_REASON,
  endpointLabels,
  formatWarning,
  loadPolicyText,
  lookupPolicy,
  policyCidrs,
  resolveEndpointPolicy,
  tracePolicy,
  type Identity,
  type PolicyObject,
} from '../../../src/policy/index.js';

function load(text: string, file = 'p.yaml'): PolicyObject[] {
  const r = loadPolicyText(text, file);
  expect(r.problems).toEqual([]);
  return r.policies;
}

const GROUPS = `
apiVersion: cilium.io/v2alpha1
kind: CiliumCIDRGroup
metadata:
  name: external
  labels: {destination: external}
spec:
  externalCIDRs: ["1.0.0.0/8", "2606:4700:4700::/96"]
---
apiVersion: cilium.io/v2
kind: CiliumCIDRGroup
metadata:
  name: other
spec:
  externalCIDRs: ["192.0.2.0/24"]
`;

const egressDeny = (peer: string) => `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny, namespace: t}
spec:
  endpointSelector: {matchLabels: {kind: client}}
  egress: [{toEntities: [all]}]
  egressDeny:
  - toCIDRSet:
    - ${peer}
      except: ["1.1.1.1/32"]
`;

const client = endpointLabels({ namespace: 't', podLabels: { kind: 'client' } });

/** The egress verdict of the client towards each address, given CIDR identities for them. */
function egressTo(policies: PolicyObject[], addrs: string[]): Record<string, { verdict: string; reason: number | null }> {
  const ids: Identity[] = addrs.map((a, i) => ({ id: 16777300 + i, labels: cidrIdentityLabels(a) }));
  const pol = resolveEndpointPolicy({ policies, endpoint: { labels: client }, identities: ids });
  return Object.fromEntries(
    addrs.map((a, i) => {
      const r = lookupPolicy(pol.egress, ids[i]!.id, 6, 443);
      return [a, { verdict: r.verdict, reason: r.dropReason }];
    }),
  );
}

describe('issue-7 CiliumCIDRGroup', () => {
  it('is a kind of its own: cluster-scoped, v2alpha1 or v2, externalCIDRs required and checked', () => {
    const groups = load(GROUPS);
    expect(groups.map((g) => [g.kind, g.name, g.namespace, g.cidrGroup])).toEqual([
      ['CiliumCIDRGroup', 'external', undefined, { labels: { destination: 'external' }, externalCIDRs: ['1.0.0.0/8', '2606:4700:4700::/96'] }],
      ['CiliumCIDRGroup', 'other', undefined, { labels: {}, externalCIDRs: ['192.0.2.0/24'] }],
    ]);
    const bad = loadPolicyText('apiVersion: cilium.io/v2alpha1\nkind: CiliumCIDRGroup\nmetadata: {name: g}\nspec:\n  externalCIDRs: ["10.0.0.0/33", 5]\n', 'g.yaml');
    expect(bad.problems.map((p) => [p.path, p.message])).toEqual([
      ['spec.externalCIDRs[0]', 'invalid CIDR "10.0.0.0/33": expected an address/prefix-length'],
      ['spec.externalCIDRs[1]', 'must be a string, got number 5'],
    ]);
    expect(loadPolicyText('apiVersion: cilium.io/v2alpha1\nkind: CiliumCIDRGroup\nmetadata: {name: g}\nspec: {}\n', 'g.yaml').problems.map((p) => p.path)).toEqual(['spec.externalCIDRs']);
  });

  it('cidrGroupRef selects the group\'s CIDRs minus the excepts, like the equivalent cidr entries', () => {
    const policies = [...load(GROUPS), ...load(egressDeny('cidrGroupRef: external'))];
    expect(egressTo(policies, ['1.0.0.1', '1.1.1.1', '192.0.2.1', '8.8.8.8'])).toEqual({
      '1.0.0.1': { verdict: 'deny', reason: DROP_REASON.POLICY_DENY },
      '1.1.1.1': { verdict: 'allow', reason: null },
      '192.0.2.1': { verdict: 'allow', reason: null },
      '8.8.8.8': { verdict: 'allow', reason: null },
    });
    const direct = load(egressDeny('cidr: 1.0.0.0/8'));
    expect(egressTo(direct, ['1.0.0.1', '1.1.1.1'])).toEqual(egressTo(policies, ['1.0.0.1', '1.1.1.1']));
  });

  it('cidrGroupSelector selects groups by their labels; a selector with a label source is refused', () => {
    const policies = [...load(GROUPS), ...load(egressDeny('cidrGroupSelector: {matchLabels: {destination: external}}'))];
    expect(egressTo(policies, ['1.0.0.1', '192.0.2.1'])).toMatchObject({ '1.0.0.1': { verdict: 'deny' }, '192.0.2.1': { verdict: 'allow' } });
    const bad = loadPolicyText(egressDeny('cidrGroupSelector: {matchLabels: {"k8s:destination": external}}'), 'p.yaml');
    expect(bad.problems.map((p) => p.path)).toEqual(['spec.egressDeny[0].toCIDRSet[0].cidrGroupSelector']);
  });

  it('a reference to a group that is not loaded selects nothing (as in Cilium), and exactly one of cidr/cidrGroupRef/cidrGroupSelector is set', () => {
    expect(egressTo(load(egressDeny('cidrGroupRef: nowhere')), ['1.0.0.1'])).toEqual({ '1.0.0.1': { verdict: 'allow', reason: null } });
    const both = loadPolicyText(egressDeny('cidr: 1.0.0.0/8\n      cidrGroupRef: external'), 'p.yaml');
    expect(both.problems.map((p) => p.message)).toEqual(['more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set']);
  });

  it('the agent allocates identities for the CIDRs of the groups rules reference, and for their excepts', () => {
    const policies = [...load(GROUPS), ...load(egressDeny('cidrGroupRef: external'))];
    expect(policyCidrs(policies)).toEqual(['1.0.0.0/8', '1.1.1.1/32', '2606:4700:4700::/96']);
  });
});

const AUTH = (mode: string, extra = '') => `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: auth, namespace: t}
spec:
  endpointSelector: {matchLabels: {kind: echo}}
  ingress:
  - fromEndpoints: [{matchLabels: {kind: client}}]
    toPorts: [{ports: [{port: "4096", endPort: 8191, protocol: TCP}]}]
    authentication: {mode: ${mode}}
${extra}`;

describe('issue-7 authentication.mode', () => {
  it('required / test-always-fail: accepted with a warning; disabled: no warning; anything else refused', () => {
    for (const mode of ['required', 'test-always-fail']) {
      const r = loadPolicyText(AUTH(mode), 'a.yaml');
      expect(r.problems).toEqual([]);
      expect(r.warnings.map(formatWarning)).toEqual([
        'a.yaml: auth: spec.ingress[0].authentication.mode: warning: Membrane has no mutual authentication: what this rule allows is dropped with AUTH_REQUIRED (fails closed)',
      ]);
    }
    expect(loadPolicyText(AUTH('disabled'), 'a.yaml').warnings).toEqual([]);
    expect(loadPolicyText(AUTH('spiffe'), 'a.yaml').problems.map((p) => p.path)).toEqual(['spec.ingress[0].authentication.mode']);
  });

  it('what the rule allows is a deny entry with AUTH_REQUIRED; a deny rule keeps POLICY_DENY; elsewhere default deny', () => {
    const deny = `  ingressDeny:
  - fromEndpoints: [{matchLabels: {kind: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`;
    const policies = load(AUTH('test-always-fail', deny));
    const echo = endpointLabels({ namespace: 't', podLabels: { kind: 'echo' } });
    const src: Identity = { id: 300, labels: client };
    const pol = resolveEndpointPolicy({ policies, endpoint: { labels: echo }, identities: [src] });
    expect(pol.ingress.entries.every((e) => e.verdict === 'deny')).toBe(true);
    const at = (port: number) => {
      const r = lookupPolicy(pol.ingress, 300, 6, port);
      return [r.verdict, r.dropReason];
    };
    expect(at(4096)).toEqual(['deny', DROP_REASON.AUTH_REQUIRED]);
    expect(at(8191)).toEqual(['deny', DROP_REASON.AUTH_REQUIRED]);
    expect(at(8080)).toEqual(['deny', DROP_REASON.POLICY_DENY]);
    expect(at(80)).toEqual(['default-deny', DROP_REASON.POLICY_DENIED]);
  });

  it('trace reports AUTH_REQUIRED for the direction that drops', () => {
    const t = tracePolicy({
      policies: load(AUTH('required')),
      src: { labels: { kind: 'client' }, namespace: 't' },
      dst: { labels: { kind: 'echo' }, namespace: 't' },
      dport: 8080,
    });
    expect(t).toMatchObject({ verdict: 'denied', dropReason: 'AUTH_REQUIRED', ingress: { dropReason: 'AUTH_REQUIRED' } });
  });
});

describe('issue-7 Kafka and l7proto rules fail closed with a warning naming the ports', () => {
  it('the warning names every port of the rule; the policy still loads', () => {
    const r = loadPolicyText(
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: k}
spec:
  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "9092", protocol: TCP}, {port: kafka, protocol: TCP}]
      rules: {kafka: [{role: consume, topic: empire-announce}]}
`,
      'k.yaml',
    );
    expect(r.policies).toHaveLength(1);
    expect(r.warnings.map((w) => [w.path, w.message])).toEqual([
      ['spec.ingress[0].toPorts[0].rules.kafka', 'Membrane does not parse Kafka: ports 9092/TCP, kafka/TCP fail closed (the connections this rule allows there are refused)'],
    ]);
  });
});

describe('issue-7 validation parity (one problem per fault, with Cilium\'s wording)', () => {
  const cnp = (spec: string, kind = 'CiliumNetworkPolicy') => `apiVersion: cilium.io/v2\nkind: ${kind}\nmetadata: {name: x}\nspec:\n${spec}`;
  const problems = (text: string) => loadPolicyText(text, 'f.yaml').problems.map((p) => [p.path, p.message]);
  const port = (p: string) => `  endpointSelector: {}\n  ingress:\n  - toPorts: [{ports: [${p}]}]\n`;

  it('issue-7 invalid Kafka rules', () => {
    const kafka = (rule: string) => cnp(`  endpointSelector: {}\n  ingress:\n  - toPorts: [{ports: [{port: "9092", protocol: TCP}], rules: {kafka: [${rule}]}}]\n`);
    const at = 'spec.ingress[0].toPorts[0].rules.kafka[0]';
    expect(problems(kafka('{apiKey: not-an-api-key}'))).toEqual([[`${at}.apiKey`, 'invalid Kafka APIKey "not-an-api-key"']]);
    expect(problems(kafka('{role: bogus}'))).toEqual([[`${at}.role`, 'invalid Kafka Role "bogus"']]);
    expect(problems(kafka('{apiVersion: "32768"}'))).toEqual([[`${at}.apiVersion`, 'invalid Kafka APIVersion "32768"']]);
    expect(problems(kafka(`{topic: ${'t'.repeat(256)}}`))).toEqual([[`${at}.topic`, 'kafka topic exceeds maximum len of 255']]);
    expect(problems(kafka('{apiKey: Produce, apiVersion: "3", clientID: c, topic: a.b_c-d}'))).toEqual([]);
  });

  it('issue-7 a namespaced CiliumNetworkPolicy with nodeSelector', () => {
    const host = '  nodeSelector: {}\n  ingress: [{fromEntities: [cluster]}]\n';
    expect(problems(cnp(host))).toEqual([['spec.nodeSelector', 'rule cannot have NodeSelector: a namespaced CiliumNetworkPolicy cannot select nodes (use a CiliumClusterwideNetworkPolicy)']]);
    expect(problems(cnp(host, 'CiliumClusterwideNetworkPolicy'))).toEqual([]);
  });

  it('issue-7 a port on a protocol without ports (VRRP, IGMP)', () => {
    expect(problems(cnp(port('{port: "80", protocol: VRRP}')))).toEqual([['spec.ingress[0].toPorts[0].ports[0].port', 'port must be empty or 0 for protocol VRRP']]);
    expect(problems(cnp(port('{port: "112", protocol: IGMP}')))).toEqual([['spec.ingress[0].toPorts[0].ports[0].port', 'port must be empty or 0 for protocol IGMP']]);
    expect(problems(cnp(port('{port: "0", protocol: VRRP}, {port: "", protocol: IGMP}, {protocol: IGMP}')))).toEqual([]);
  });

  it('issue-7 a host policy with DNS rules on egress port 53', () => {
    const host = `  nodeSelector: {}\n  egress:\n  - toPorts: [{ports: [{port: "53", protocol: UDP}], rules: {dns: [{matchName: cilium.io}]}}]\n`;
    expect(problems(cnp(host, 'CiliumClusterwideNetworkPolicy'))).toEqual([]);
  });

  it('issue-7 YAML syntax errors carry the line and column', () => {
    const r = loadPolicyText('kind: CiliumNetworkPolicy\nmetadata:\n  name: a\n  name: b\n', 'f.yaml');
    expect(r.problems).toEqual([{ file: 'f.yaml', name: '<unnamed>', path: '', message: 'invalid YAML: Map keys must be unique', line: 4, column: 3 }]);
  });

  it('issue-7 a bad protocol value is one problem', () => {
    const l7 = (proto: string) => cnp(`  endpointSelector: {}\n  ingress:\n  - toPorts: [{ports: [{port: "80", protocol: ${proto}}], rules: {http: [{}]}}]\n`);
    for (const proto of ['FOO', 'tcp']) {
      expect(problems(l7(proto))).toEqual([['spec.ingress[0].toPorts[0].ports[0].protocol', `unsupported value "${proto}": must be one of TCP, UDP, SCTP, VRRP, IGMP, ANY`]]);
    }
  });
});
