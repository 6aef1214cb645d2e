/**
 * Audit: validation (accept/reject) against Cilium v1.19's own rules.
 *
 * Sources (cilium/cilium): pkg/policy/api/rule_validation.go (Rule.Validate, IngressCommonRule /
 * EgressCommonRule.Validate, PortRule.Validate, PortProtocol.Validate, CIDRRule.Validate,
 * L7Rules.Validate, ICMPRule.Validate), pkg/policy/api/rule_validation_test.go,
 * pkg/policy/api/cidr_test.go, pkg/policy/api/entity.go. Expectations are restated in our words.
 */
import { describe, expect, it } from 'vitest';
import { loadPolicyText } from '../../../src/policy/index.js';
import { cnp, from, ports, spec, to } from './builders.js';

const subject = () => spec().withEndpointSelector({ app: 'server' });

function messages(b: { load(): ReturnType<typeof loadPolicyText> }): string[] {
  return b.load().problems.map((p) => `${p.path}: ${p.message}`);
}
function ok(b: { load(): ReturnType<typeof loadPolicyText> }): boolean {
  return b.load().problems.length === 0;
}

describe('audit: rule sections', () => {
  // rule_validation.go Rule.Validate: a rule whose four sections are all empty lists is rejected
  // ("rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny"); policies in the
  // wild that wrote `ingress: []` for default deny are reported VALID=False by Cilium.
  it('rejects a rule whose only section is an empty list', () => {
    expect(messages(cnp('x').withSpec(subject().withField('ingress', [])))).toEqual(['spec: rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny']);
    expect(messages(cnp('x').withSpec(subject().withField('ingress', []).withField('egressDeny', [])))).toEqual([
      'spec: rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny',
    ]);
  });

  // Same function: one non-empty section is enough; `ingress: [{}]` is the documented default-deny form
  // (Documentation/security/policy/language.rst, "Ingress/Egress Default Deny").
  it('accepts ingress: [{}] and an empty list next to a non-empty section', () => {
    expect(ok(cnp('x').withSpec(subject().withIngress(from())))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withField('ingress', []).withEgress(to())))).toBe(true);
  });
});

describe('audit: L3 member combinations', () => {
  // IngressCommonRule.Validate: any two non-empty L3 members in one rule are rejected, including
  // fromEndpoints + fromEntities.
  it('rejects fromEndpoints together with fromEntities', () => {
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withEndpoints({ a: 'b' }).withEntities('world'))))).toBe(false);
  });

  // EgressRule.Validate / l3DependentL4Support: ToServices, ToCIDR, ToCIDRSet, ToEndpoints,
  // ToEntities and ToFQDNs all support ToPorts.
  it('accepts every egress L3 member together with toPorts', () => {
    const p80 = () => ports().withPort('80', 'TCP');
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withService('svc', 'default').withPorts(p80()))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withCIDR('10.0.0.0/8').withPorts(p80()))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withEntities('world').withPorts(p80()))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withFQDN({ matchName: 'a.com' }).withPorts(p80()))))).toBe(true);
  });

  // EgressRule.l3Members counts ToFQDNs, so toFQDNs with toEndpoints is a rejected combination.
  it('rejects toFQDNs together with toEndpoints', () => {
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withFQDN({ matchName: 'a.com' }).withEndpoints({ a: 'b' }))))).toBe(false);
  });

  // IngressCommonRule.Validate only rejects a *non-empty* fromNodes list when the node-selector
  // option is off; an empty list is valid.
  it('accepts fromNodes: [] but rejects a non-empty fromNodes', () => {
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withField('fromNodes', []).withPorts(ports().withPort('80', 'TCP')))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withField('fromNodes', [{ matchLabels: { a: 'b' } }]))))).toBe(false);
  });

  // entity.go EntitySelectorMapping: the known names; anything else is "unsupported entity: X".
  it('knows exactly the documented entities', () => {
    for (const e of ['all', 'world', 'world-ipv4', 'world-ipv6', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'health', 'init', 'unmanaged', 'ingress', 'none']) {
      expect(ok(cnp('x').withSpec(subject().withIngress(from().withEntities(e)))), e).toBe(true);
    }
    expect(messages(cnp('x').withSpec(subject().withIngress(from().withEntities('nodes'))))).toEqual(['spec.ingress[0].fromEntities[0]: unsupported entity: nodes']);
  });
});

describe('audit: CIDR rules', () => {
  // CIDRRule.Validate: each except must lie inside the parent *and* be at least as long as it;
  // otherwise "allow CIDR prefix P does not contain exclude CIDR prefix E". An except equal to the
  // parent is accepted (cidr_test.go / rule_validation_test.go vectors).
  it('except must be contained in the parent and not shorter than it', () => {
    const set = (cidr: string, except: string[]) => cnp('x').withSpec(subject().withEgress(to().withCIDRSet(cidr, except)));
    expect(ok(set('10.0.0.0/8', ['10.96.0.0/12']))).toBe(true);
    expect(ok(set('10.0.0.0/8', ['10.0.0.0/8']))).toBe(true);
    expect(messages(set('10.0.0.0/24', ['10.0.0.0/8']))).toEqual([
      'spec.egress[0].toCIDRSet[0].except[0]: allow CIDR prefix 10.0.0.0/24 does not contain exclude CIDR prefix 10.0.0.0/8',
    ]);
    expect(ok(set('10.0.0.0/8', ['11.0.0.0/16']))).toBe(false);
    expect(ok(set('10.0.0.0/8', ['2001:db8::/64']))).toBe(false);
  });

  // CIDR.Validate accepts a bare address in fromCIDR/toCIDR; CIDRRule.Validate needs prefix notation.
  it('toCIDR takes a bare address, toCIDRSet.cidr does not', () => {
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withCIDR('10.1.2.3'))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withCIDRSet('10.1.2.3'))))).toBe(false);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withCIDR(''))))).toBe(false);
  });

  // CIDRRule.Validate: exactly one of cidr, cidrGroupRef, cidrGroupSelector.
  it('a CIDR rule without cidr is rejected', () => {
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withField('toCIDRSet', [{ except: ['10.0.0.0/8'] }]))))).toBe(false);
  });
});

describe('audit: ports and L7', () => {
  // PortRule.Validate: L7 rules other than DNS apply to TCP only; an unset protocol is not TCP.
  it('HTTP rules need protocol TCP', () => {
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'GET' })))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(ports().withPort('80', 'UDP').withHttp({ method: 'GET' })))))).toBe(false);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(ports().withPort('80').withHttp({ method: 'GET' })))))).toBe(false);
  });

  // PortRule.Validate: "L7 rules can not be used when a port is 0".
  it('L7 rules on port 0 are rejected', () => {
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(ports().withPort('0', 'TCP').withHttp({ method: 'GET' })))))).toBe(false);
  });

  // DNS rules: egress only, explicit port, UDP/TCP/ANY allowed, no port range
  // (PortRule.Validate, L7Rules.Validate, PortProtocol.Validate).
  it('DNS rules: egress only, port required, ANY allowed, no ranges', () => {
    const dns = (b: ReturnType<typeof ports>) => b.withDns({ matchPattern: '*' });
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withEntities('cluster').withPorts(dns(ports().withPort('53', 'ANY'))))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withEntities('cluster').withPorts(dns(ports().withPort('53', 'UDP'))))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(dns(ports().withPort('53', 'UDP'))))))).toBe(false);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withPorts(dns(ports())))))).toBe(false);
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withPorts(dns(ports().withPort('53', 'UDP', 54))))))).toBe(false);
  });

  // L7Rules.Validate: one L7 type per port rule.
  it('two L7 types in one port rule are rejected', () => {
    expect(ok(cnp('x').withSpec(subject().withEgress(to().withPorts(ports().withPort('53', 'TCP').withRules({ http: [{}], dns: [{ matchName: 'a.com' }] })))))).toBe(false);
  });

  // PortRule.Validate: at most 40 ports (maxPorts).
  it('more than 40 ports in one port rule are rejected', () => {
    const b = ports();
    for (let i = 1; i <= 41; i++) b.withPort(String(i), 'TCP');
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(b))))).toBe(false);
  });

  // PortProtocol.Validate: a port that is an IANA service name is a named port (so "0x10" is a
  // name, not 16); otherwise strconv.ParseUint(port, 0, 16) must succeed.
  it('port parsing: names, Go number syntax, range', () => {
    const one = (p: string) => cnp('x').withSpec(subject().withIngress(from().withPorts(ports().withPort(p, 'TCP'))));
    expect(ok(one('http'))).toBe(true);
    expect(ok(one('0x10'))).toBe(true);
    expect(ok(one('65535'))).toBe(true);
    expect(ok(one('65536'))).toBe(false);
    expect(ok(one('-1'))).toBe(false);
  });

  // ICMPs: not together with toPorts; family must be IPv4/IPv6/empty (ICMPRule.Validate).
  it('ICMP rules', () => {
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withIcmp({ type: 8 }))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withIcmp({ type: 'EchoRequest', family: 'IPv6' }))))).toBe(true);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withIcmp({ type: 8, family: 'IPv5' }))))).toBe(false);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withIcmp({ type: 8 }).withPorts(ports().withPort('80', 'TCP')))))).toBe(false);
  });

  // http.go Sanitize: path and method are Go regexes; a lone `*` does not compile.
  it('HTTP path/method must be valid regexes', () => {
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(ports().withPort('80', 'TCP').withHttp({ path: '*' })))))).toBe(false);
    expect(ok(cnp('x').withSpec(subject().withIngress(from().withPorts(ports().withPort('80', 'TCP').withHttp({ path: '/public/.*', method: 'GET|HEAD' })))))).toBe(true);
  });

  // Deny rules carry ports only (PortDenyRule): `rules` under ingressDeny.toPorts is not a field.
  it('deny port rules have no L7', () => {
    expect(ok(cnp('x').withSpec(subject().withIngressDeny(from().withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'GET' })))))).toBe(false);
  });
});
