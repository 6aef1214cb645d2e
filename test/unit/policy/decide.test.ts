/**
 * issue-6 one L7 decision: `decideL7` is what the HTTP proxy (and the DNS proxy) run for each
 * request, and what `policy trace` runs for the L7 part of a trace. Driven by real policies
 * resolved by the policy module; trace and the decision must agree on every case.
 */
import { describe, expect, it } from 'vitest';
import { decideL7, tracePolicy, type L7Request } from '../../../src/policy/index.js';
import { PolicyState, starwarsPolicyYaml } from '../../support/policy-state.js';
import { denyIngressFrom, dnsRulesOn80, L4_FOLDED_INTO_L7, tiefighterEgressHttp } from '../../support/policies.js';

const EGRESS_TIEFIGHTER = tiefighterEgressHttp('tiefighter-egress', '{method: GET, path: "/v1/.*"}, {method: POST, path: "/v1/request-landing"}');
const DENY_XWING = denyIngressFrom('no-xwing', 'xwing');
const DNS_RULES_ON_80 = dnsRulesOn80('*.empire.local');
const L4_AND_L7 = L4_FOLDED_INTO_L7;

const http = (method: string, path: string, host = 'deathstar.default.svc.cluster.local'): L7Request => ({ kind: 'http', method, path, host, headers: {} });

describe('issue-6 decideL7: one L7 decision for proxies and trace', () => {
  it('ingress HTTP rules of the destination (the Star Wars rule1)', () => {
    const s = new PolicyState(starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml'));
    const ok = decideL7(s.flow('tiefighter', 'deathstar'), http('POST', '/v1/request-landing'));
    expect(ok).toMatchObject({ allowed: true, policies: ['default/rule1'], egress: { reason: 'not-redirected' }, ingress: { reason: 'rule-matched', matched: 0 } });
    const no = decideL7(s.flow('tiefighter', 'deathstar'), http('PUT', '/v1/exhaust-port'));
    expect(no).toMatchObject({ allowed: false, ingress: { reason: 'no-rule-matched' } });
    expect(no.reason).toBe('ingress: HTTP PUT /v1/exhaust-port matches no HTTP rule');
    // xwing is not even admitted at L3/L4: a request on such a connection is denied too.
    expect(decideL7(s.flow('xwing', 'deathstar'), http('POST', '/v1/request-landing'))).toMatchObject({ allowed: false, ingress: { reason: 'l3l4-denied' } });
  });

  it('egress HTTP rules of the source, when only the source is local', () => {
    const s = new PolicyState(EGRESS_TIEFIGHTER);
    expect(decideL7(s.flow('tiefighter', 'deathstar', 80, 'src'), http('GET', '/v1/status'))).toMatchObject({ allowed: true, ingress: null, egress: { reason: 'rule-matched', matched: 0 } });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 80, 'src'), http('DELETE', '/v1/status'))).toMatchObject({ allowed: false, egress: { reason: 'no-rule-matched' } });
    // The same rule does not follow another port.
    expect(decideL7(s.flow('tiefighter', 'deathstar', 8080, 'src'), http('GET', '/v1/status'))).toMatchObject({ allowed: false, egress: { reason: 'l3l4-denied' } });
  });

  it('both sides local: egress and ingress rules must both allow', () => {
    const s = new PolicyState([EGRESS_TIEFIGHTER, starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml')]);
    const flow = s.flow('tiefighter', 'deathstar');
    expect(decideL7(flow, http('POST', '/v1/request-landing'))).toMatchObject({ allowed: true, egress: { allowed: true }, ingress: { allowed: true } });
    expect(decideL7(flow, http('GET', '/v1/status'))).toMatchObject({ allowed: false, egress: { allowed: true }, ingress: { allowed: false } });
    expect(decideL7(flow, http('POST', '/v2/request-landing'))).toMatchObject({ allowed: false, egress: { allowed: false } });
  });

  it('a deny rule wins over an L7 allow-all', () => {
    const s = new PolicyState(DENY_XWING);
    expect(decideL7(s.flow('tiefighter', 'deathstar'), http('GET', '/anything'))).toMatchObject({ allowed: true, ingress: { reason: 'rule-matched', matched: 0 } });
    expect(decideL7(s.flow('xwing', 'deathstar'), http('GET', '/anything'))).toMatchObject({ allowed: false, ingress: { reason: 'l3l4-denied' }, policies: ['default/no-xwing'] });
  });

  it('no policy state fails closed', () => {
    const s = new PolicyState(starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml'));
    expect(decideL7(s.flow('tiefighter', 'deathstar', 80, 'none'), http('POST', '/v1/request-landing'))).toMatchObject({ allowed: false, ingress: { reason: 'no-policy-state' } });
    const { srcPolicy: _s, dstPolicy: _d, ...neither } = s.flow('tiefighter', 'deathstar');
    expect(decideL7(neither, http('POST', '/v1/request-landing'))).toMatchObject({ allowed: false, reason: 'no policy state for either side' });
  });

  it('an L4-only allow folded into an L7 redirect allows every request of that peer (Cilium)', () => {
    const s = new PolicyState(L4_AND_L7);
    expect(decideL7(s.flow('tiefighter', 'deathstar'), http('PUT', '/v1/exhaust-port'))).toMatchObject({ allowed: true, ingress: { reason: 'allow-all' } });
  });

  it('a redirected port whose rules are for another protocol denies: its proxy cannot parse the request', () => {
    const s = new PolicyState(DNS_RULES_ON_80);
    const d = decideL7(s.flow('tiefighter', 'deathstar', 80, 'src'), http('GET', '/'));
    expect(d).toMatchObject({ allowed: false, egress: { reason: 'parser-mismatch' } });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 80, 'src'), { kind: 'dns', qname: 'tie.empire.local' })).toMatchObject({ allowed: true, egress: { matched: '*.empire.local.' } });
  });

  it("a DNS rule with both matchName and matchPattern allows either (Cilium's PortRuleDNS); one with neither allows no name", () => {
    const both = new PolicyState(DNS_RULES_ON_80.replace('{matchPattern: "*.empire.local"}', '{matchName: deathstar.galaxy, matchPattern: "*.empire.local"}'));
    const dns = (s: PolicyState, qname: string) => decideL7(s.flow('tiefighter', 'deathstar', 80, 'src'), { kind: 'dns', qname }).allowed;
    expect([dns(both, 'deathstar.galaxy'), dns(both, 'tie.empire.local'), dns(both, 'rebel.base')]).toEqual([true, true, false]);
    const neither = new PolicyState(DNS_RULES_ON_80.replace('{matchPattern: "*.empire.local"}', '{}'));
    expect([dns(neither, 'tie.empire.local'), dns(neither, 'deathstar.galaxy')]).toEqual([false, false]);
  });
});

/** serverNames without TLS termination: the SNI of the ClientHello decides (issue-8). */
const SNI_EGRESS = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: sni-egress}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: ["deathstar.empire.local", "*.api.empire.local", "**.galaxy", "dock-*.empire.local"]
`;

/** Ingress serverNames on the destination, beside an egress L4-only allow of the source. */
const SNI_INGRESS = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: sni-ingress}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: ["deathstar.empire.local"]
`;

/** A rule without serverNames on the same peer and port: every server name passes (rules are OR-ed). */
const SNI_AND_L4 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: sni-and-l4}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: ["deathstar.empire.local"]
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
`;

/** Two rules with serverNames on one peer and port: the union of their names. */
const SNI_UNION = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: sni-union}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: ["a.empire.local"]
  - toEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: ["b.empire.local"]
`;

/** HTTP rules and serverNames from two rules on one peer and port: the HTTP parser takes the port. */
const SNI_AND_HTTP = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: sni-and-http}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: ["deathstar.empire.local"]
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      rules:
        http: [{method: GET}]
`;

const tls = (sni: string | null): L7Request => ({ kind: 'tls', sni });

describe('issue-8 decideL7: TLS serverNames (SNI) without termination', () => {
  it('a listed SNI is allowed, in any case; the entry that matched is named', () => {
    const s = new PolicyState(SNI_EGRESS);
    const ok = decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('deathstar.empire.local'));
    expect(ok).toMatchObject({ allowed: true, policies: ['default/sni-egress'], egress: { reason: 'rule-matched', matched: 'deathstar.empire.local' } });
    expect(ok.reason).toBe('egress: server name deathstar.empire.local matched');
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('DeathStar.Empire.LOCAL'))).toMatchObject({ allowed: true });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('deathstar.empire.local.'))).toMatchObject({ allowed: true });
  });

  it('an unlisted or missing SNI is denied', () => {
    const s = new PolicyState(SNI_EGRESS);
    const no = decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('rebel.base'));
    expect(no).toMatchObject({ allowed: false, egress: { reason: 'no-rule-matched', matched: null } });
    expect(no.reason).toBe('egress: TLS ClientHello with SNI rebel.base matches no serverNames entry');
    const none = decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls(null));
    expect(none).toMatchObject({ allowed: false, egress: { reason: 'no-rule-matched' } });
    expect(none.reason).toBe('egress: TLS ClientHello without SNI matches no serverNames entry');
  });

  it('wildcards are those of toFQDNs: * within one label, a leading **. for one or more labels', () => {
    const s = new PolicyState(SNI_EGRESS);
    const allowed = (sni: string): boolean => decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls(sni)).allowed;
    expect(allowed('v1.api.empire.local')).toBe(true);
    expect(allowed('a.v1.api.empire.local')).toBe(false); // * never crosses a dot
    expect(allowed('api.empire.local')).toBe(false); // *. needs a label
    expect(allowed('x.galaxy')).toBe(true);
    expect(allowed('a.b.c.galaxy')).toBe(true);
    expect(allowed('galaxy')).toBe(false); // **. needs at least one label
    expect(allowed('dock-7.empire.local')).toBe(true);
    expect(allowed('dock-.empire.local')).toBe(true); // * is zero or more characters
    expect(allowed('dock.empire.local')).toBe(false);
    // A host_name that is no DNS name matches nothing, even under a wildcard.
    expect(allowed('x y.galaxy')).toBe(false);
    expect(allowed('')).toBe(false);
  });

  it('ingress serverNames of the destination are judged too', () => {
    const s = new PolicyState(SNI_INGRESS);
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'dst'), tls('deathstar.empire.local'))).toMatchObject({ allowed: true, ingress: { reason: 'rule-matched' } });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'dst'), tls('other.empire.local'))).toMatchObject({ allowed: false, ingress: { reason: 'no-rule-matched' } });
    // xwing is not admitted at L3/L4 at all.
    expect(decideL7(s.flow('xwing', 'deathstar', 443, 'dst'), tls('deathstar.empire.local'))).toMatchObject({ allowed: false, ingress: { reason: 'l3l4-denied' } });
  });

  it('a rule without serverNames on the same peer and port allows every server name', () => {
    const s = new PolicyState(SNI_AND_L4);
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('anything.else'))).toMatchObject({ allowed: true, egress: { reason: 'allow-all' } });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls(null))).toMatchObject({ allowed: true, egress: { reason: 'allow-all' } });
  });

  it('serverNames of several rules on one peer and port are merged (union)', () => {
    const s = new PolicyState(SNI_UNION);
    expect(s.policyOf('tiefighter').egress.entries.find((e) => e.identity === s.pod('deathstar').identity && e.port === 443)?.l7).toEqual({
      kind: 'tls',
      serverNames: ['a.empire.local', 'b.empire.local'],
      allowAll: false,
    });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('a.empire.local')).allowed).toBe(true);
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('b.empire.local')).allowed).toBe(true);
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('c.empire.local')).allowed).toBe(false);
  });

  it('parser mismatch both ways: HTTP on a TLS port is denied; a ClientHello on an HTTP port is not HTTP', () => {
    const sni = new PolicyState(SNI_EGRESS);
    const d = decideL7(sni.flow('tiefighter', 'deathstar', 443, 'src'), http('GET', '/'));
    expect(d).toMatchObject({ allowed: false, egress: { reason: 'parser-mismatch' } });
    expect(d.reason).toBe("egress: the port's L7 rules are TLS, a HTTP request cannot be parsed by that proxy");
    const h = new PolicyState(EGRESS_TIEFIGHTER);
    expect(decideL7(h.flow('tiefighter', 'deathstar', 80, 'src'), tls('deathstar.empire.local'))).toMatchObject({ allowed: false, egress: { reason: 'parser-mismatch' } });
  });

  it('serverNames merged with HTTP rules of another rule: the HTTP parser takes the port, and no ClientHello passes', () => {
    const s = new PolicyState(SNI_AND_HTTP);
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), tls('deathstar.empire.local'))).toMatchObject({ allowed: false, egress: { reason: 'parser-mismatch' } });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), http('GET', '/'))).toMatchObject({ allowed: true, egress: { reason: 'rule-matched' } });
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'src'), http('PUT', '/'))).toMatchObject({ allowed: false, egress: { reason: 'no-rule-matched' } });
  });

  it('no policy state fails closed for a ClientHello as for a request', () => {
    const s = new PolicyState(SNI_EGRESS);
    expect(decideL7(s.flow('tiefighter', 'deathstar', 443, 'none'), tls('deathstar.empire.local'))).toMatchObject({ allowed: false, egress: { reason: 'no-policy-state' } });
  });
});

describe('issue-6 policy trace says what the proxy does', () => {
  // Every case: the trace verdict equals decideL7's (with both pods local, as trace models them).
  const cases: Array<[string, string | string[], string, string, L7Request, number?]> = [
    ['rule1 POST', starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml'), 'tiefighter', 'deathstar', http('POST', '/v1/request-landing')],
    ['rule1 PUT', starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml'), 'tiefighter', 'deathstar', http('PUT', '/v1/exhaust-port')],
    ['rule1 xwing', starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml'), 'xwing', 'deathstar', http('POST', '/v1/request-landing')],
    ['egress GET', EGRESS_TIEFIGHTER, 'tiefighter', 'deathstar', http('GET', '/v1/x')],
    ['egress DELETE', EGRESS_TIEFIGHTER, 'tiefighter', 'deathstar', http('DELETE', '/v1/x')],
    ['both', [EGRESS_TIEFIGHTER, starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml')], 'tiefighter', 'deathstar', http('GET', '/v1/x')],
    ['deny', DENY_XWING, 'xwing', 'deathstar', http('GET', '/')],
    ['folded L4', L4_AND_L7, 'tiefighter', 'deathstar', http('PUT', '/v1/exhaust-port')],
    ['DNS rules, HTTP request', DNS_RULES_ON_80, 'tiefighter', 'deathstar', http('GET', '/')],
    ['DNS rules, DNS query', DNS_RULES_ON_80, 'tiefighter', 'deathstar', { kind: 'dns', qname: 'x.empire.local' }],
    ['issue-8 SNI listed', SNI_EGRESS, 'tiefighter', 'deathstar', tls('deathstar.empire.local'), 443],
    ['issue-8 SNI wildcard', SNI_EGRESS, 'tiefighter', 'deathstar', tls('a.b.galaxy'), 443],
    ['issue-8 SNI unlisted', SNI_EGRESS, 'tiefighter', 'deathstar', tls('rebel.base'), 443],
    ['issue-8 no SNI', SNI_EGRESS, 'tiefighter', 'deathstar', tls(null), 443],
    ['issue-8 ingress SNI', SNI_INGRESS, 'tiefighter', 'deathstar', tls('deathstar.empire.local'), 443],
    ['issue-8 ingress SNI unlisted', SNI_INGRESS, 'tiefighter', 'deathstar', tls('x.empire.local'), 443],
    ['issue-8 ingress SNI xwing', SNI_INGRESS, 'xwing', 'deathstar', tls('deathstar.empire.local'), 443],
    ['issue-8 SNI and L4', SNI_AND_L4, 'tiefighter', 'deathstar', tls(null), 443],
    ['issue-8 SNI, HTTP request', SNI_EGRESS, 'tiefighter', 'deathstar', http('GET', '/'), 443],
    ['issue-8 SNI and HTTP rules, ClientHello', SNI_AND_HTTP, 'tiefighter', 'deathstar', tls('deathstar.empire.local'), 443],
  ];
  it.each(cases)('%s', (_name, yaml, src, dst, req, dport = 80) => {
    const s = new PolicyState(yaml);
    const decision = decideL7(s.flow(src, dst, dport), req);
    const trace = tracePolicy({
      policies: s.policies,
      src: { labels: { ...s.pod(src).labels }, namespace: 'default' },
      dst: { labels: { ...s.pod(dst).labels }, namespace: 'default' },
      dport,
      protocol: 'TCP',
      ...(req.kind === 'http' ? { http: { method: req.method, path: req.path, host: req.host } } : req.kind === 'dns' ? { dnsName: req.qname } : { tlsSni: req.sni }),
    });
    expect(trace.verdict).toBe(decision.allowed ? 'allowed' : 'denied');
  });
});
