/**
 * issue-11 L7 visibility without enforcement: the `policy.cilium.io/proxy-visibility` parser
 * (Cilium's pkg/policy/visibility_test.go cases) and the post-pass over resolved map state,
 * which redirects and never changes a verdict.
 */
import { describe, expect, it } from 'vitest';
import {
  applyVisibility,
  loadPolicyText,
  lookupPolicy,
  parseProxyVisibility,
  resolveEndpointPolicy,
  visibilityAnnotation,
  type DirectionPolicy,
  type EndpointPolicy,
  type PolicyObject,
  type VisibilityPolicy,
} from '../../../src/policy/index.js';
import { pod } from './builders.js';

function vis(text: string): VisibilityPolicy {
  const r = parseProxyVisibility(text);
  if (!r.ok) throw new Error(r.error);
  return r.policy;
}

function errorOf(text: string): string {
  const r = parseProxyVisibility(text);
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.error;
}

function policies(yaml: string): PolicyObject[] {
  const r = loadPolicyText(yaml, 'test.yaml');
  expect(r.problems).toEqual([]);
  return r.policies;
}

const deathstar = pod(1001, 'default', { org: 'empire', class: 'deathstar' });
const tiefighter = pod(1002, 'default', { org: 'empire', class: 'tiefighter' });
const xwing = pod(1003, 'default', { org: 'alliance', class: 'xwing' });
const dns = pod(1004, 'kube-system', { 'k8s-app': 'kube-dns' });
const identities = [deathstar, tiefighter, xwing, dns];
const peers = [0, 1, 2, 4, deathstar.id, tiefighter.id, xwing.id, dns.id, 99999];

function resolve(yaml: string, endpoint = deathstar): EndpointPolicy {
  return resolveEndpointPolicy({ policies: yaml ? policies(yaml) : [], endpoint, identities });
}

describe('proxy-visibility annotation parser (Cilium pkg/policy/visibility.go)', () => {
  it('parses one tuple, several tuples, and a repeated tuple once', () => {
    expect(vis('<Ingress/80/TCP/HTTP>').ports).toEqual([{ direction: 'ingress', protocol: 6, port: 80, parser: 'http' }]);
    expect(vis('<Ingress/80/TCP/HTTP>,<Ingress/8080/TCP/HTTP>').ports.map((p) => p.port)).toEqual([80, 8080]);
    expect(vis('<Ingress/80/TCP/HTTP>,<Ingress/80/TCP/HTTP>').ports).toHaveLength(1);
    expect(vis('<Ingress/65535/TCP/HTTP>').ports[0]!.port).toBe(65535);
    // The L7 protocol is case-insensitive, as Cilium lower-cases it.
    expect(vis('<Egress/53/UDP/dns>').ports).toEqual([{ direction: 'egress', protocol: 17, port: 53, parser: 'dns' }]);
  });

  it('ANY is TCP and UDP for DNS, TCP only for HTTP', () => {
    expect(vis('<Egress/53/ANY/DNS>').ports.map((p) => p.protocol)).toEqual([6, 17]);
    expect(vis('<Ingress/80/ANY/HTTP>').ports.map((p) => p.protocol)).toEqual([6]);
  });

  it('the issue example parses into one ingress HTTP and one egress DNS redirect', () => {
    const v = vis('<Ingress/80/TCP/HTTP>,<Egress/53/UDP/DNS>');
    expect(v.ports).toEqual([
      { direction: 'ingress', protocol: 6, port: 80, parser: 'http' },
      { direction: 'egress', protocol: 17, port: 53, parser: 'dns' },
    ]);
    expect(v.key).toBe('<ingress/80/TCP/http>,<egress/53/UDP/dns>');
  });

  it("refuses Cilium's invalid examples with an error naming the fault", () => {
    expect(errorOf('asdf')).toMatch(/"asdf" does not match the expected format/);
    expect(errorOf('<Ingress/65536/TCP/HTTP>')).toMatch(/unable to parse port: 65536 is out of range/);
    expect(errorOf('<Ingress/99999/TCP/HTTP>')).toMatch(/unable to parse port/);
    expect(errorOf('<Ingress/0/TCP/HTTP>')).toMatch(/does not match the expected format/);
    expect(errorOf('<Ingress/123456/TCP/HTTP')).toMatch(/does not match the expected format/);
    expect(errorOf('<Ingress/02345/TCP/HTTP>')).toMatch(/does not match the expected format/);
    expect(errorOf('<Ingress/80/TCP/HTTP>,<Ingress/80/TCP/Kafka>')).toMatch(/kafka visibility is not supported/);
    expect(errorOf('<Ingress/53/UDP/DNS>')).toBe('<Ingress/53/UDP/DNS>: dns not allowed with direction Ingress');
    expect(errorOf('<Egress/80/TCP/HTTP>,<Egress/80/TCP/DNS>')).toBe('duplicate annotations with different L7 protocols http and dns for Egress 80/TCP');
    expect(errorOf('<Egress/80/TCP/SMTP>')).toMatch(/unsupported parser type smtp/);
    expect(errorOf('<Egress/80/TCP/HTTP>, <Egress/53/UDP/DNS>')).toMatch(/" <Egress\/53\/UDP\/DNS>" does not match/);
    expect(errorOf('')).toMatch(/empty value/);
  });

  it('refuses what the proxies cannot serve rather than redirect it (fail safe)', () => {
    expect(errorOf('<Ingress/80/UDP/HTTP>')).toMatch(/http runs over TCP, not UDP/);
    expect(errorOf('<Egress/53/SCTP/DNS>')).toMatch(/over SCTP is not supported/);
  });

  it('reads policy.cilium.io/proxy-visibility before its old name io.cilium.proxy-visibility', () => {
    expect(visibilityAnnotation({ 'io.cilium.proxy-visibility': '<Egress/53/UDP/DNS>' })).toEqual({ name: 'io.cilium.proxy-visibility', value: '<Egress/53/UDP/DNS>' });
    expect(
      visibilityAnnotation({ 'io.cilium.proxy-visibility': 'old', 'policy.cilium.io/proxy-visibility': '<Ingress/80/TCP/HTTP>' }),
    ).toEqual({ name: 'policy.cilium.io/proxy-visibility', value: '<Ingress/80/TCP/HTTP>' });
    expect(visibilityAnnotation({ other: 'x' })).toBeUndefined();
  });
});

/** Lookup results with verdict, drop reason and L7 rules only (entries compared by meaning). */
function at(dir: DirectionPolicy, id: number, proto: number, port: number) {
  const r = lookupPolicy(dir, id, proto, port);
  return { verdict: r.verdict, dropReason: r.dropReason, l7: r.entry?.l7 ?? null };
}

const allowed = (v: string): boolean => v === 'allow' || v === 'redirect' || v === 'default-allow';

/**
 * The invariant: at every peer and port, the verdict (allowed or the same drop reason) is as
 * before; at an annotated port an allow becomes an allow-all redirect of the parser and a
 * redirect keeps its rules; every other port answers exactly as before.
 */
function expectVisibilityOnly(before: EndpointPolicy, after: EndpointPolicy, v: VisibilityPolicy): void {
  const probes: [number, number][] = [[6, 80], [6, 81], [6, 8080], [17, 53], [6, 53], [17, 80], [6, 443], [1, 8]];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const id of peers) {
      for (const [proto, port] of probes) {
        const b = at(before[direction], id, proto, port);
        const a = at(after[direction], id, proto, port);
        const ann = v.ports.find((p) => p.direction === direction && p.protocol === proto && p.port === port);
        expect(allowed(a.verdict), `${direction} id ${id} ${proto}/${port}`).toBe(allowed(b.verdict));
        expect(a.dropReason).toBe(b.dropReason);
        if (ann && (b.verdict === 'allow' || b.verdict === 'default-allow')) {
          expect(a.verdict).toBe('redirect');
          expect(a.l7).toEqual(ann.parser === 'http' ? { kind: 'http', rules: [], allowAll: true } : { kind: 'dns', patterns: [], allowAll: true });
        } else {
          expect(a, `${direction} id ${id} ${proto}/${port}`).toEqual(b);
        }
      }
    }
  }
}

const L3L4 = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

const L7 = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{method: POST, path: /v1/request-landing}]}
`;

describe('visibility post-pass: redirect without changing a verdict', () => {
  const http80 = vis('<Ingress/80/TCP/HTTP>');

  it('no policy: port 80 ingress becomes an L4-only allow-all HTTP redirect, nothing else changes', () => {
    const before = resolve('');
    const after = applyVisibility(before, http80);
    expect(after.ingress.enforced).toBe(false);
    expect(after.ingress.entries).toEqual([
      { identity: 0, protocol: 6, port: 80, portPrefixLen: 16, verdict: 'redirect', l7: { kind: 'http', rules: [], allowAll: true }, derivedFrom: [] },
    ]);
    expect(lookupPolicy(after.ingress, xwing.id, 6, 80).verdict).toBe('redirect');
    expect(lookupPolicy(after.ingress, xwing.id, 6, 81).verdict).toBe('default-allow');
    expect(after.egress).toBe(before.egress);
    expectVisibilityOnly(before, after, http80);
  });

  it('L3/L4 policy: the allowed peer is redirected with the rule that allowed it, the denied peer stays default-denied', () => {
    const before = resolve(L3L4);
    const after = applyVisibility(before, http80);
    const t = lookupPolicy(after.ingress, tiefighter.id, 6, 80);
    expect(t.verdict).toBe('redirect');
    expect(t.entry?.l7).toEqual({ kind: 'http', rules: [], allowAll: true });
    expect(t.entry?.derivedFrom.map((r) => r.policy)).toEqual(['rule1']);
    expect(lookupPolicy(after.ingress, xwing.id, 6, 80)).toEqual({ verdict: 'default-deny', entry: null, dropReason: 133 });
    expect(lookupPolicy(after.ingress, tiefighter.id, 6, 81).verdict).toBe('default-deny');
    expectVisibilityOnly(before, after, http80);
  });

  it('a port with HTTP rules keeps exactly its rules', () => {
    const before = resolve(L7);
    const after = applyVisibility(before, http80);
    expect(after).toBe(before);
    expect(lookupPolicy(after.ingress, tiefighter.id, 6, 80).entry?.l7).toEqual({
      kind: 'http',
      rules: [{ method: 'POST', path: '/v1/request-landing' }],
      allowAll: false,
    });
  });

  it("a port whose policy redirects to another parser keeps that redirect (Cilium: an existing redirect is not replaced)", () => {
    const before = resolve(
      `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: dns-only, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {k8s-app: kube-dns, io.kubernetes.pod.namespace: kube-system}}]
    toPorts:
    - ports: [{port: "53", protocol: TCP}]
      rules: {dns: [{matchPattern: "*.empire.svc"}]}
`,
      tiefighter,
    );
    const v = vis('<Egress/53/TCP/HTTP>');
    const after = applyVisibility(before, v);
    expect(lookupPolicy(after.egress, dns.id, 6, 53).entry?.l7).toEqual({ kind: 'dns', patterns: ['*.empire.svc.'], allowAll: false });
    expectVisibilityOnly(before, after, v);
  });

  it('a denied port never becomes allowed: deny rules, default deny and an allow-all wildcard beside a deny', () => {
    const yaml = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mixed, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEntities: [all]
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts: [{ports: [{port: "0", protocol: TCP}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {org: alliance}}]
  egress:
  - toEndpoints: [{matchLabels: {org: empire}}]
  - toEndpoints: [{matchLabels: {k8s-app: kube-dns, io.kubernetes.pod.namespace: kube-system}}]
  egressDeny:
  - toEndpoints: [{matchLabels: {k8s-app: kube-dns, io.kubernetes.pod.namespace: kube-system}}]
    toPorts: [{ports: [{port: "53", protocol: ANY}]}]
`;
    const before = resolve(yaml);
    const v = vis('<Ingress/80/TCP/HTTP>,<Egress/53/ANY/DNS>,<Egress/80/TCP/HTTP>');
    const after = applyVisibility(before, v);
    // xwing (org=alliance) is denied by an L3 deny: still POLICY_DENY (181) on port 80.
    expect(lookupPolicy(after.ingress, xwing.id, 6, 80)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(lookupPolicy(after.ingress, tiefighter.id, 6, 80).verdict).toBe('redirect');
    expect(lookupPolicy(after.egress, dns.id, 17, 53)).toMatchObject({ verdict: 'deny', dropReason: 181 });
    expect(lookupPolicy(after.egress, dns.id, 6, 80).verdict).toBe('redirect');
    expect(lookupPolicy(after.egress, xwing.id, 6, 80)).toMatchObject({ verdict: 'default-deny', dropReason: 133 });
    expectVisibilityOnly(before, after, v);
  });

  it('the result is memoized: the same resolved policy and annotation give the same object', () => {
    const before = resolve(L3L4);
    expect(applyVisibility(before, http80)).toBe(applyVisibility(before, http80));
    expect(applyVisibility(before, null)).toBe(before);
    expect(applyVisibility(before, vis('<Ingress/8080/TCP/HTTP>'))).not.toBe(applyVisibility(before, http80));
  });

  it('keeps every verdict for port ranges, L3-only allows and L7 on a range (derived entries where needed)', () => {
    const yaml = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ranges, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {class: xwing}}]
    toPorts: [{ports: [{port: "0", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts:
    - ports: [{port: "64", endPort: 127, protocol: TCP}]
      rules: {http: [{method: GET}]}
  - fromEndpoints: [{matchLabels: {class: deathstar}}]
`;
    const before = resolve(yaml);
    const after = applyVisibility(before, http80);
    // tiefighter's GET-only rules on 64-127 still decide port 80 for it, not the allow-all.
    expect(lookupPolicy(after.ingress, tiefighter.id, 6, 80).entry?.l7).toEqual({ kind: 'http', rules: [{ method: 'GET' }], allowAll: false });
    expect(lookupPolicy(after.ingress, xwing.id, 6, 80).entry?.l7).toEqual({ kind: 'http', rules: [], allowAll: true });
    expectVisibilityOnly(before, after, http80);
  });

  it('pins a peer whose own redirect has a shorter prefix than the new L4-only redirect (map state as the kernel sees it)', () => {
    const ref = { policy: 'p', namespace: 'default', kind: 'CiliumNetworkPolicy' as const, direction: 'ingress' as const, index: 0 };
    const ingress: DirectionPolicy = {
      enforced: true,
      entries: [
        { identity: 0, protocol: 6, port: 0, portPrefixLen: 0, verdict: 'allow', derivedFrom: [ref] },
        { identity: tiefighter.id, protocol: 6, port: 64, portPrefixLen: 10, verdict: 'redirect', l7: { kind: 'http', rules: [{ method: 'GET' }], allowAll: false }, derivedFrom: [ref] },
      ],
    };
    const before: EndpointPolicy = { ingress, egress: { enforced: false, entries: [] } };
    const after = applyVisibility(before, http80);
    expect(after.ingress.entries.filter((e) => e.portPrefixLen === 16).map((e) => [e.identity, e.verdict, e.l7?.allowAll])).toEqual([
      [0, 'redirect', true],
      [tiefighter.id, 'redirect', false],
    ]);
    expectVisibilityOnly(before, after, http80);
  });
});
