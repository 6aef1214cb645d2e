/**
 * `membrane fqdn match PATTERN NAME… [-o json]` as a black box: one line `NAME match|no match` per
 * name, exit 0 only if every name matched, 1 otherwise, 2 for bad input with Cilium's text;
 * `-o json` prints `[{pattern, name, match}]`. Vectors: cilium/cilium
 * pkg/fqdn/matchpattern/matchpattern_test.go and the mediabot walkthrough.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, json, membrane } from './run-cli.js';

beforeAll(() => assertBuilt());

describe('membrane fqdn match', () => {
  it('the mediabot walkthrough: *.github.com admits api and support, not github.com (exit 1)', () => {
    const r = membrane(['fqdn', 'match', '*.github.com', 'api.github.com', 'support.github.com', 'github.com']);
    expect(r.lines).toEqual(['api.github.com match', 'support.github.com match', 'github.com no match']);
    expect(r.status).toBe(1);
  });

  it('exit 0 when every name matched; names in any case, with or without the trailing dot', () => {
    const r = membrane(['fqdn', 'match', 'api.github.com', 'api.github.com', 'API.GitHub.COM.']);
    expect(r.lines).toEqual(['api.github.com match', 'API.GitHub.COM. match']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('Cilium vectors: *.ci*.io., *, **.cilium.io, _foobar._tcp', () => {
    const cases: [string, string[], string[]][] = [
      ['*.ci*.io.', ['anysub.cilium.io.', 'anysub.ci.io.', 'anysub.ciliumandmore.io.'], ['cilium.io.']],
      ['*', ['io.', 'cilium.io.', 'svc.cluster.local.', '_foobar._tcp.cilium.io.'], ['.io.', '.cilium.io.']],
      ['**.cilium.io', ['anysub.cilium.io.', 'sub11.sub22.sub33._foobar._tcp.cilium.io.'], ['cilium.io.', 'anysub.ciliumandmore.io.']],
      ['_foobar._tcp.cilium.io.', ['_foobar._tcp.cilium.io.'], ['_tcp.cilium.io.', 'cilium.io.']],
    ];
    for (const [pattern, accept, reject] of cases) {
      const r = membrane(['fqdn', 'match', pattern, ...accept, ...reject]);
      expect({ pattern, lines: r.lines }).toEqual({ pattern, lines: [...accept.map((n) => `${n} match`), ...reject.map((n) => `${n} no match`)] });
      expect(r.status).toBe(reject.length ? 1 : 0);
    }
  });

  it('-o json prints [{pattern, name, match}]', () => {
    const r = membrane(['fqdn', 'match', '-o', 'json', '**.example.com', 'a.b.example.com', 'example.com']);
    expect(json(r)).toEqual([
      { pattern: '**.example.com', name: 'a.b.example.com', match: true },
      { pattern: '**.example.com', name: 'example.com', match: false },
    ]);
    expect(r.status).toBe(1);
  });

  it('an invalid pattern exits 2 with Cilium\'s validation text and prints no verdict', () => {
    const r = membrane(['fqdn', 'match', 'api.github.com/x', 'api.github.com']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'Invalid characters in MatchPattern: "api.github.com/x". Only 0-9, a-z, A-Z and ., -, _ and * characters are allowed [MEMBRANE_ERR_CLI_USAGE]',
    );
    const long = `${'a'.repeat(256)}.com`;
    const l = membrane(['fqdn', 'match', long, 'x.com']);
    expect(l.status).toBe(2);
    expect(l.stderr).toContain(`Invalid MatchPattern: "${long}". Must be <= 255 characters long.`);
  });

  it('usage errors exit 2: no name, an unknown output mode', () => {
    expect(membrane(['fqdn', 'match', '*.github.com']).status).toBe(2);
    expect(membrane(['fqdn', 'match', '-o', 'yaml', '*', 'a.b']).status).toBe(2);
  });
});

describe('membrane fqdn cache list: bad input is a usage error before the agent is asked', () => {
  it('--endpoint must be an endpoint id, --matchpattern a valid pattern (exit 2)', () => {
    const socket = ['--api-socket', '/nonexistent/membrane-test/agent.sock'];
    const id = membrane([...socket, 'fqdn', 'cache', 'list', '--endpoint', 'abc']);
    expect(id.status).toBe(2);
    expect(id.stderr).toContain('--endpoint "abc" is not an endpoint id');
    const pattern = membrane([...socket, 'fqdn', 'cache', 'list', '--matchpattern', 'a*b!']);
    expect(pattern.status).toBe(2);
    expect(pattern.stderr).toContain('--matchpattern:');
  });
});
