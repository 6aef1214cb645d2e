/**
 * issue-8 serverNames (TLS SNI) on toPorts: validated as Cilium validates them, resolved into a
 * `tls` redirect of the map state; TLS interception (terminatingTLS/originatingTLS) stays out of
 * scope and is refused naming the field.
 */
import { describe, expect, it } from 'vitest';
import { loadPolicyText, resolveEndpointPolicy, endpointLabels, serverNameMatches, validateServerName } from '../../../src/policy/index.js';

function policy(portRule: string): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: sni, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: mediabot}}
  egress:
  - toEntities: [world]
    toPorts:
    - ${portRule}
`;
}

function problems(portRule: string): string[] {
  return loadPolicyText(policy(portRule), 'sni.yaml').problems.map((p) => `${p.path}: ${p.message}`);
}

describe('issue-8 serverNames validation', () => {
  it('accepts names and the wildcards of Cilium connectivity suite policies', () => {
    for (const names of ['["api.github.com"]', '["*.one.one.one"]', '["**.one"]', '["*ne.one.one.one"]', '["*"]', '["API.GitHub.com."]']) {
      expect(problems(`ports: [{port: "443", protocol: TCP}]\n      serverNames: ${names}`)).toEqual([]);
    }
  });

  it("rejects an empty name with Cilium's text, and names outside the CRD pattern", () => {
    expect(problems('ports: [{port: "443", protocol: TCP}]\n      serverNames: [""]')).toEqual([
      'spec.egress[0].toPorts[0].serverNames[0]: Empty server name is not allowed',
    ]);
    expect(problems('ports: [{port: "443", protocol: TCP}]\n      serverNames: ["a b.com"]')).toEqual([
      'spec.egress[0].toPorts[0].serverNames[0]: invalid serverName "a b.com": must match ^([-a-zA-Z0-9_*]+[.]?)+$',
    ]);
    expect(problems('ports: [{port: "443", protocol: TCP}]\n      serverNames: ["a..com"]')[0]).toMatch(/must match/);
    expect(problems('ports: [{port: "443", protocol: TCP}]\n      serverNames: [42]')[0]).toMatch(/serverNames\[0\]/);
  });

  it('rejects runs of wildcards other than a whole leading ** label (cilium/proxy #1748)', () => {
    expect(validateServerName('***.a.com')).toMatch(/consecutive wildcards/);
    expect(validateServerName('**a.com')).toMatch(/consecutive wildcards/);
    expect(validateServerName('a.**.com')).toMatch(/may only be the first label/);
    expect(validateServerName('**.a.com')).toBeNull();
  });

  it('rejects serverNames with L7 rules without TLS termination (Cilium PortRule.sanitize)', () => {
    expect(problems('ports: [{port: "443", protocol: TCP}]\n      serverNames: ["a.com"]\n      rules: {http: [{method: GET}]}')).toEqual([
      'spec.egress[0].toPorts[0].serverNames: ServerNames are not allowed with L7 rules without TLS termination',
    ]);
  });

  it('terminatingTLS and originatingTLS stay refused, naming the field', () => {
    const p = problems(
      'ports: [{port: "443", protocol: TCP}]\n      serverNames: ["a.com"]\n      terminatingTLS: {secret: {name: s}}\n      originatingTLS: {secret: {name: c}}\n      rules: {http: [{}]}',
    );
    expect(p).toEqual([
      'spec.egress[0].toPorts[0].terminatingTLS: terminatingTLS (TLS interception) is not supported by Membrane',
      'spec.egress[0].toPorts[0].originatingTLS: originatingTLS (TLS interception) is not supported by Membrane',
    ]);
  });

  it('resolves into a tls redirect of the port for the selected peers', () => {
    const r = loadPolicyText(policy('ports: [{port: "443", protocol: TCP}]\n      serverNames: ["api.github.com", "*.github.com"]'), 'sni.yaml');
    expect(r.problems).toEqual([]);
    const pol = resolveEndpointPolicy({
      policies: r.policies,
      endpoint: { labels: endpointLabels({ namespace: 'default', podLabels: { app: 'mediabot' } }) },
      identities: [],
    });
    const e = pol.egress.entries.find((x) => x.port === 443);
    expect(e).toMatchObject({ verdict: 'redirect', protocol: 6, l7: { kind: 'tls', serverNames: ['api.github.com', '*.github.com'], allowAll: false } });
  });
});

describe('issue-8 serverNameMatches', () => {
  it('matches case-insensitively, trailing dot optional, wildcards within one label', () => {
    expect(serverNameMatches('api.github.com', 'API.GITHUB.COM')).toBe(true);
    expect(serverNameMatches('api.github.com.', 'api.github.com')).toBe(true);
    expect(serverNameMatches('*.github.com', 'a.b.github.com')).toBe(false);
    expect(serverNameMatches('**.github.com', 'a.b.github.com')).toBe(true);
    expect(serverNameMatches('*', 'anything.at.all')).toBe(true);
  });

  it('a host_name that is no DNS name, or too long, matches nothing', () => {
    expect(serverNameMatches('*', 'a\u0000b')).toBe(false);
    expect(serverNameMatches('*', 'bad name')).toBe(false);
    expect(serverNameMatches('*', `${'a'.repeat(63)}.`.repeat(5))).toBe(false);
    expect(serverNameMatches('*', '')).toBe(false);
  });
});
