/**
 * issue-6 one L7 decision: `decideL7` is what the HTTP proxy (and the DNS proxy) run for each
 * request, and what `policy trace` runs for the L7 part of a trace. Driven by real policies
 * resolved by the policy module; trace and the decision must agree on every case.
 */
import { describe, expect, it } from 'vitest';
import { decideL7, tracePolicy, type L7Request } from '../../../src/policy/index.js';
import { PolicyState, starwarsPolicyYaml } from '../../support/policy-state.js';

const http = (method: string, path: string, host = 'deathstar.default.svc.cluster.local'): L7Request => ({ kind: 'http', method, path, host, headers: {} });

const EGRESS_TIEFIGHTER = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: tiefighter-egress}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/v1/.*"}, {method: POST, path: "/v1/request-landing"}]
`;

const DENY_XWING = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: no-xwing}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {class: xwing}}]
`;

/** DNS rules on the port an HTTP client uses: Cilium hands that port to its DNS proxy. */
const DNS_RULES_ON_80 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: dns-on-80}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        dns: [{matchPattern: "*.empire.local"}]
`;

/** An L4-only allow on the same port as an L7 rule: Cilium folds it in, every request passes. */
const L4_AND_L7 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l4-and-l7}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: POST, path: "/v1/request-landing"}]
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
`;

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
});

describe('issue-6 policy trace says what the proxy does', () => {
  // Every case: the trace verdict equals decideL7's (with both pods local, as trace models them).
  const cases: Array<[string, string | string[], string, string, L7Request]> = [
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
  ];
  it.each(cases)('%s', (_name, yaml, src, dst, req) => {
    const s = new PolicyState(yaml);
    const decision = decideL7(s.flow(src, dst), req);
    const trace = tracePolicy({
      policies: s.policies,
      src: { labels: { ...s.pod(src).labels }, namespace: 'default' },
      dst: { labels: { ...s.pod(dst).labels }, namespace: 'default' },
      dport: 80,
      protocol: 'TCP',
      ...(req.kind === 'http' ? { http: { method: req.method, path: req.path, host: req.host } } : { dnsName: req.qname }),
    });
    expect(trace.verdict).toBe(decision.allowed ? 'allowed' : 'denied');
  });
});
