/**
 * issue-6 linear-time matching: every pattern matched against pod data runs on RE2, whose time is
 * linear in the input, and Envoy's program-size limit is enforced at validation.
 */
import { describe, expect, it } from 'vitest';
import { compileFullMatch, compileSearch, fullMatcher, MAX_PROGRAM_SIZE } from '../../../src/re2/index.js';
import { loadPolicyText } from '../../../src/policy/index.js';

function full(re: string) {
  const c = compileFullMatch(re);
  if (!c.ok) throw new Error(c.error);
  return c.matcher;
}

describe('issue-6 RE2 syntax and full-match semantics (Envoy safe_regex)', () => {
  it('accepts RE2 syntax that JavaScript spells differently', () => {
    const cases: Array<[string, string[], string[]]> = [
      ['(?i)get', ['GET', 'get'], ['POST']],
      ['[[:digit:]]+', ['123'], ['12a']],
      ['\\Qa.b\\E', ['a.b'], ['axb']],
      ['(?P<v>v[0-9])/.*', ['v1/x'], ['v/x']],
      ['a{2}', ['aa'], ['a', 'aaa']],
      ['x{', ['x{'], ['x']],
      ['\\x41\\x{42}', ['AB'], []],
      ['\\pL+', ['héllo'], ['h3llo']],
      ['a|b', ['a', 'b'], ['ab']],
      ['/public/.*', ['/public/', '/public/x/y?z=1'], ['/public', '/publicx', 'x/public/']],
    ];
    for (const [re, yes, no] of cases) {
      const m = full(re);
      for (const y of yes) expect([re, y, m.test(y)]).toEqual([re, y, true]);
      for (const n of no) expect([re, n, m.test(n)]).toEqual([re, n, false]);
    }
  });

  it('rejects what RE2 rejects, with RE2\'s reason', () => {
    const bad: Array<[string, RegExp]> = [
      ['*', /no argument for repetition operator/],
      ['(a', /missing \)/],
      ['a)', /unexpected \)|missing \(/],
      ['[a', /missing \]/],
      ['(a)\\1', /invalid escape sequence/],
      ['a(?=b)', /invalid perl operator/],
      ['(?<=a)b', /invalid perl operator|invalid named capture/],
      ['a{1001}', /invalid repetition size/],
      ['a**', /bad repetition operator/],
    ];
    for (const [re, why] of bad) {
      const r = compileFullMatch(re);
      expect([re, r.ok]).toEqual([re, false]);
      if (!r.ok) expect([re, r.error]).toEqual([re, expect.stringMatching(why)]);
    }
  });

  it('search (flow filters) matches anywhere, like Go regexp.MatchString', () => {
    const r = compileSearch('landing');
    expect(r.ok && r.matcher.test('/v1/request-landing?x')).toBe(true);
  });
});

describe('issue-6 catastrophic patterns answer at all (a backtracking engine would not, in this lifetime)', () => {
  // Each of these takes a backtracking engine 2^n steps on the input beside it: at n = 30 that is
  // seconds, at n = 50_000 it never returns. RE2 answers in one pass over the input.
  const n = 50_000;
  const cases: Array<[string, string]> = [
    ['/v1/([a-z]+/?)*end', `/v1/${'a'.repeat(n)}!`],
    ['(a+)+', `${'a'.repeat(n)}!`],
    ['(.*)*x', 'a'.repeat(n)],
    ['(\\w+\\s?)*$', `${'word '.repeat(n / 5)}!`],
    ['(a|aa)+', `${'a'.repeat(n)}b`],
    ['((a|b)+|(b|a)+)+c', `${'ab'.repeat(n / 2)}`],
    ['(a|a?)+b', 'a'.repeat(n)],
  ];
  it.each(cases)('%s on a %#-th adversarial input of 50k characters', (pattern, input) => {
    const m = fullMatcher(pattern);
    expect(m).not.toBeNull();
    expect(m!.test(input)).toBe(false);
  });
});

describe("issue-6 Envoy's max_program_size at validation", () => {
  const policy = (path: string): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: big-path}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: GET, path: ${JSON.stringify(path)}}]
`;

  it('the default limit is Envoy\'s re2.max_program_size.error_level', () => {
    expect(MAX_PROGRAM_SIZE).toBe(100);
  });

  it('rejects a path whose RE2 program is too large, naming file, policy and field, with Envoy\'s error', () => {
    const long = `/api/${'segment/'.repeat(14)}.*`;
    const r = loadPolicyText(policy(long), 'big.yaml');
    expect(r.problems).toHaveLength(1);
    const p = r.problems[0]!;
    expect(p.file).toBe('big.yaml');
    expect(p.name).toBe('big-path');
    expect(p.path).toBe('spec.ingress[0].toPorts[0].rules.http[0].path');
    expect(p.message).toMatch(
      new RegExp(`RE2 program size of \\d+ > max program size of 100 set for the error level threshold\\. Increase configured max program size if necessary\\.$`),
    );
    expect(p.message).toContain(`regex '${long}'`);
  });

  it('counts as RE2 does, not by characters: UTF-8 classes cost more than literals', () => {
    // 12 wildcards are few characters but each `.*` is a UTF-8 automaton of about ten instructions.
    expect(loadPolicyText(policy('/a/.*/b/.*/c/.*/d/.*/e/.*'), 'f.yaml').problems).toEqual([]);
    expect(loadPolicyText(policy('/.*/.*/.*/.*/.*/.*/.*/.*/.*/.*/.*/.*'), 'f.yaml').problems).toHaveLength(1);
  });

  it('keeps every ordinary rule (the Star Wars path, method alternations, classes)', () => {
    for (const path of ['/v1/request-landing', '/v1/.*', '/api/v[0-9]+/users/[a-zA-Z0-9_-]+/profile', '/(foo|bar|baz)/[^/]+/items/[0-9]+']) {
      expect([path, loadPolicyText(policy(path), 'f.yaml').problems]).toEqual([path, []]);
    }
  });
});
