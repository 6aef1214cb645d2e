/**
 * The one toFQDNs matcher against Cilium's own test tables (cilium/cilium
 * `pkg/fqdn/matchpattern/matchpattern_test.go`): the regex is matched on the name exactly as
 * given, as Cilium's tests do, then `selectorMatches` adds the proxy's normalisation.
 */
import { describe, expect, it } from 'vitest';
import { MAX_NAME_LENGTH, normalizeName, selectorMatches, validatePattern } from '../../../src/fqdn/index.js';
import { nameRegex, patternRegex } from '../../../src/policy/index.js';

interface Vector {
  readonly pattern: string;
  readonly accept: readonly string[];
  readonly reject: readonly string[];
}

/** TestAnchoredMatchPatternMatching (v1.19 table). */
const CILIUM_TABLE: readonly Vector[] = [
  { pattern: 'cilium.io.', accept: ['cilium.io.'], reject: ['', 'anysub.cilium.io.', 'anysub.ci.io.', 'anysub.ciliumandmore.io.'] },
  { pattern: '*.cilium.io.', accept: ['anysub.cilium.io.'], reject: ['', 'cilium.io.', 'anysub.ci.io.', 'anysub.ciliumandmore.io.'] },
  { pattern: '*.ci*.io.', accept: ['anysub.cilium.io.', 'anysub.ci.io.', 'anysub.ciliumandmore.io.'], reject: ['', 'cilium.io.'] },
  {
    pattern: '*',
    accept: ['.', 'io.', 'cilium.io.', 'svc.cluster.local.', 'service.namesace.svc.cluster.local.', '_foobar._tcp.cilium.io.'],
    reject: ['', '.io.', '.cilium.io.', '.svc.cluster.local.', 'cilium.io'],
  },
  { pattern: '.', accept: ['.'], reject: ['', '.io.', '.cilium.io'] },
  { pattern: '_foobar._tcp.cilium.io.', accept: ['_foobar._tcp.cilium.io.'], reject: ['', '_tcp.cilium.io.', 'cilium.io.'] },
  { pattern: '*.*.cilium.io.', accept: ['_foobar._tcp.cilium.io.'], reject: [''] },
];

/**
 * The `**` rows of the same test file in the revision that added multi-level wildcards, kept where
 * `**` is a leading `**.` or the whole pattern: in v1.19.4 `**.` is only meaningful as a prefix
 * (PR #43420), and elsewhere `**` is `*` (those rows are checked below instead).
 */
const CILIUM_DOUBLE_STAR_TABLE: readonly Vector[] = [
  {
    pattern: '**.cilium.io.',
    accept: ['anysub.cilium.io.', '_foobar._tcp.cilium.io.', 'sub11.sub22.sub33._foobar._tcp.cilium.io.'],
    reject: ['', 'cilium.io.', 'anysub.ci.io.', 'anysub.ciliumandmore.io.', 'sub.cilium.io', '1._foobar_tcp.cilium.trio.'],
  },
  {
    pattern: '**.ci*.io.',
    accept: ['anysub.cilium.io.', 'anysub.ci.io.', '1.anysub.ciliumandmore.io.', 'service.namesace.svc.ciuster.io.'],
    reject: ['', 'cilium.io.', 'service.namesace.svc..ciblaster.io.'],
  },
  {
    pattern: '**.*.io.',
    accept: ['anysub.cilium.io.', 'anysub.ci.io.', 'anysub.ciliumandmore.io.', 'service.namesace.svc.ciuster.io.'],
    reject: ['', 'io.', '..cilium.io.', 'cilium.io.', 'service..namesace.svc.cluster.io.'],
  },
  {
    pattern: '**',
    accept: ['.', 'io.', 'cilium.io.', 'svc.cluster.local.', 'service.namesace.svc.cluster.local.', '_foobar._tcp.cilium.io.'],
    reject: ['', '..io.', '..cilium.io.', '.svc.cluster..local.', 'cilium..io'],
  },
  {
    pattern: '**.',
    accept: ['io.', 'cilium.io.', 'svc.cluster.local.', 'service.namesace.svc.cluster.local.', '_foobar._tcp.cilium.io.'],
    reject: ['', '.cilium.io.', '..cilium.io.', '.svc.cluster..local.', 'cilium.io'],
  },
];

describe('matchPattern on Cilium test vectors', () => {
  for (const v of [...CILIUM_TABLE, ...CILIUM_DOUBLE_STAR_TABLE]) {
    it(`${v.pattern} accepts ${v.accept.length} and rejects ${v.reject.length} names as Cilium`, () => {
      const re = patternRegex(v.pattern);
      expect(v.accept.filter((n) => !re.test(n))).toEqual([]);
      expect(v.reject.filter((n) => re.test(n))).toEqual([]);
    });
  }

  it('documented examples (layer3.rst, fqdn.go): * stays within one label, **. spans labels as a prefix only', () => {
    const cases: [string, string, boolean][] = [
      ['*.cilium.io', 'sub.cilium.io.', true],
      ['*.cilium.io', 'cilium.io.', false],
      ['*.cilium.io', 'a.b.cilium.io.', false],
      ['*cilium.io', 'cilium.io.', true],
      ['*cilium.io', 'subcilium.io.', true],
      ['*cilium.io', 'www.cilium.io.', false],
      ['sub*.cilium.io', 'subdomain.cilium.io.', true],
      ['sub*.cilium.io', 'www.cilium.io.', false],
      ['part*ial.com', 'part-extra-ial.com.', true],
      ['**.cilium.io', 'app.cilium.io.', true],
      ['**.cilium.io', 'test.app.cilium.io.', true],
      ['**.cilium.io', 'cilium.io.', false],
      // Not a prefix: `**` is `*` (v1.19.4), so it does not cross a dot.
      ['*.**.io.', 'anysub.cilium.io.', true],
      ['*.**.io.', 'service.namesace.svc.ciuster.io.', false],
      ['1.**.cilium.io.', '1._foobar.cilium.io.', true],
      ['1.**.cilium.io.', '1.2._foobar.cilium.io.', false],
    ];
    expect(cases.filter(([p, n, want]) => patternRegex(p).test(n) !== want)).toEqual([]);
  });

  it('a matchName is a literal: its dots and dashes match only themselves', () => {
    expect(nameRegex('api.github.com').test('api.github.com.')).toBe(true);
    expect(nameRegex('api.github.com').test('apixgithub.com.')).toBe(false);
    expect(nameRegex('my-host.example').test('my-host.example.')).toBe(true);
    expect(nameRegex('my-host.example').test('myhost.example.')).toBe(false);
  });
});

describe('selectorMatches: the proxy view (lower case, trailing dot)', () => {
  it('matches names in any case, with or without the trailing dot', () => {
    expect(selectorMatches({ matchName: 'api.github.com', matchPattern: undefined }, 'API.GitHub.com')).toBe(true);
    expect(selectorMatches({ matchName: 'API.github.com.', matchPattern: undefined }, 'api.github.com.')).toBe(true);
    expect(selectorMatches({ matchName: undefined, matchPattern: '*.GITHUB.com' }, 'support.github.com')).toBe(true);
    expect(selectorMatches({ matchName: undefined, matchPattern: '*.github.com' }, 'github.com')).toBe(false);
    expect(selectorMatches({ matchName: undefined, matchPattern: '*' }, 'cilium.io')).toBe(true);
  });

  it('a selector with neither field admits nothing; an over-long name matches nothing', () => {
    expect(selectorMatches({ matchName: undefined, matchPattern: undefined }, 'a.b.')).toBe(false);
    const long = `${'a.'.repeat(MAX_NAME_LENGTH)}`;
    expect(selectorMatches({ matchName: undefined, matchPattern: '*' }, long)).toBe(false);
    expect(selectorMatches({ matchName: undefined, matchPattern: '**.' }, 'a.'.repeat(100))).toBe(true);
  });

  it('normalizeName is Cilium dns.FQDN', () => {
    expect(normalizeName('Example.COM')).toBe('example.com.');
    expect(normalizeName('example.com.')).toBe('example.com.');
  });
});

describe('validatePattern: Cilium error texts', () => {
  it('accepts the character set and rejects anything else with matchpattern.Validate\'s text', () => {
    expect(validatePattern('*.cilium.io')).toBeNull();
    expect(validatePattern('_sub.**.io')).toBeNull();
    expect(validatePattern('a b.com')).toBe('Invalid characters in MatchPattern: "a b.com". Only 0-9, a-z, A-Z and ., -, _ and * characters are allowed');
    expect(validatePattern('[a-z].com')).toBe('Invalid characters in MatchPattern: "[a-z].com". Only 0-9, a-z, A-Z and ., -, _ and * characters are allowed');
  });

  it('rejects a pattern over 255 characters with prevalidate\'s text', () => {
    const p = `${'a'.repeat(252)}.com`;
    expect(validatePattern(p)).toBe(`Invalid MatchPattern: "${p}". Must be <= 255 characters long.`);
    expect(validatePattern(`${'a'.repeat(251)}.com`)).toBeNull();
  });

  it('rejects what the CRD pattern rejects (empty labels)', () => {
    expect(validatePattern('a..com')).toMatch(/must match/);
  });
});
