/**
 * `membrane policy trace --policy FILE|DIR... --src LABELS --dst LABELS ...` as a real process.
 * Contract (issue 3, "Tools"): the source's egress policy and the destination's ingress policy
 * are both evaluated; the text output ends with `Final verdict: ALLOWED|DENIED`; `-o json`
 * prints `{verdict, redirect, dropReason, egress, ingress, matched: [{policy, namespace,
 * direction, rule}]}`; exit 0 = allowed, 1 = denied, 2 = bad input.
 *
 * Expected verdicts come from Cilium's documented semantics: the Star Wars demo, default deny per
 * direction, deny beats allow (POLICY_DENY 181 vs default-deny POLICY_DENIED 133), namespace
 * scoping of CiliumNetworkPolicy selectors, CIDR sets with except, L7 HTTP regexes that match
 * the full string, merged L7 rules, DNS matchPattern/matchName.
 * Fixtures: deploy/lab/starwars/*.yaml and test/fixtures/cli/trace/*.yaml.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, FIXTURES, json, membrane, removeTempDirs, STARWARS, tempDir, type CliResult } from './run-cli.js';

interface TraceJson {
  verdict: 'allowed' | 'denied';
  redirect: 'http' | 'dns' | null;
  dropReason: null | 'POLICY_DENIED' | 'POLICY_DENY';
  egress: Record<string, unknown>;
  ingress: Record<string, unknown>;
  matched: { policy: string; namespace: string | null; direction: 'ingress' | 'egress'; rule: number }[];
}

const L3L4 = join(STARWARS, 'sw_l3_l4_policy.yaml');
const L7 = join(STARWARS, 'sw_l3_l4_l7_policy.yaml');
const T = (f: string): string => join(FIXTURES, 'trace', f);

const TIEFIGHTER = ['--src', 'org=empire,class=tiefighter'];
const XWING = ['--src', 'org=alliance,class=xwing'];
const DEATHSTAR = ['--dst', 'org=empire,class=deathstar'];

function trace(policies: readonly string[], args: readonly string[]): CliResult {
  return membrane(['policy', 'trace', '--policy', ...policies, ...args]);
}

/** Runs the trace twice, as text and as JSON, and checks they agree with each other and the exit code. */
function traceBoth(policies: readonly string[], args: readonly string[]): { text: CliResult; j: TraceJson } {
  const text = trace(policies, args);
  const jr = trace(policies, [...args, '-o', 'json']);
  const j = json<TraceJson>(jr);
  const expected = j.verdict === 'allowed' ? 0 : 1;
  expect(text.status, `text exit status\n${text.stdout}${text.stderr}`).toBe(expected);
  expect(jr.status, 'json exit status').toBe(expected);
  expect(text.lines.at(-1)).toBe(`Final verdict: ${j.verdict === 'allowed' ? 'ALLOWED' : 'DENIED'}`);
  return { text, j };
}

function expectAllowed(policies: readonly string[], args: readonly string[]): TraceJson {
  const { j } = traceBoth(policies, args);
  expect(j, JSON.stringify(j, null, 1)).toMatchObject({ verdict: 'allowed', dropReason: null });
  return j;
}

function expectDenied(policies: readonly string[], args: readonly string[], dropReason?: 'POLICY_DENIED' | 'POLICY_DENY' | null): TraceJson {
  const { j } = traceBoth(policies, args);
  expect(j.verdict, JSON.stringify(j, null, 1)).toBe('denied');
  if (dropReason !== undefined) expect(j.dropReason).toBe(dropReason);
  return j;
}

/** Bad input: exit 2, a message on stderr, no verdict on stdout. */
function expectBadInput(args: readonly string[]): void {
  for (const extra of [[], ['-o', 'json']]) {
    const r = membrane(['policy', 'trace', ...args, ...extra]);
    expect(r.status, `membrane policy trace ${[...args, ...extra].join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(2);
    expect(r.stderr.trim()).not.toBe('');
    expect(r.stdout).not.toMatch(/Final verdict|"verdict"/);
  }
}

beforeAll(assertBuilt);
afterEach(removeTempDirs);

describe('membrane policy trace: Star Wars L3/L4', () => {
  it('tiefighter → deathstar TCP 80 is allowed by rule1 ingress, exit 0', () => {
    const r = trace([L3L4], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.lines.at(-1)).toBe('Final verdict: ALLOWED');
    const j = expectAllowed([L3L4], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80']);
    expect(j).toMatchObject({ verdict: 'allowed', redirect: null, dropReason: null });
    expect(j.matched).toEqual([{ policy: 'rule1', namespace: 'default', direction: 'ingress', rule: 0 }]);
  });

  it('xwing → deathstar TCP 80 is denied by default deny (POLICY_DENIED), exit 1', () => {
    const r = trace([L3L4], [...XWING, ...DEATHSTAR, '--dport', '80']);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.lines.at(-1)).toBe('Final verdict: DENIED');
    const j = expectDenied([L3L4], [...XWING, ...DEATHSTAR, '--dport', '80'], 'POLICY_DENIED');
    expect(j.redirect).toBeNull();
    expect(j.matched).toEqual([]);
  });

  it('the allowed port is TCP 80 only: TCP 443 and UDP 80 are denied', () => {
    expectDenied([L3L4], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '443'], 'POLICY_DENIED');
    expectDenied([L3L4], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80', '--proto', 'UDP'], 'POLICY_DENIED');
  });

  it('an unselected destination is not in default deny: xwing → tiefighter is allowed', () => {
    const j = expectAllowed([L3L4], [...XWING, '--dst', 'org=empire,class=tiefighter', '--dport', '80']);
    expect(j.matched).toEqual([]);
  });

  it('the deathstar policy is namespaced: a deathstar in another namespace is not selected', () => {
    expectAllowed([L3L4], [...XWING, ...DEATHSTAR, '--dst-namespace', 'other', '--dport', '80']);
  });

  it('--policy takes a directory (non-policy files ignored)', () => {
    const dir = tempDir('trace-dir');
    copyFileSync(L3L4, join(dir, 'rule1.yaml'));
    writeFileSync(join(dir, 'NOTES.txt'), 'not: a policy\n');
    expectAllowed([dir], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80']);
    expectDenied([dir], [...XWING, ...DEATHSTAR, '--dport', '80'], 'POLICY_DENIED');
  });
});

describe('membrane policy trace: Star Wars L7 (HTTP)', () => {
  const req = (method: string, path: string) => [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80', '--http-method', method, '--http-path', path];

  it('POST /v1/request-landing is allowed and redirected to the HTTP proxy', () => {
    const { text, j } = traceBoth([L7], req('POST', '/v1/request-landing'));
    expect(text.status).toBe(0);
    expect(j).toMatchObject({ verdict: 'allowed', redirect: 'http', dropReason: null });
    expect(j.matched).toEqual([{ policy: 'rule1', namespace: 'default', direction: 'ingress', rule: 0 }]);
  });

  it('PUT /v1/exhaust-port is denied by the proxy, exit 1', () => {
    const { text, j } = traceBoth([L7], req('PUT', '/v1/exhaust-port'));
    expect(text.status).toBe(1);
    expect(text.lines.at(-1)).toBe('Final verdict: DENIED');
    expect(j).toMatchObject({ verdict: 'denied', redirect: 'http' });
  });

  it('HTTP regexes match the whole method and path (Envoy full-match semantics)', () => {
    expectDenied([L7], req('GET', '/v1/request-landing'));
    expectDenied([L7], req('POST', '/v1/request-landing/extra'));
    expectDenied([L7], req('POST', '/prefix/v1/request-landing'));
  });

  it('xwing is dropped before the proxy: default deny at L3/L4 (POLICY_DENIED), no redirect', () => {
    const j = expectDenied([L7], [...XWING, ...DEATHSTAR, '--dport', '80', '--http-method', 'POST', '--http-path', '/v1/request-landing'], 'POLICY_DENIED');
    expect(j.redirect).toBeNull();
  });

  it('HTTP rules of two policies on the same port merge (a request passes if any rule matches)', () => {
    const p = [T('l7-merge.yaml')];
    const base = [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80'];
    const j = expectAllowed(p, [...base, '--http-method', 'GET', '--http-path', '/v1/status']);
    expect(j.redirect).toBe('http');
    expect(j.matched.map((m) => m.policy).sort()).toEqual(['deathstar-admin', 'deathstar-status']);
    expectAllowed(p, [...base, '--http-method', 'GET', '--http-path', '/admin/keys', '--http-header', 'X-Has-Force: yes']);
    expectDenied(p, [...base, '--http-method', 'DELETE', '--http-path', '/v1/status']);
  });

  it('header rules: exact value required; header names are case-insensitive', () => {
    const p = [T('l7-merge.yaml')];
    const base = [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80', '--http-method', 'GET', '--http-path', '/admin/keys'];
    expectDenied(p, base);
    expectDenied(p, [...base, '--http-header', 'X-Has-Force: no']);
    expectAllowed(p, [...base, '--http-header', 'x-has-force: yes']);
  });

  it('host rules: the host regex must match the whole host', () => {
    const p = [T('l7-merge.yaml')];
    const base = [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80', '--http-method', 'GET', '--http-path', '/v1/hosted'];
    expectAllowed(p, [...base, '--http-host', 'deathstar.empire.svc']);
    expectDenied(p, [...base, '--http-host', 'evil.deathstar.empire.svc']);
  });

  it('an L4-only rule for the same peer and port makes that port\'s HTTP rules moot', () => {
    expectAllowed([T('l4-overrides-l7.yaml')], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80', '--http-method', 'DELETE', '--http-path', '/v1/anything']);
  });
});

describe('membrane policy trace: deny rules', () => {
  const p = [T('deny.yaml')];

  it('ingressDeny beats an allow from another policy: POLICY_DENY', () => {
    const j = expectDenied(p, [...XWING, ...DEATHSTAR, '--dport', '80'], 'POLICY_DENY');
    expect(j.matched).toContainEqual({ policy: 'deny-xwing', namespace: 'default', direction: 'ingress', rule: 0 });
  });

  it('the same policies allow the tiefighter, and default deny still covers other ports (POLICY_DENIED)', () => {
    const j = expectAllowed(p, [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80']);
    expect(j.matched).toEqual([{ policy: 'deathstar-open-80', namespace: 'default', direction: 'ingress', rule: 0 }]);
    expectDenied(p, [...TIEFIGHTER, ...DEATHSTAR, '--dport', '81'], 'POLICY_DENIED');
  });

  it('a clusterwide egressDeny on the source: POLICY_DENY on egress, in any destination namespace', () => {
    const e = [T('egress-deny.yaml')];
    const j = expectDenied(e, [...XWING, ...DEATHSTAR, '--dport', '80'], 'POLICY_DENY');
    expect(j.matched.map((m) => [m.policy, m.direction, m.rule])).toEqual([['alliance-no-80', 'egress', 0]]);
    expectDenied(e, [...XWING, ...DEATHSTAR, '--dst-namespace', 'other', '--dport', '80'], 'POLICY_DENY');
    // A deny-only section still puts the direction in default deny: other ports are POLICY_DENIED.
    expectDenied(e, [...XWING, ...DEATHSTAR, '--dport', '443'], 'POLICY_DENIED');
  });

  it('-o json: a matched clusterwide policy still has a namespace key (null)', () => {
    const j = expectDenied([T('egress-deny.yaml')], [...XWING, ...DEATHSTAR, '--dport', '80'], 'POLICY_DENY');
    expect(j.matched).toHaveLength(1);
    expect(Object.keys(j.matched[0]!).sort(), JSON.stringify(j.matched[0])).toEqual(['direction', 'namespace', 'policy', 'rule']);
    expect(j.matched[0]!.namespace).toBeNull();
  });
});

describe('membrane policy trace: egress of the source and ingress of the destination', () => {
  const egress = T('egress.yaml');

  it('the source\'s egress policy alone decides when the destination has none', () => {
    const j = expectAllowed([egress], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '443']);
    expect(j.matched).toEqual([{ policy: 'tiefighter-egress', namespace: 'default', direction: 'egress', rule: 0 }]);
    expectDenied([egress], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80'], 'POLICY_DENIED');
    expectDenied([egress], [...TIEFIGHTER, '--dst', 'org=alliance,class=xwing', '--dport', '443'], 'POLICY_DENIED');
  });

  it('egress denies although ingress would allow (port 80)', () => {
    const j = expectDenied([egress, L3L4], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80'], 'POLICY_DENIED');
    expect(j.matched).toContainEqual({ policy: 'rule1', namespace: 'default', direction: 'ingress', rule: 0 });
    expect(j.matched.some((m) => m.direction === 'egress')).toBe(false);
  });

  it('ingress denies although egress allows (port 443)', () => {
    const j = expectDenied([egress, L3L4], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '443'], 'POLICY_DENIED');
    expect(j.matched).toEqual([{ policy: 'tiefighter-egress', namespace: 'default', direction: 'egress', rule: 0 }]);
  });

  it('several --policy paths combine, and both directions appear in matched when both allow', () => {
    const dir = tempDir('trace-both');
    writeFileSync(
      join(dir, 'deathstar-443.yaml'),
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: deathstar-443, namespace: default}\nspec:\n  endpointSelector: {matchLabels: {class: deathstar}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {org: empire}}]\n      toPorts: [{ports: [{port: "443", protocol: TCP}]}]\n',
    );
    const j = expectAllowed([egress, dir], [...TIEFIGHTER, ...DEATHSTAR, '--dport', '443']);
    expect(j.matched).toEqual(
      expect.arrayContaining([
        { policy: 'tiefighter-egress', namespace: 'default', direction: 'egress', rule: 0 },
        { policy: 'deathstar-443', namespace: 'default', direction: 'ingress', rule: 0 },
      ]),
    );
    expect(j.egress).toBeTypeOf('object');
    expect(j.ingress).toBeTypeOf('object');
  });
});

describe('membrane policy trace: namespaces', () => {
  const p = [T('namespaces.yaml')];
  const api = (ns: string) => ['--src', 'app=api', '--src-namespace', ns];
  const db = (ns: string) => ['--dst', 'app=db', '--dst-namespace', ns];

  it('same namespace as the policy: allowed', () => {
    const j = expectAllowed(p, [...api('prod'), ...db('prod'), '--dport', '5432']);
    expect(j.matched).toEqual([{ policy: 'db-ingress', namespace: 'prod', direction: 'ingress', rule: 0 }]);
  });

  it('a peer with the right labels in another namespace is not selected: denied', () => {
    expectDenied(p, [...api('dev'), ...db('prod'), '--dport', '5432'], 'POLICY_DENIED');
  });

  it('the policy does not select endpoints of other namespaces', () => {
    expectAllowed(p, [...api('dev'), ...db('dev'), '--dport', '5432']);
  });

  it('a selector naming k8s:io.kubernetes.pod.namespace reaches across namespaces, and only there', () => {
    const j = expectAllowed(p, ['--src', 'app=prometheus', '--src-namespace', 'monitoring', ...db('prod'), '--dport', '9187']);
    expect(j.matched).toEqual([{ policy: 'db-ingress', namespace: 'prod', direction: 'ingress', rule: 1 }]);
    expectDenied(p, ['--src', 'app=prometheus', '--src-namespace', 'prod', ...db('prod'), '--dport', '9187'], 'POLICY_DENIED');
  });
});

describe('membrane policy trace: namespace labels (NetworkPolicy namespaceSelector)', () => {
  const p = [T('knp-namespace-labels.yaml')];
  const toXA = ['--dst', 'pod=a', '--dst-namespace', 'x', '--dport', '80'];

  it('a namespace with the selected label is allowed', () => {
    expectAllowed(p, ['--src', 'pod=b', '--src-namespace', 'y', '--src-namespace-labels', 'team=blue', ...toXA]);
  });

  it('the same pod in a namespace without it is denied (default deny of the selected pod)', () => {
    expectDenied(p, ['--src', 'pod=b', '--src-namespace', 'y', ...toXA], 'POLICY_DENIED');
  });
});

describe('membrane policy trace: CIDR peers', () => {
  const p = [T('cidr.yaml')];
  const crawlerTo = (ip: string, port: string) => ['--src', 'role=crawler', '--dst-cidr', ip, '--dport', port];

  it('toCIDRSet allows inside the prefix', () => {
    const j = expectAllowed(p, crawlerTo('192.0.2.10', '443'));
    expect(j.matched).toEqual([{ policy: 'crawler-egress', namespace: 'default', direction: 'egress', rule: 0 }]);
  });

  it('except carves a hole, and addresses outside the prefix are denied', () => {
    expectDenied(p, crawlerTo('192.0.2.200', '443'), 'POLICY_DENIED');
    expectDenied(p, crawlerTo('198.51.100.1', '443'), 'POLICY_DENIED');
  });

  it('toEntities world matches any outside address', () => {
    expectAllowed(p, crawlerTo('8.8.8.8', '80'));
    expectAllowed(p, crawlerTo('192.0.2.200', '80'));
  });

  it('a CIDR rule does not match pods: crawler → web pod is denied', () => {
    expectDenied(p, ['--src', 'role=crawler', '--dst', 'app=web', '--dport', '443'], 'POLICY_DENIED');
  });

  it('fromCIDR on ingress with --src-cidr', () => {
    const src = (ip: string) => ['--src-cidr', ip, '--dst', 'app=web', '--dport', '8080'];
    expectAllowed(p, src('203.0.113.9'));
    expectDenied(p, src('198.51.100.9'), 'POLICY_DENIED');
    expectDenied(p, src('2001:db8::1'), 'POLICY_DENIED');
  });
});

describe('membrane policy trace: DNS rules', () => {
  const p = [T('dns.yaml')];
  const q = (name: string, proto = 'UDP', dnsNamespace = 'kube-system') => [
    '--src', 'app=web',
    '--dst', 'k8s-app=kube-dns', '--dst-namespace', dnsNamespace,
    '--dport', '53', '--proto', proto, '--dns-name', name,
  ];

  it('a name matching matchPattern "*.cilium.io" is allowed via the DNS proxy', () => {
    const j = expectAllowed(p, q('docs.cilium.io'));
    expect(j.redirect).toBe('dns');
    expect(j.matched).toEqual([{ policy: 'web-dns', namespace: 'default', direction: 'egress', rule: 0 }]);
  });

  it('"*" stays within one label: cilium.io and a.b.cilium.io are refused', () => {
    expect(expectDenied(p, q('cilium.io')).redirect).toBe('dns');
    expectDenied(p, q('a.b.cilium.io'));
  });

  it('matchName is case-insensitive and ignores a trailing dot', () => {
    expectAllowed(p, q('API.GitHub.com.'));
    expectAllowed(p, q('api.github.com'));
  });

  it('other names are refused', () => {
    expectDenied(p, q('evil.example'));
    expectDenied(p, q('github.com'));
  });

  it('the rule covers UDP 53 to kube-dns only: TCP, and a kube-dns outside kube-system, are dropped at L4', () => {
    expectDenied(p, q('docs.cilium.io', 'TCP'), 'POLICY_DENIED');
    expectDenied(p, q('docs.cilium.io', 'UDP', 'default'), 'POLICY_DENIED');
  });
});

describe('membrane policy trace: -o json shape', () => {
  it('has exactly {verdict, redirect, dropReason, egress, ingress, matched}', () => {
    for (const args of [
      [...TIEFIGHTER, ...DEATHSTAR, '--dport', '80'],
      [...XWING, ...DEATHSTAR, '--dport', '80'],
    ]) {
      const r = trace([L7], [...args, '-o', 'json']);
      const j = json<Record<string, unknown>>(r);
      expect(Object.keys(j).sort()).toEqual(['dropReason', 'egress', 'ingress', 'matched', 'redirect', 'verdict']);
      expect(['allowed', 'denied']).toContain(j.verdict);
      expect([null, 'http', 'dns']).toContain(j.redirect);
      expect([null, 'POLICY_DENIED', 'POLICY_DENY']).toContain(j.dropReason);
      expect(j.egress).toBeTypeOf('object');
      expect(j.egress).not.toBeNull();
      expect(j.ingress).toBeTypeOf('object');
      expect(j.ingress).not.toBeNull();
      expect(Array.isArray(j.matched)).toBe(true);
      for (const m of j.matched as Record<string, unknown>[]) {
        expect(Object.keys(m).sort()).toEqual(['direction', 'namespace', 'policy', 'rule']);
        expect(['ingress', 'egress']).toContain(m.direction);
        expect(m.rule).toBeTypeOf('number');
      }
    }
  });

  it('the text output explains both directions before the verdict', () => {
    const r = trace([L3L4], [...XWING, ...DEATHSTAR, '--dport', '80']);
    expect(r.lines.length).toBeGreaterThan(2);
    expect(r.stdout).toMatch(/egress/i);
    expect(r.stdout).toMatch(/ingress/i);
    expect(r.stdout).toContain('rule1');
  });
});

describe('membrane policy trace: bad input exits 2', () => {
  const ok = ['--policy', L3L4, ...TIEFIGHTER, ...DEATHSTAR];
  it('malformed labels', () => {
    expectBadInput(['--policy', L3L4, '--src', 'k8ss:org=empire', ...DEATHSTAR, '--dport', '80']);
    expectBadInput(['--policy', L3L4, ...TIEFIGHTER, '--dst', '=empire', '--dport', '80']);
    expectBadInput(['--policy', L3L4, ...TIEFIGHTER, '--dst', 'org=empire,org=alliance', '--dport', '80']);
  });

  it('bad ports', () => {
    for (const port of ['70000', '-1', 'http', '80.5']) expectBadInput([...ok, '--dport', port]);
  });

  it('an empty --dport is not port 0', () => {
    expectBadInput([...ok, '--dport', '']);
  });

  it('an unknown protocol', () => {
    expectBadInput([...ok, '--dport', '80', '--proto', 'QUIC']);
  });

  it('malformed CIDRs', () => {
    expectBadInput(['--policy', L3L4, ...TIEFIGHTER, '--dport', '80', '--dst-cidr', '10.0.0.300']);
    expectBadInput(['--policy', L3L4, '--src-cidr', 'not-an-ip', ...DEATHSTAR, '--dport', '80']);
    expectBadInput(['--policy', L3L4, ...TIEFIGHTER, '--dport', '80', '--dst-cidr', '10.0.0.0/33']);
  });

  it('a malformed header', () => {
    expectBadInput(['--policy', L7, ...TIEFIGHTER, ...DEATHSTAR, '--dport', '80', '--http-method', 'GET', '--http-path', '/', '--http-header', 'no-colon']);
  });

  it('a broken policy file: exit 2 and the problem line on stderr', () => {
    const broken = join(FIXTURES, 'broken', 'bad-port.yaml');
    const r = membrane(['policy', 'trace', '--policy', broken, ...TIEFIGHTER, ...DEATHSTAR, '--dport', '80']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${broken}: bad-port: spec.ingress[0].toPorts[0].ports[0].port: `);
    expect(r.stdout).not.toContain('Final verdict');
  });

  it('a broken file among good ones in a directory', () => {
    const dir = tempDir('trace-broken');
    copyFileSync(L3L4, join(dir, 'a-good.yaml'));
    copyFileSync(join(FIXTURES, 'broken', 'unknown-entity.yaml'), join(dir, 'b-broken.yaml'));
    expectBadInput(['--policy', dir, ...TIEFIGHTER, ...DEATHSTAR, '--dport', '80']);
  });

  it('a policy path that does not exist', () => {
    expectBadInput(['--policy', join(FIXTURES, 'trace', 'no-such-file.yaml'), ...TIEFIGHTER, ...DEATHSTAR, '--dport', '80']);
  });

  it('a missing required --src', () => {
    expectBadInput(['--policy', L3L4, ...DEATHSTAR, '--dport', '80']);
  });

  it('an unknown option', () => {
    expectBadInput([...ok, '--dport', '80', '--dst-port', '80']);
  });
});

describe('issue-7: policy trace never answers ALLOWED for a flow the policy denies', () => {
  const SA = T('service-account.yaml');
  const XC = T('cross-cluster.yaml');
  const NP = T('named-port.yaml');
  const HOST = T('host.yaml');

  it('issue-7 label sources: k8s:org=alliance,k8s:class=xwing → deathstar TCP 80 is denied by rule1 (exit 1)', () => {
    const args = ['--src', 'k8s:org=alliance,k8s:class=xwing', '--dst', 'k8s:org=empire,k8s:class=deathstar', '--dport', '80'];
    const j = expectDenied([L3L4], args, 'POLICY_DENIED');
    expect(j.ingress).toMatchObject({ evaluated: true, enforced: true, verdict: 'default-deny' });
    const text = trace([L3L4], args);
    expect(text.stdout).toContain('source identity 256: k8s:class=xwing ');
    expect(text.stdout).not.toContain('k8s:k8s:');
    expect(text.stdout).toContain('selected by CiliumNetworkPolicy default/rule1; default deny');
    expectAllowed([L3L4], ['--src', 'k8s:org=empire,k8s:class=tiefighter', '--dst', 'k8s:org=empire,k8s:class=deathstar', '--dport', '80']);
  });

  it('issue-7 label sources: an unknown source is bad input and says which label', () => {
    const r = trace([L3L4], ['--src', 'k8:org=empire', ...DEATHSTAR, '--dport', '80']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--src: k8:org=empire: unknown label source "k8"');
  });

  it('issue-7 service account label: vader → leia is denied, luke → leia allowed', () => {
    const vader = ['--src', 'io.cilium.k8s.policy.serviceaccount=vader', '--dst', 'io.cilium.k8s.policy.serviceaccount=leia', '--dport', '80'];
    expectDenied([SA], vader, 'POLICY_DENIED');
    expect(trace([SA], vader).stdout).toContain('k8s:io.cilium.k8s.policy.serviceaccount=vader');
    expectAllowed([SA], ['--src', 'k8s:io.cilium.k8s.policy.serviceaccount=luke', '--dst', 'io.cilium.k8s.policy.serviceaccount=leia', '--dport', '80']);
  });

  it('issue-7 cluster label: x-wing in cluster1 → rebel-base in cluster3 is denied on egress, cluster2 allowed', () => {
    const src = ['--src', 'name=x-wing,io.cilium.k8s.policy.cluster=cluster1'];
    const j = expectDenied([XC], [...src, '--dst', 'name=rebel-base,io.cilium.k8s.policy.cluster=cluster3', '--dport', '80'], 'POLICY_DENIED');
    expect(j.egress).toMatchObject({ verdict: 'default-deny' });
    expectAllowed([XC], [...src, '--dst', 'name=rebel-base,io.cilium.k8s.policy.cluster=cluster2', '--dport', '80']);
  });

  it('issue-7 a flag and a label that disagree: exit 2 naming both', () => {
    const r = trace([L3L4], ['--src', 'org=empire,io.kubernetes.pod.namespace=foo', '--src-namespace', 'bar', ...DEATHSTAR, '--dport', '80']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('Error: --src-namespace: the namespace bar disagrees with the label io.kubernetes.pod.namespace=foo');
    const l = trace([L3L4], [...TIEFIGHTER, '--dst', 'org=empire,class=deathstar,io.cilium.k8s.namespace.labels.team=a', '--dst-namespace-labels', 'team=b', '--dport', '80']);
    expect(l.status).toBe(2);
    expect(l.stderr).toContain('--dst-namespace-labels: the namespace label team=b disagrees with the label io.cilium.k8s.namespace.labels.team=a');
    // Agreeing flag and label are fine, and the label alone places the pod.
    expectDenied([L3L4], [...XWING, '--dst', 'org=empire,class=deathstar,io.kubernetes.pod.namespace=default', '--dst-namespace', 'default', '--dport', '80']);
    expectAllowed([L3L4], [...XWING, '--dst', 'org=empire,class=deathstar,io.kubernetes.pod.namespace=other', '--dport', '80']);
  });

  it('issue-7 named ports: --dst-named-port resolves ingress named ports (allow) and egress ones (deny)', () => {
    const args = ['--src', 'kind=client', '--dst', 'kind=echo', '--dst-named-port', 'http-8080=8080', '--dst-named-port', 'dns-53=53/UDP'];
    expect(expectAllowed([NP], [...args, '--dport', '8080']).ingress).toMatchObject({ verdict: 'allow' });
    expectDenied([NP], [...args, '--dport', '8081'], 'POLICY_DENIED');
    expect(expectDenied([NP], [...args, '--dport', '53', '--proto', 'UDP'], 'POLICY_DENY').egress).toMatchObject({ verdict: 'deny' });
    // Without them the rule matches nothing, and the output says why.
    const blind = trace([NP], ['--src', 'kind=client', '--dst', 'kind=echo', '--dport', '8080']);
    expect(blind.status).toBe(1);
    expect(blind.stdout).toContain("note: named port http-8080 (CiliumNetworkPolicy default/echo-named-port ingress[0]) is not among the destination's named ports");
    for (const bad of ['http', 'HTTP=80', 'http=99999', 'http=80/ICMP']) expectBadInput(['--policy', NP, '--src', 'kind=client', '--dst', 'kind=echo', '--dst-named-port', bad, '--dport', '80']);
  });

  it('issue-7 entities: the node (reserved:host, --dst-entity host) and remote nodes', () => {
    const echo = ['--dst', 'kind=echo', '--dport', '8080'];
    const j = expectAllowed([HOST], ['--src', 'reserved:host', ...echo]);
    expect(j.ingress).toMatchObject({ verdict: 'allow', peerIdentity: 1 });
    expect(expectDenied([HOST], ['--src-entity', 'remote-node', ...echo], 'POLICY_DENIED').egress).toMatchObject({ evaluated: false });
    // Host policies apply to the node itself: only TCP 22 from the world.
    const toHost = expectDenied([HOST], ['--src-entity', 'world', '--dst-entity', 'host', '--dport', '80'], 'POLICY_DENIED');
    expect(toHost.ingress).toMatchObject({ evaluated: true, enforced: true, verdict: 'default-deny' });
    expectAllowed([HOST], ['--src-cidr', '192.0.2.1', '--dst', 'reserved:host', '--dport', '22']);
    expect(trace([HOST], ['--src-entity', 'world', '--dst', 'reserved:host', '--dport', '22']).stdout).toContain('host policies CiliumClusterwideNetworkPolicy node-ssh-only');
  });

  it('issue-7 entities: a group, an unknown name or an entity with pod labels is bad input', () => {
    for (const src of [['--src', 'reserved:cluster'], ['--src-entity', 'all'], ['--src', 'reserved:nope'], ['--src', 'reserved:host,org=empire'], ['--src-entity', 'host', '--src-namespace', 'default']]) {
      expectBadInput(['--policy', HOST, ...src, '--dst', 'kind=echo', '--dport', '8080']);
    }
  });

  it('issue-7 --dst is not required with --dst-cidr, nor --src with --src-cidr; labels and a CIDR together are bad input', () => {
    const cidr = T('cidr.yaml');
    expectAllowed([cidr], ['--src', 'role=crawler', '--dst-cidr', '192.0.2.10', '--dport', '443']);
    expectDenied([cidr], ['--src', 'role=crawler', '--dst-cidr', '192.0.2.200', '--dport', '443'], 'POLICY_DENIED');
    // The conformance runner's form: an empty --dst beside --dst-cidr.
    expectAllowed([cidr], ['--src', 'role=crawler', '--dst', '', '--dst-cidr', '192.0.2.10', '--dport', '443']);
    const b = trace([L3L4], ['--src-cidr', '192.0.2.1', ...DEATHSTAR, '--dport', '80']);
    expect(b.status).toBe(1);
    expectBadInput(['--policy', L3L4, '--src', 'org=alliance', '--src-cidr', '192.0.2.1', ...DEATHSTAR, '--dport', '80']);
    expectBadInput(['--policy', L3L4, ...TIEFIGHTER, '--dport', '80']);
  });
});
