import { describe, expect, it } from 'vitest';
import { formatProblem, loadPolicyText, validatePolicyText } from '../../../src/policy/index.js';
import { ccnp, cnp, from, ports, spec, to, yamlOf } from './builders.js';

const deathstar = () => spec().withEndpointSelector({ class: 'deathstar' });
/** The smallest valid rule: the CRD wants at least one direction section. */
// `egress: [{}]`: Cilium's Rule.Validate rejects a rule whose sections are all empty lists.
const minimal = () => deathstar().withEgress(to());

function problems(b: { load(): ReturnType<typeof loadPolicyText> }): { path: string; message: string }[] {
  return b.load().problems.map((p) => ({ path: p.path, message: p.message }));
}

describe('loadPolicyText: accepted policies', () => {
  it('accepts multi-document YAML and keeps file, name and namespace', () => {
    const text = yamlOf(
      cnp('a').withNamespace('ns1').withSpec(deathstar().withIngress(from().withEndpoints({ org: 'empire' }))).build(),
      ccnp('b').withSpec(deathstar().withEgress(to().withEntities('world'))).build(),
    );
    const r = loadPolicyText(text, 'dir/p.yaml');
    expect(r.problems).toEqual([]);
    expect(r.policies.map((p) => [p.kind, p.name, p.namespace, p.file])).toEqual([
      ['CiliumNetworkPolicy', 'a', 'ns1', 'dir/p.yaml'],
      ['CiliumClusterwideNetworkPolicy', 'b', undefined, 'dir/p.yaml'],
    ]);
  });

  it('uses defaultNamespace for namespaced kinds without metadata.namespace', () => {
    const text = cnp('a').withSpec(minimal()).yaml();
    expect(loadPolicyText(text, 'f').policies[0]!.namespace).toBe('default');
    expect(loadPolicyText(text, 'f', { defaultNamespace: 'prod' }).policies[0]!.namespace).toBe('prod');
  });

  it('accepts spec and specs together, and an empty file', () => {
    const r = cnp('a').withSpec(minimal()).withSpecs(minimal(), minimal()).load();
    expect(r.problems).toEqual([]);
    expect(r.policies[0]!.rules.map((x) => x.specIndex)).toEqual([0, 1, 2]);
    expect(loadPolicyText('', 'empty.yaml')).toEqual({ policies: [], problems: [], warnings: [] });
    expect(loadPolicyText('---\n---\n', 'empty.yaml')).toEqual({ policies: [], problems: [], warnings: [] });
  });

  it('accepts named ports, ranges, ANY, ICMP fields, entities, CIDR sets, FQDNs, DNS rules, HTTP headers', () => {
    const b = cnp('ok').withSpec(
      deathstar()
        .withIngress(from().withEndpoints({}).withPorts(ports().withPort('http-alt').withPort('8000', 'TCP', 8080).withPort('53', 'ANY')))
        .withIngress(from().withEntities('world', 'cluster', 'host', 'remote-node', 'kube-apiserver', 'health', 'init', 'unmanaged', 'ingress', 'none', 'all', 'world-ipv4', 'world-ipv6'))
        .withIngress(from().withIcmp({ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }))
        .withIngress(from().withCIDRSet('10.0.0.0/8', ['10.96.0.0/12']).withPorts(ports().withPort('443', 'TCP')))
        .withIngress(from().withCIDR('192.168.1.1', '2001:db8::/32'))
        .withEgress(to().withFQDN({ matchName: 'api.github.com' }).withFQDN({ matchPattern: '**.github.com' }).withPorts(ports().withPort('443', 'TCP')))
        .withEgress(to().withEndpoints({ 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' }).withPorts(ports().withPort('53', 'ANY').withDns({ matchPattern: '*' })))
        .withEgress(
          to().withEndpoints({ app: 'api' }).withPorts(
            ports()
              .withPort('80', 'TCP')
              .withHttp({ method: 'GET', path: '/public/.*', host: '.*\\.example\\.com', headers: ['X-Token: 42', 'X-Present'] }, { headerMatches: [{ name: 'X-A', value: 'b' }, { name: 'X-C', mismatch: 'REPLACE', value: 'd' }] }),
          ),
        ),
    );
    expect(problems(b)).toEqual([]);
  });
});

describe('loadPolicyText: rejected policies name the file, policy and field', () => {
  it('missing metadata.name', () => {
    const r = cnp().withSpec(minimal()).load('bad.yaml');
    expect(r.policies).toEqual([]);
    expect(r.problems).toEqual([{ file: 'bad.yaml', name: '<unnamed>', path: 'metadata.name', message: 'required field is missing' }]);
    expect(formatProblem(r.problems[0]!)).toBe('bad.yaml: <unnamed>: metadata.name: required field is missing');
  });

  it('unknown fields at every level, as the CRD schema would', () => {
    const b = cnp('x')
      .withTop('extra', 1)
      .withSpec(
        deathstar()
          .withField('ingres', [])
          .withIngress(from().withField('fromEndpoint', []).withPorts(ports().withPort('80', 'TCP').withField('rule', {})))
          .withEgress(to().withPorts(ports().withPort('80', 'TCP').withHttp({ methods: 'GET' }))),
      );
    expect(problems(b)).toEqual([
      { path: 'extra', message: 'unknown field "extra"' },
      { path: 'spec.ingres', message: 'unknown field "ingres"' },
      { path: 'spec.ingress[0].fromEndpoint', message: 'unknown field "fromEndpoint"' },
      { path: 'spec.ingress[0].toPorts[0].rule', message: 'unknown field "rule"' },
      { path: 'spec.egress[0].toPorts[0].rules.http[0].methods', message: 'unknown field "methods"' },
    ]);
  });

  it('bad regex in method and path', () => {
    const b = cnp('x').withSpec(deathstar().withIngress(from().withPorts(ports().withPort('80', 'TCP').withHttp({ method: '*' }, { path: '/a(' }))));
    const ps = problems(b);
    expect(ps.map((p) => p.path)).toEqual(['spec.ingress[0].toPorts[0].rules.http[0].method', 'spec.ingress[0].toPorts[0].rules.http[1].path']);
    expect(ps[0]!.message).toMatch(/^invalid regex "\*": /);
  });

  it('rejects RE2-incompatible regexes (backreferences, look-ahead)', () => {
    const b = cnp('x').withSpec(deathstar().withIngress(from().withPorts(ports().withPort('80', 'TCP').withHttp({ path: '(a)\\1' }, { path: '/(?=x)' }))));
    expect(problems(b).map((p) => p.message)).toEqual([
      expect.stringContaining('invalid escape sequence: \\1'),
      expect.stringContaining('invalid perl operator: (?='),
    ]);
  });

  it('bad ports', () => {
    const b = cnp('x').withSpec(
      deathstar().withIngress(from().withPorts(ports().withPort('70000', 'TCP').withPort('', 'TCP').withPort('80', 'XTP').withPort('-bad-', 'TCP'))),
    );
    expect(problems(b)).toEqual([
      { path: 'spec.ingress[0].toPorts[0].ports[0].port', message: 'Unable to parse port: strconv.ParseUint: parsing "70000": value out of range' },
      { path: 'spec.ingress[0].toPorts[0].ports[1].port', message: 'Port must be specified' },
      { path: 'spec.ingress[0].toPorts[0].ports[2].protocol', message: 'unsupported value "XTP": must be one of TCP, UDP, SCTP, VRRP, IGMP, ANY' },
      { path: 'spec.ingress[0].toPorts[0].ports[3].port', message: 'Unable to parse port: strconv.ParseUint: parsing "-bad-": invalid syntax' },
    ]);
  });

  it('an unquoted port number is not a string, as the CRD requires', () => {
    const text = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p}
spec:
  endpointSelector: {}
  ingress:
  - toPorts:
    - ports:
      - port: 80
`;
    expect(loadPolicyText(text, 'f').problems.map((p) => p.path)).toEqual(['spec.ingress[0].toPorts[0].ports[0].port']);
  });

  it('rejects more than 40 ports in one toPorts entry', () => {
    const pr = ports();
    for (let i = 0; i < 41; i++) pr.withPort(String(1000 + i), 'TCP');
    expect(problems(cnp('x').withSpec(deathstar().withIngress(from().withPorts(pr))))).toEqual([
      { path: 'spec.ingress[0].toPorts[0].ports', message: 'too many ports, the max is 40' },
    ]);
  });

  it('requires exactly one of endpointSelector and nodeSelector', () => {
    expect(problems(cnp('x').withSpec(spec().withIngress(from())))).toEqual([{ path: 'spec', message: 'rule must have one of EndpointSelector or NodeSelector' }]);
    expect(problems(cnp('x').withSpec(minimal().withField('nodeSelector', {})))).toEqual([
      { path: 'spec', message: 'rule cannot have both EndpointSelector and NodeSelector' },
    ]);
    expect(problems(cnp('x'))).toEqual([{ path: 'spec', message: 'Invalid CiliumNetworkPolicy spec(s): empty policy (spec or specs is required)' }]);
  });

  it('requires at least one direction section, as the CRD schema does', () => {
    expect(problems(cnp('x').withSpec(deathstar()))).toEqual([{ path: 'spec', message: 'must specify at least one of ingress, ingressDeny, egress or egressDeny' }]);
    expect(problems(cnp('x').withSpecs(minimal(), deathstar()))).toEqual([{ path: 'specs[1]', message: 'must specify at least one of ingress, ingressDeny, egress or egressDeny' }]);
  });

  it("rules need exactly one L7 type; a DNS rule may set both matchName and matchPattern, or neither (warned), as Cilium's PortRuleDNS", () => {
    const b = cnp('x').withSpec(
      deathstar()
        .withEgress(to().withPorts(ports().withPort('80', 'TCP').withRules({})))
        .withEgress(to().withPorts(ports().withPort('53', 'UDP').withDns({ matchName: 'a.com', matchPattern: '*.a.com' }, {}))),
    );
    expect(problems(b)).toEqual([{ path: 'spec.egress[0].toPorts[0].rules', message: 'must specify exactly one of http, kafka, dns or l7proto' }]);
    const dnsOnly = cnp('x').withSpec(deathstar().withEgress(to().withPorts(ports().withPort('53', 'UDP').withDns({ matchName: 'a.com', matchPattern: '*.a.com' }, {}))));
    expect(problems(dnsOnly)).toEqual([]);
    expect(dnsOnly.load().warnings.map((w) => ({ path: w.path, message: w.message }))).toEqual([
      { path: 'spec.egress[0].toPorts[0].rules.dns[1]', message: 'a DNS rule with neither matchName nor matchPattern allows no name: lookups it alone covers are refused' },
    ]);
  });

  it('VRRP and IGMP need no port', () => {
    const b = cnp('x').withSpec(deathstar().withIngress(from().withPorts(ports().withField('ports', [{ protocol: 'VRRP' }, { protocol: 'IGMP', port: '0' }]))));
    expect(problems(b)).toEqual([]);
  });

  it('rejects mixing peer kinds in one rule, as Cilium does', () => {
    expect(problems(cnp('x').withSpec(deathstar().withIngress(from().withEndpoints({ a: 'b' }).withCIDR('10.0.0.0/8'))))).toEqual([
      { path: 'spec.ingress[0]', message: 'Combining FromEndpoints and FromCIDR is not supported yet' },
    ]);
    expect(problems(cnp('x').withSpec(deathstar().withEgress(to().withFQDN({ matchName: 'a.com' }).withEntities('world'))))).toEqual([
      { path: 'spec.egress[0]', message: 'Combining ToEntities and ToFQDNs is not supported yet' },
    ]);
    // toServices + toPorts is accepted: every egress L3 member supports L4 (Cilium >= 1.17,
    // EgressCommonRule.l3DependentL4Support in pkg/policy/api/rule_validation.go).
    expect(problems(cnp('x').withSpec(deathstar().withEgress(to().withService('svc').withPorts(ports().withPort('80', 'TCP')))))).toEqual([]);
    expect(problems(cnp('x').withSpec(deathstar().withIngress(from().withIcmp({ type: 8 }).withPorts(ports().withPort('80')))))).toEqual([
      { path: 'spec.ingress[0]', message: 'The ICMPs block may only be present without ToPorts. Define a separate rule to use ToPorts.' },
    ]);
  });

  it('rejects fromRequires/toRequires (removed in 1.19)', () => {
    const b = cnp('x').withSpec(deathstar().withIngress(from().withField('fromRequires', [{ matchLabels: { env: 'prod' } }])));
    expect(problems(b)).toEqual([{ path: 'spec.ingress[0].fromRequires', message: 'Too many: 1: must have at most 0 items (fromRequires was removed in Cilium 1.19)' }]);
    const e = cnp('x').withSpec(deathstar().withEgressDeny(to().withField('toRequires', [{}])));
    expect(problems(e).map((p) => p.path)).toEqual(['spec.egressDeny[0].toRequires']);
  });

  it('rejects unknown entities and bad CIDRs', () => {
    const b = cnp('x').withSpec(
      deathstar()
        .withIngress(from().withEntities('everything'))
        .withIngress(from().withCIDR('10.0.0.0/33'))
        .withIngress(from().withCIDRSet('10.0.0.0/8', ['192.168.0.0/16']))
        .withIngress(from().withCIDRSet('10.0.0.1')),
    );
    expect(problems(b)).toEqual([
      { path: 'spec.ingress[0].fromEntities[0]', message: 'unsupported entity: everything' },
      { path: 'spec.ingress[1].fromCIDR[0]', message: 'unable to parse CIDR: "10.0.0.0/33"' },
      { path: 'spec.ingress[2].fromCIDRSet[0].except[0]', message: 'allow CIDR prefix 10.0.0.0/8 does not contain exclude CIDR prefix 192.168.0.0/16' },
      { path: 'spec.ingress[3].fromCIDRSet[0].cidr', message: 'Unable to parse CIDRRule "10.0.0.1": expected an address/prefix-length' },
    ]);
  });

  it('validates L7 rules as Cilium does', () => {
    const b = cnp('x').withSpec(
      deathstar()
        .withIngress(from().withPorts(ports().withPort('53', 'UDP').withDns({ matchPattern: '*' })))
        .withIngress(from().withPorts(ports().withPort('80', 'UDP').withHttp({})))
        .withIngress(from().withPorts(ports().withPort('0', 'TCP').withHttp({})))
        .withEgress(to().withPorts(ports().withDns({ matchName: 'a.com' })))
        .withEgress(to().withPorts(ports().withPort('53', 'UDP', 60).withDns({ matchName: 'a.com' })))
        .withEgress(to().withPorts(ports().withPort('80', 'TCP').withRules({ http: [{}], dns: [{ matchName: 'a' }] })))
        .withEgress(to().withPorts(ports().withPort('53', 'UDP').withDns({ matchPattern: 'a b' })))
        .withEgress(to().withFQDN({ matchName: 'a.com', matchPattern: '*.a.com' })),
    );
    expect(problems(b)).toEqual([
      { path: 'spec.ingress[0].toPorts[0].rules.dns', message: 'L7 protocol DNS is not supported on ingress yet' },
      { path: 'spec.ingress[1].toPorts[0].rules', message: 'L7 rules can only apply to TCP (not UDP) except for DNS rules' },
      { path: 'spec.ingress[2].toPorts[0].rules', message: 'L7 rules can not be used when a port is 0' },
      { path: 'spec.egress[0].toPorts[0].rules', message: 'Port 53 must be specified for DNS rules' },
      { path: 'spec.egress[1].toPorts[0].rules', message: 'DNS rules do not support port ranges' },
      { path: 'spec.egress[2].toPorts[0].rules', message: 'multiple L7 protocol rule types specified in single rule' },
      {
        path: 'spec.egress[3].toPorts[0].rules.dns[0].matchPattern',
        message: 'Invalid characters in MatchPattern: "a b". Only 0-9, a-z, A-Z and ., -, _ and * characters are allowed',
      },
      { path: 'spec.egress[4].toFQDNs[0]', message: 'only one of MatchName or MatchPattern is allowed in an FQDNSelector' },
    ]);
  });

  it('rejects matchName/matchPattern longer than 255 characters', () => {
    const long = `${'a'.repeat(250)}.example.com`;
    expect(problems(cnp('x').withSpec(deathstar().withEgress(to().withFQDN({ matchName: long })))).map((p) => p.message)).toEqual(['must be at most 255 characters']);
  });

  it('deny rules carry no L7 section', () => {
    const b = cnp('x').withSpec(deathstar().withIngressDeny(from().withPorts(ports().withPort('80', 'TCP').withHttp({ method: 'GET' }))));
    expect(problems(b)).toEqual([{ path: 'spec.ingressDeny[0].toPorts[0].rules', message: 'unknown field "rules"' }]);
  });

  it('selector problems', () => {
    const b = cnp('x').withSpec(
      spec()
        .withEndpointSelector({}, [{ key: 'a', operator: 'Has' }, { key: 'b', operator: 'In' }, { key: 'c', operator: 'Exists', values: ['x'] }])
        .withIngress(from().withEndpoints({ app: 'bad value!' })),
    );
    expect(problems(b)).toEqual([
      { path: 'spec.endpointSelector.matchExpressions[0].operator', message: 'unsupported operator "Has": must be one of In, NotIn, Exists, DoesNotExist' },
      { path: 'spec.endpointSelector.matchExpressions[1].values', message: 'must be non-empty for operator In' },
      { path: 'spec.endpointSelector.matchExpressions[2].values', message: 'must be empty for operator Exists' },
      {
        path: 'spec.ingress[0].fromEndpoints[0].matchLabels.app',
        message: 'invalid label value "bad value!": at most 63 characters of [A-Za-z0-9-_.], starting and ending with an alphanumeric',
      },
    ]);
  });

  it('reports YAML syntax errors and non-object documents', () => {
    expect(loadPolicyText('a: [1, 2', 'y.yaml').problems[0]).toMatchObject({ file: 'y.yaml', name: '<unnamed>', message: expect.stringMatching(/^invalid YAML/) });
    expect(loadPolicyText('- 1\n- 2\n', 'y.yaml').problems[0]!.message).toBe('a policy document must be an object, got a list');
    expect(loadPolicyText('a: 1\na: 2\n', 'y.yaml').problems[0]!.message).toMatch(/^invalid YAML/);
  });

  it('guards against alias expansion bombs', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 12; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`);
    const r = loadPolicyText(lines.join('\n'), 'bomb.yaml');
    expect(r.problems[0]!.message).toMatch(/^invalid YAML/);
  });

  it('a file with one bad document yields no policies at all, and every problem', () => {
    const text = yamlOf(cnp('good').withSpec(minimal()).build(), cnp('bad').withSpec(deathstar().withIngress(from().withEntities('nope'))).build());
    const r = loadPolicyText(text, 'mixed.yaml');
    expect(r.policies).toEqual([]);
    expect(r.problems.map(formatProblem)).toEqual(['mixed.yaml: bad: spec.ingress[0].fromEntities[0]: unsupported entity: nope']);
    const docs = validatePolicyText(text, 'mixed.yaml');
    expect(docs.map((d) => [d.name, d.valid])).toEqual([
      ['good', true],
      ['bad', false],
    ]);
  });

  it('rejects unknown kinds, wrong apiVersion, duplicates', () => {
    const text = yamlOf(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } },
      { ...cnp('p').withSpec(minimal()).build(), apiVersion: 'cilium.io/v1' },
      cnp('d').withSpec(minimal()).build(),
      cnp('d').withSpec(minimal()).build(),
    );
    expect(loadPolicyText(text, 'k.yaml').problems.map((p) => `${p.name}: ${p.path}`)).toEqual(['c: kind', 'p: apiVersion', 'd: metadata.name']);
  });

  it('reports unsupported-by-Membrane features explicitly', () => {
    const b = cnp('x').withSpec(deathstar().withEgress(to().withPorts(ports().withPort('443', 'TCP').withField('terminatingTLS', { secret: { name: 's' } }))));
    expect(problems(b)).toEqual([{ path: 'spec.egress[0].toPorts[0].terminatingTLS', message: 'terminatingTLS (TLS interception) is not supported by Membrane' }]);
  });
});
