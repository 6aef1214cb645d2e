/**
 * `membrane policy validate FILE|DIR... [-o json]` as a real process: exit 0 and a "valid" line
 * for good files; exit 1 and exactly one `FILE: <policy name>: <field path>: <message>` line per
 * problem otherwise; `-o json` prints `[{file, name, valid, errors: [{path, message}], warnings: [...]}]`.
 *
 * The accept/reject vectors follow Cilium v1.19's documented semantics (pkg/policy/api rule
 * validation, Documentation/security/policy, the CRD schema) and the Kubernetes NetworkPolicy API.
 * Fixtures: test/fixtures/cli/{valid,broken}/ and test/fixtures/cli/*.yaml.
 */
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, FIXTURES, json, membrane, re, removeTempDirs, REPO, STARWARS, tempDir } from './run-cli.js';

interface ValidationRecord {
  file: string;
  name: string;
  valid: boolean;
  errors: { path: string; message: string; line?: number; column?: number }[];
  warnings: { path: string; message: string }[];
}

const VALID = join(FIXTURES, 'valid');
const BROKEN = join(FIXTURES, 'broken');

/**
 * One problem per file in test/fixtures/cli/broken/. `path` must match the whole field path
 * (the field itself or the object that holds the offending combination); `message` is matched
 * case-insensitively somewhere in the message.
 */
const BROKEN_CASES: { file: string; name: string; path: RegExp; message: RegExp; why: string }[] = [
  {
    file: 'unknown-field.yaml',
    name: 'unknown-field',
    path: /^spec\.ingress\[0\]\.toPortz$/,
    message: /unknown field/i,
    why: 'the CRD schema is structural: unknown fields are rejected',
  },
  {
    file: 'bad-port.yaml',
    name: 'bad-port',
    path: /^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port$/,
    message: /65536/,
    why: 'a port is a 16-bit number (or an IANA service name)',
  },
  {
    file: 'dns-port-range.yaml',
    name: 'dns-port-range',
    path: /^spec\.egress\[0\]\.toPorts\[0\](\.ports\[0\](\.endPort)?|\.rules(\.dns)?)?$/,
    message: /DNS rules do not support port ranges/i,
    why: 'L7 rules support port ranges, except DNS rules',
  },
  {
    file: 'dns-on-ingress.yaml',
    name: 'dns-on-ingress',
    path: /^spec\.ingress\[0\](\.toPorts\[0\](\.rules(\.dns)?)?)?$/,
    message: /DNS.*(not (supported|allowed) on ingress)/i,
    why: 'DNS L7 rules are egress-only',
  },
  {
    file: 'dns-without-port.yaml',
    name: 'dns-without-port',
    path: /^spec\.egress\[0\]\.toPorts\[0\](\.rules(\.dns)?|\.ports)?$/,
    message: /port 53 must be specified/i,
    why: 'DNS rules need an explicit port',
  },
  {
    file: 'fqdn-name-and-pattern.yaml',
    name: 'fqdn-name-and-pattern',
    path: /^spec\.egress\[0\]\.toFQDNs\[0\]$/,
    message: /only one of matchName or matchPattern/i,
    why: 'an FQDNSelector takes one of matchName or matchPattern',
  },
  {
    file: 'from-requires.yaml',
    name: 'from-requires',
    path: /^spec\.ingress\[0\]\.fromRequires(\[0\])?$/,
    message: /fromRequires|at most 0 items/i,
    why: 'fromRequires was removed in Cilium 1.19 (MaxItems=0)',
  },
  {
    file: 'cidr-except-outside.yaml',
    name: 'cidr-except-outside',
    path: /^spec\.egress\[0\]\.toCIDRSet\[0\](\.except(\[0\])?)?$/,
    message: /does not contain exclude CIDR prefix 192\.168\.0\.0\/16/i,
    why: 'an except prefix must lie inside its cidr',
  },
  {
    file: 'bad-http-path-regex.yaml',
    name: 'bad-http-path-regex',
    path: /^spec\.ingress\[0\]\.toPorts\[0\]\.rules\.http\[0\]\.path$/,
    message: /regex|regexp|parenthes/i,
    why: 'HTTP path is an RE2 regex and must compile',
  },
  {
    file: 'l7-on-udp.yaml',
    name: 'l7-on-udp',
    path: /^spec\.ingress\[0\]\.toPorts\[0\](\.rules(\.http)?|\.ports\[0\](\.protocol)?)?$/,
    message: /L7 rules can only apply to TCP \(not UDP\)/i,
    why: 'non-DNS L7 rules are TCP-only',
  },
  {
    file: 'unknown-entity.yaml',
    name: 'unknown-entity',
    path: /^spec\.egress\[0\]\.toEntities(\[0\])?$/,
    message: /unsupported entity: internet/i,
    why: 'entities are a closed set',
  },
  {
    file: 'combined-peers.yaml',
    name: 'combined-peers',
    path: /^spec\.egress\[0\]$/,
    message: /combining (ToEndpoints and ToCIDR|ToCIDR and ToEndpoints) is not supported/i,
    why: 'one rule may not mix L3 peer kinds',
  },
];

/** `FILE: <policy name>: <field path>: <message>`, with the path and message checked. */
function expectProblemLine(line: string | undefined, file: string, name: string, path: RegExp, message: RegExp): void {
  expect(line, `expected a problem line for ${file}`).toBeDefined();
  const prefix = `${file}: ${name}: `;
  expect(line!.startsWith(prefix), `${JSON.stringify(line)} should start with ${JSON.stringify(prefix)}`).toBe(true);
  const rest = line!.slice(prefix.length);
  const sep = rest.indexOf(': ');
  expect(sep, `no "<field path>: <message>" in ${JSON.stringify(line)}`).toBeGreaterThan(0);
  expect(rest.slice(0, sep)).toMatch(path);
  expect(rest.slice(sep + 2)).toMatch(message);
}

beforeAll(assertBuilt);
afterEach(removeTempDirs);

describe('membrane policy validate: valid files', () => {
  const goodFiles = [
    join(STARWARS, 'sw_l3_l4_policy.yaml'),
    join(STARWARS, 'sw_l3_l4_l7_policy.yaml'),
    join(VALID, 'multi-document.yaml'),
    join(VALID, 'clusterwide.yaml'),
    join(VALID, 'networkpolicy.yaml'),
    join(VALID, 'l7-features.yaml'),
  ];

  it.each(goodFiles.map((f) => [relative(REPO, f), f]))(
    '%s: exit 0 and one "valid" line',
    (_label, file) => {
      const r = membrane(['policy', 'validate', file]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.lines).toHaveLength(1);
      expect(r.lines[0]).toMatch(new RegExp(`^${re(file)}: .*\\bvalid\\b`));
      expect(r.lines[0]).not.toMatch(/\binvalid\b/);
    },
  );

  it('several files and directories at once: one "valid" line per file, exit 0', () => {
    const r = membrane(['policy', 'validate', VALID, STARWARS]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const files = [...readdirSync(VALID).map((f) => join(VALID, f)), ...readdirSync(STARWARS).map((f) => join(STARWARS, f))];
    expect(r.lines).toHaveLength(files.length);
    for (const f of files) expect(r.lines.filter((l) => l.startsWith(`${f}: `) && /\bvalid\b/.test(l))).toHaveLength(1);
  });

  it('-o json: one record per policy of a multi-document file (CNP with specs, CCNP, NetworkPolicy)', () => {
    const file = join(VALID, 'multi-document.yaml');
    const r = membrane(['policy', 'validate', '-o', 'json', file]);
    expect(r.status, r.stderr).toBe(0);
    const out = json<ValidationRecord[]>(r);
    expect(out).toEqual([
      { file, name: 'api-specs', valid: true, errors: [], warnings: [] },
      { file, name: 'cluster-dns', valid: true, errors: [], warnings: [] },
      { file, name: 'db-from-api', valid: true, errors: [], warnings: [] },
    ]);
  });

  it('-o json: every record has exactly {file, name, valid, errors}', () => {
    const r = membrane(['policy', 'validate', '-o', 'json', VALID, STARWARS]);
    expect(r.status, r.stderr).toBe(0);
    const out = json<ValidationRecord[]>(r);
    expect(out.map((x) => x.name).sort()).toEqual(['api-specs', 'backend', 'cluster-dns', 'db-from-api', 'l7-features', 'monitoring-scrape', 'rule1', 'rule1', 'rule1', 'rule2']);
    for (const rec of out) {
      expect(Object.keys(rec).sort()).toEqual(['errors', 'file', 'name', 'valid', 'warnings']);
      expect(rec).toMatchObject({ valid: true, errors: [] });
      expect(typeof rec.file).toBe('string');
    }
  });
});

describe('membrane policy validate: broken files (one problem each)', () => {
  it.each(BROKEN_CASES.map((c) => [c.file, c.why, c] as const))('%s (%s): exit 1, exactly one problem line', (_f, _why, c) => {
    const file = join(BROKEN, c.file);
    const r = membrane(['policy', 'validate', file]);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.lines, r.stdout).toHaveLength(1);
    expectProblemLine(r.lines[0], file, c.name, c.path, c.message);
  });

  it('every broken fixture has a case here', () => {
    expect(readdirSync(BROKEN).sort()).toEqual(BROKEN_CASES.map((c) => c.file).sort());
  });

  it('a directory of broken files names every file, policy and field, one line each', () => {
    const r = membrane(['policy', 'validate', BROKEN]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.lines, r.stdout).toHaveLength(BROKEN_CASES.length);
    for (const c of BROKEN_CASES) {
      const file = join(BROKEN, c.file);
      const mine = r.lines.filter((l) => l.startsWith(`${file}: `));
      expect(mine, `lines for ${c.file}`).toHaveLength(1);
      expectProblemLine(mine[0], file, c.name, c.path, c.message);
    }
  });

  it('-o json on the directory: one invalid record per file with {path, message}', () => {
    const r = membrane(['policy', 'validate', '-o', 'json', BROKEN]);
    expect(r.status, r.stderr).toBe(1);
    const out = json<ValidationRecord[]>(r);
    expect(out).toHaveLength(BROKEN_CASES.length);
    for (const c of BROKEN_CASES) {
      const rec = out.find((x) => x.file === join(BROKEN, c.file));
      expect(rec, c.file).toBeDefined();
      expect(Object.keys(rec!).sort()).toEqual(['errors', 'file', 'name', 'valid', 'warnings']);
      expect(rec).toMatchObject({ name: c.name, valid: false });
      expect(rec!.errors).toHaveLength(1);
      expect(Object.keys(rec!.errors[0]!).sort()).toEqual(['message', 'path']);
      expect(rec!.errors[0]!.path).toMatch(c.path);
      expect(rec!.errors[0]!.message).toMatch(c.message);
    }
  });

  it('a path that does not exist is named, and the other paths are still checked', () => {
    const missing = join(FIXTURES, 'no-such-policy.yaml');
    const bad = join(BROKEN, 'bad-port.yaml');
    const r = membrane(['policy', 'validate', missing, bad]);
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain(missing);
    expect(r.lines.filter((l) => l.startsWith(`${bad}: bad-port: `)), `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toHaveLength(1);
  });

  it('good and broken files together: exit 1; the broken one is reported, the good one is not', () => {
    const good = join(VALID, 'clusterwide.yaml');
    const bad = join(BROKEN, 'bad-port.yaml');
    const r = membrane(['policy', 'validate', good, bad]);
    expect(r.status).toBe(1);
    expect(r.lines.filter((l) => l.startsWith(`${bad}: `))).toHaveLength(1);
    expect(r.lines.filter((l) => l.startsWith(`${good}: `) && !/\bvalid\b/.test(l))).toEqual([]);
    // stdout then holds exactly the problem lines; the file that passed is named on stderr.
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^${re(bad)}: `))]);
    expect(r.stderr).toContain(`${good}: valid`);
  });
});

describe('membrane policy validate: multi-document files with problems', () => {
  const file = join(FIXTURES, 'mixed-multi-document.yaml');

  it('one line per problem, each naming its own policy; the valid document has no problem line', () => {
    const r = membrane(['policy', 'validate', file]);
    expect(r.status).toBe(1);
    const problems = r.lines.filter((l) => !/: valid\b/.test(l));
    expect(problems, r.stdout).toHaveLength(3);
    expectProblemLine(problems[0], file, 'two-problems', /^spec\.ingress\[0\]\.fromEntities(\[0\])?$/, /unsupported entity: galaxy/);
    expectProblemLine(problems[1], file, 'two-problems', /^spec\.egress\[0\]\.toPorts\[0\]\.ports\[0\]\.port$/, /70000/);
    expectProblemLine(problems[2], file, 'one-problem', /^spec\.egress\[0\]\.toCIDRSet\[0\](\.except(\[0\])?)?$/, /does not contain exclude CIDR prefix 11\.0\.0\.0\/8/);
    expect(r.lines.some((l) => l.startsWith(`${file}: good-one: `))).toBe(false);
  });

  it('-o json: a record for every policy in the file, the valid one included', () => {
    const r = membrane(['policy', 'validate', '-o', 'json', file]);
    expect(r.status).toBe(1);
    const out = json<ValidationRecord[]>(r);
    const byName = Object.fromEntries(out.map((x) => [x.name, x]));
    expect(byName['two-problems']).toMatchObject({ file, valid: false });
    expect(byName['two-problems']!.errors.map((e) => e.path)).toEqual(['spec.ingress[0].fromEntities[0]', 'spec.egress[0].toPorts[0].ports[0].port']);
    expect(byName['one-problem']).toMatchObject({ file, valid: false });
    expect(byName['one-problem']!.errors).toHaveLength(1);
    // The contract is one record per policy: the valid document must not vanish.
    expect(byName['good-one'], `records: ${out.map((x) => x.name).join(', ')}`).toEqual({ file, name: 'good-one', valid: true, errors: [], warnings: [] });
    expect(out).toHaveLength(3);
  });

  it('a YAML syntax error is one problem line for the file, exit 1', () => {
    const bad = join(FIXTURES, 'syntax-error.yaml');
    const r = membrane(['policy', 'validate', bad]);
    expect(r.status).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(new RegExp(`^${re(bad)}:\\d+:\\d+: invalid YAML: `));
    const j = json<ValidationRecord[]>(membrane(['policy', 'validate', '-o', 'json', bad]));
    expect(j).toHaveLength(1);
    expect(j[0]).toMatchObject({ file: bad, valid: false });
    expect(j[0]!.errors).toHaveLength(1);
  });
});

/**
 * More accept/reject vectors from Cilium's rule validation, written as JSON policy files into a
 * temporary directory (JSON is YAML). Each reject has exactly one problem.
 */
describe('membrane policy validate: Cilium accept/reject table', () => {
  const cnp = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name, namespace: 'default' },
    spec: { endpointSelector: { matchLabels: { app: 'web' } }, ...spec },
  });
  const tcp = (port: string, extra: Record<string, unknown> = {}) => ({ ports: [{ port, protocol: 'TCP' }], ...extra });

  const ACCEPT: [string, Record<string, unknown>][] = [
    ['named port', { ingress: [{ toPorts: [{ ports: [{ port: 'http-alt' }] }] }] }],
    ['protocol ANY and SCTP', { ingress: [{ toPorts: [{ ports: [{ port: '5000', protocol: 'ANY' }, { port: '3868', protocol: 'SCTP' }] }] }] }],
    ['ICMP types by number and name', { egress: [{ icmps: [{ fields: [{ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }] }] }] }],
    ['empty ingress rule (default deny on)', { ingress: [{}] }],
    ['matchExpressions In/NotIn/Exists/DoesNotExist', {
      ingress: [{
        fromEndpoints: [{
          matchExpressions: [
            { key: 'tier', operator: 'In', values: ['a', 'b'] },
            { key: 'env', operator: 'NotIn', values: ['dev'] },
            { key: 'team', operator: 'Exists' },
            { key: 'legacy', operator: 'DoesNotExist' },
          ],
        }],
      }],
    }],
    ['toServices by name', { egress: [{ toServices: [{ k8sService: { serviceName: 'db', namespace: 'default' } }] }] }],
    ['HTTP rule on a port range', { ingress: [{ toPorts: [{ ports: [{ port: '8000', endPort: 8010, protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] }] }],
    ['deny sections', { ingressDeny: [{ fromEntities: ['world'] }], egressDeny: [{ toCIDR: ['198.51.100.0/24'] }] }],
  ];

  const REJECT: [string, Record<string, unknown>, RegExp, RegExp][] = [
    ['ICMPs together with toPorts', { egress: [{ icmps: [{ fields: [{ type: 8 }] }], toPorts: [tcp('80')] }] }, /^spec\.egress\[0\]/, /ICMPs block may only be present without ToPorts/i],
    ['L7 rules on port 0', { ingress: [{ toPorts: [{ ports: [{ port: '0', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] }] }, /^spec\.ingress\[0\]\.toPorts\[0\]/, /port is 0/i],
    ['HTTP and DNS in one port rule', { egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'TCP' }], rules: { http: [{}], dns: [{ matchName: 'a.b' }] } }] }] }, /^spec\.egress\[0\]\.toPorts\[0\]\.rules/, /multiple L7 protocol rule types|exactly one of/i],
    ['toFQDNs with toEndpoints', { egress: [{ toFQDNs: [{ matchName: 'cilium.io' }], toEndpoints: [{}] }] }, /^spec\.egress\[0\]$/, /combining (ToEndpoints and ToFQDNs|ToFQDNs and ToEndpoints)/i],
    ['matchPattern with a bad character', { egress: [{ toFQDNs: [{ matchPattern: 'cil/um.io' }] }] }, /^spec\.egress\[0\]\.toFQDNs\[0\](\.matchPattern)?$/, /invalid characters/i],
    ['more than 40 ports', { ingress: [{ toPorts: [{ ports: Array.from({ length: 41 }, (_, i) => ({ port: String(1000 + i) })) }] }] }, /^spec\.ingress\[0\]\.toPorts\[0\](\.ports)?$/, /too many ports|at most 40/i],
    ['unknown protocol', { ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'QUIC' }] }] }] }, /^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.protocol$/, /QUIC/],
    ['bad matchExpressions operator', { ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['b'] }] }] }] }, /^spec\.ingress\[0\]\.fromEndpoints\[0\]\.matchExpressions\[0\](\.operator)?$/, /Equals/],
    ['unparsable CIDR', { egress: [{ toCIDR: ['10.0.0.0/40'] }] }, /^spec\.egress\[0\]\.toCIDR(\[0\])?$/, /10\.0\.0\.0\/40/],
    ['bad HTTP method regex', { ingress: [{ toPorts: [{ ...tcp('80'), rules: { http: [{ method: '*' }] } }] }] }, /^spec\.ingress\[0\]\.toPorts\[0\]\.rules\.http\[0\]\.method$/, /regex|regexp|repeat/i],
  ];

  it.each(ACCEPT)('accepts %s', (label, spec) => {
    const file = join(tempDir('accept'), 'p.json');
    writeFileSync(file, JSON.stringify(cnp('accepted', spec)));
    const r = membrane(['policy', 'validate', file]);
    expect(r.status, `${label}: ${r.stdout}${r.stderr}`).toBe(0);
  });

  it.each(REJECT)('rejects %s with exactly one problem line', (label, spec, path, message) => {
    const file = join(tempDir('reject'), 'p.json');
    writeFileSync(file, JSON.stringify(cnp('rejected', spec)));
    const r = membrane(['policy', 'validate', file]);
    expect(r.status, `${label}: ${r.stdout}${r.stderr}`).toBe(1);
    expect(r.lines, r.stdout).toHaveLength(1);
    expectProblemLine(r.lines[0], file, 'rejected', path, message);
  });

  it('a directory is read for .yaml/.yml/.json files only, and names each broken file', () => {
    const dir = tempDir('dir');
    writeFileSync(join(dir, 'README.md'), '# not a policy: must be ignored\n');
    writeFileSync(join(dir, 'a.json'), JSON.stringify(cnp('a', { egress: [{ toEntities: ['moon'] }] })));
    writeFileSync(join(dir, 'b.yml'), 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: b}\nspec:\n  endpointSelector: {}\n  ingress:\n    - toPorts: [{ports: [{port: "-1"}]}]\n');
    writeFileSync(join(dir, 'c.yaml'), JSON.stringify(cnp('c', { ingress: [{}] })));
    const r = membrane(['policy', 'validate', dir]);
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).not.toContain('README.md');
    const problems = r.lines.filter((l) => !/: valid\b/.test(l));
    expect(problems).toHaveLength(2);
    expectProblemLine(problems.find((l) => l.includes('a.json')), join(dir, 'a.json'), 'a', /^spec\.egress\[0\]\.toEntities(\[0\])?$/, /moon/);
    expectProblemLine(problems.find((l) => l.includes('b.yml')), join(dir, 'b.yml'), 'b', /^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port$/, /./);
  });
});

/**
 * Issue 7: each kind of policy Cilium treats differently than Membrane did, with the exact lines
 * a user sees and the exit status. Inputs are written into a temporary directory.
 */
describe('issue-7 membrane policy validate: parity with Cilium', () => {
  const write = (dir: string, name: string, doc: unknown): string => {
    const file = join(dir, name);
    writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return file;
  };
  const cnp = (name: string, spec: Record<string, unknown>, kind = 'CiliumNetworkPolicy') => ({
    apiVersion: 'cilium.io/v2',
    kind,
    metadata: { name, ...(kind === 'CiliumNetworkPolicy' ? { namespace: 'default' } : {}) },
    spec,
  });
  const web = { endpointSelector: { matchLabels: { app: 'web' } } };
  const kafkaPort = (rules: unknown[]) => ({ ingress: [{ toPorts: [{ ports: [{ port: '9092', protocol: 'TCP' }], rules: { kafka: rules } }] }] });

  it('issue-7 invalid Kafka rules are rejected with Cilium\'s Sanitize wording, one line per rule', () => {
    const f = write(tempDir('i7'), 'kafka.json', cnp('kafka', { ...web, ...kafkaPort([{ apiKey: 'not-an-api-key' }, { role: 'bogus' }, { role: 'produce', apiKey: 'fetch' }, { apiVersion: 'x' }, { topic: 'a/b' }]) }));
    const r = membrane(['policy', 'validate', f]);
    expect(r.status).toBe(1);
    const at = `${f}: kafka: spec.ingress[0].toPorts[0].rules.kafka`;
    expect(r.lines).toEqual([
      `${at}[0].apiKey: invalid Kafka APIKey "not-an-api-key"`,
      `${at}[1].role: invalid Kafka Role "bogus"`,
      `${at}[2]: cannot set both Role "produce" and APIKey "fetch" together`,
      `${at}[3].apiVersion: invalid Kafka APIVersion "x"`,
      `${at}[4].topic: invalid Kafka Topic name "a/b"`,
    ]);
  });

  it('issue-7 a valid Kafka or l7proto rule is accepted with a fail-closed warning, exit 0', () => {
    const dir = tempDir('i7');
    const k = write(dir, 'k.json', cnp('kafka', { ...web, ...kafkaPort([{ role: 'produce', topic: 'deathstar-plans' }, { apiKey: 'APIVersions' }]) }));
    const g = write(dir, 'g.json', cnp('generic', { ...web, egress: [{ toPorts: [{ ports: [{ port: '4000', protocol: 'TCP' }, { port: '5000', endPort: 5010, protocol: 'TCP' }], rules: { l7proto: 'r2d2', l7: [{ cmd: 'READ' }] } }] }] }));
    const r = membrane(['policy', 'validate', k, g]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.lines).toEqual([
      `${k}: valid (kafka)`,
      `${k}: kafka: spec.ingress[0].toPorts[0].rules.kafka: warning: Membrane does not parse Kafka: port 9092/TCP fails closed (the connections this rule allows there are refused)`,
      `${g}: valid (generic)`,
      `${g}: generic: spec.egress[0].toPorts[0].rules.l7proto: warning: Membrane does not parse L7 protocol "r2d2": ports 4000/TCP, 5000-5010/TCP fail closed (the connections this rule allows there are refused)`,
    ]);
    const j = json<ValidationRecord[]>(membrane(['policy', 'validate', '-o', 'json', k]));
    expect(j[0]!.warnings).toEqual([{ path: 'spec.ingress[0].toPorts[0].rules.kafka', message: 'Membrane does not parse Kafka: port 9092/TCP fails closed (the connections this rule allows there are refused)' }]);
  });

  it('issue-7 an l7 rule with an empty key is rejected; l7 without l7proto too', () => {
    const dir = tempDir('i7');
    const a = write(dir, 'a.json', cnp('a', { ...web, ingress: [{ toPorts: [{ ports: [{ port: '4000', protocol: 'TCP' }], rules: { l7proto: 'r2d2', l7: [{ '': 'x' }] } }] }] }));
    const b = write(dir, 'b.json', cnp('b', { ...web, ingress: [{ toPorts: [{ ports: [{ port: '4000', protocol: 'TCP' }], rules: { l7: [{ cmd: 'x' }] } }] }] }));
    const r = membrane(['policy', 'validate', a, b]);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([
      `${a}: a: spec.ingress[0].toPorts[0].rules.l7[0]: Empty key not allowed`,
      `${b}: b: spec.ingress[0].toPorts[0].rules.l7: 'l7' may only be specified when a 'l7proto' is also specified`,
    ]);
  });

  it('issue-7 a namespaced CiliumNetworkPolicy cannot have a nodeSelector (spec or specs); a clusterwide one can', () => {
    const dir = tempDir('i7');
    const spec = { nodeSelector: {}, ingress: [{ fromEntities: ['cluster'] }] };
    const a = write(dir, 'a.json', cnp('host', spec));
    const b = write(dir, 'b.json', { ...cnp('hosts', {}), spec: undefined, specs: [{ ...web, ingress: [{}] }, spec] });
    const c = write(dir, 'c.json', cnp('host', spec, 'CiliumClusterwideNetworkPolicy'));
    const r = membrane(['policy', 'validate', a, b, c]);
    expect(r.status).toBe(1);
    const msg = 'rule cannot have NodeSelector: a namespaced CiliumNetworkPolicy cannot select nodes (use a CiliumClusterwideNetworkPolicy)';
    expect(r.lines).toEqual([`${a}: host: spec.nodeSelector: ${msg}`, `${b}: hosts: specs[1].nodeSelector: ${msg}`]);
    expect(r.stderr).toContain(`${c}: valid (host)`);
  });

  it('issue-7 protocols without ports (VRRP, IGMP) take no port but "0" or none', () => {
    const dir = tempDir('i7');
    const bad = write(dir, 'bad.json', cnp('p', { ...web, ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'VRRP' }, { port: '80', protocol: 'IGMP' }, { port: '00', protocol: 'IGMP' }] }] }] }));
    const good = write(dir, 'good.json', cnp('q', { ...web, ingress: [{ toPorts: [{ ports: [{ port: '0', protocol: 'VRRP' }, { protocol: 'IGMP' }] }] }] }));
    const r = membrane(['policy', 'validate', bad, good]);
    expect(r.status).toBe(1);
    const at = `${bad}: p: spec.ingress[0].toPorts[0].ports`;
    expect(r.lines).toEqual([
      `${at}[0].port: port must be empty or 0 for protocol VRRP`,
      `${at}[1].port: port must be empty or 0 for protocol IGMP`,
      `${at}[2].port: port must be empty or 0 for protocol IGMP`,
    ]);
    expect(r.stderr).toContain(`${good}: valid (q)`);
  });

  it('issue-7 a host policy may have DNS rules on egress; HTTP on host egress and any L7 on host ingress are refused', () => {
    const dir = tempDir('i7');
    const dns = { ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } };
    const ok = write(dir, 'ok.json', cnp('host-dns', { nodeSelector: {}, egress: [{ toEndpoints: [{ matchLabels: { 'k8s-app': 'kube-dns' } }], toPorts: [dns] }] }, 'CiliumClusterwideNetworkPolicy'));
    const http = write(dir, 'http.json', cnp('host-http', { nodeSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{}] } }] }] }, 'CiliumClusterwideNetworkPolicy'));
    const ing = write(dir, 'ing.json', cnp('host-in', { nodeSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{}] } }] }] }, 'CiliumClusterwideNetworkPolicy'));
    expect(membrane(['policy', 'validate', ok])).toMatchObject({ status: 0, lines: [`${ok}: valid (host-dns)`] });
    const r = membrane(['policy', 'validate', http, ing]);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([
      `${http}: host-http: spec.egress[0].toPorts[0].rules.http: L7 protocol HTTP is not supported on host egress yet`,
      `${ing}: host-in: spec.ingress[0].toPorts[0].rules: L7 policy is not supported on host ingress yet`,
    ]);
  });

  it('issue-7 YAML syntax errors name FILE:line:column, one line per document fault', () => {
    const dir = tempDir('i7');
    const unclosed = write(dir, 'unclosed.yaml', 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: x\nspec:\n  endpointSelector: {}\n  ingress:\n  - fromEntities: ["world"\n');
    const dup = write(dir, 'dup.yaml', 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: x\n  name: y\n');
    const tab = write(dir, 'tab.yaml', 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n\tname: x\n');
    const second = write(dir, 'second.yaml', `${JSON.stringify(cnp('ok', { ...web, ingress: [{}] }))}\n---\nkind: 'unterminated\n`);
    const alias = write(dir, 'alias.yaml', 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: *nope\n');
    const r = membrane(['policy', 'validate', unclosed, dup, tab, second, alias]);
    expect(r.status).toBe(1);
    expect(r.lines).toHaveLength(5);
    expect(r.lines[0]).toMatch(new RegExp(`^${re(unclosed)}:9:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a \\]$`));
    expect(r.lines[1]).toBe(`${dup}:5:3: invalid YAML: Map keys must be unique`);
    expect(r.lines[2]).toMatch(new RegExp(`^${re(tab)}:4:1: invalid YAML: `));
    expect(r.lines[3]).toMatch(new RegExp(`^${re(second)}:4:1: invalid YAML: Missing closing 'quote$`));
    expect(r.lines[4]).toMatch(new RegExp(`^${re(alias)}:4:9: invalid YAML: `));
    for (const l of r.lines) expect(l).not.toContain('<unnamed>: :');
  });

  it('issue-7 a bad protocol value is one problem, not also an L7-on-TCP one', () => {
    const f = write(tempDir('i7'), 'p.json', cnp('p', { ...web, ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'FOO' }, { port: '81', protocol: 'tcp' }], rules: { http: [{ method: 'GET' }] } }] }] }));
    const r = membrane(['policy', 'validate', f]);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([
      `${f}: p: spec.ingress[0].toPorts[0].ports[0].protocol: unsupported value "FOO": must be one of TCP, UDP, SCTP, VRRP, IGMP, ANY`,
      `${f}: p: spec.ingress[0].toPorts[0].ports[1].protocol: unsupported value "tcp": must be one of TCP, UDP, SCTP, VRRP, IGMP, ANY`,
    ]);
  });

  it('issue-7 a directory is walked into its subdirectories (hidden entries skipped), as cilium policy validate does', () => {
    const dir = tempDir('i7');
    mkdirSync(join(dir, 'team-a', 'deep'), { recursive: true });
    mkdirSync(join(dir, '.git'));
    const top = write(dir, 'top.json', cnp('top', { ...web, ingress: [{}] }));
    const nested = write(join(dir, 'team-a', 'deep'), 'nested.json', cnp('nested', { ...web, egress: [{ toEntities: ['moon'] }] }));
    write(join(dir, '.git'), 'hidden.json', cnp('hidden', { ...web, egress: [{ toEntities: ['moon'] }] }));
    symlinkSync(dir, join(dir, 'team-a', 'loop'));
    const r = membrane(['policy', 'validate', dir]);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([`${nested}: nested: spec.egress[0].toEntities[0]: unsupported entity: moon`]);
    expect(r.stderr).toBe(`${top}: valid (top)\n`);
  });
});
