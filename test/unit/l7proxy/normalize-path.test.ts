import { describe, expect, it } from 'vitest';
import { normalizeRequestTarget, type NormalizedTarget } from '../../../src/l7proxy/index.js';

function forwarded(target: string): string {
  const r: NormalizedTarget = normalizeRequestTarget(target);
  if (r.kind !== 'forward') throw new Error(`${target}: expected forward, got ${JSON.stringify(r)}`);
  return r.target;
}

describe('path normalisation (Cilium http-normalize-path: Envoy normalize_path + merge_slashes + UNESCAPE_AND_REDIRECT)', () => {
  it('RFC 3986 §5.2.4 remove_dot_segments examples', () => {
    expect(forwarded('/a/b/c/./../../g')).toBe('/a/g');
    // The RFC's second example is a relative path; origin-form targets always start with "/".
    expect(forwarded('/mid/content=5/../6')).toBe('/mid/6');
  });

  it.each([
    ['/xyz', '/xyz'],
    ['/x/y/z', '/x/y/z'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['/a/b/../../../../c', '/c'],
    ['/a/..\\c', '/c'],
    ['/%c0%af', '/%c0%af'],
    // Envoy's "/%5c%25" vector is an escaped backslash: Cilium's UNESCAPE_AND_REDIRECT redirects it (below).
  ])('Envoy path_utility_test vector %s → %s', (input, want) => {
    expect(forwarded(input)).toBe(want);
  });

  it.each([
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2e%2e/c', '/a/c'],
    ['/a/b/%2E./c', '/a/c'],
    ['/a/b/.%2e/c', '/a/c'],
    ['/a/b/%2E/c', '/a/b/c'],
    ['/../a/b', '/a/b'],
    ['/./a/b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/..', '/'],
    ['/A/B/C', '/A/B/C'],
  ])('dot-segments, literal or encoded: %s → %s', (input, want) => {
    expect(forwarded(input)).toBe(want);
  });

  it.each([
    ['/t/../secret.txt', '/secret.txt'],
    ['/t/%2e%2e/secret.txt', '/secret.txt'],
    ['/t/%2E%2E/secret.txt', '/secret.txt'],
    ['/t/.%2e/secret.txt', '/secret.txt'],
    ['/t//../secret.txt', '/t/secret.txt'],
    ['/t/..//secret.txt', '/secret.txt'],
    ['/t/a/../../secret.txt', '/secret.txt'],
    ['/t/..\\secret.txt', '/secret.txt'],
    ['/t\\..\\secret.txt', '/secret.txt'],
  ])('issue-6 path walk-around %s is judged as %s', (input, want) => {
    expect(forwarded(input)).toBe(want);
  });

  it.each([
    ['/v1//request-landing', '/v1/request-landing'],
    ['/v1/./request-landing', '/v1/request-landing'],
    ['//v1///request-landing', '/v1/request-landing'],
    ['/v1/x/../request-landing', '/v1/request-landing'],
    ['/v1/request%2Dlanding', '/v1/request-landing'],
    ['/%76%31/request-landing', '/v1/request-landing'],
  ])('issue-6 equivalent spellings of the Star Wars path: %s → %s', (input, want) => {
    expect(forwarded(input)).toBe(want);
  });

  it('decodes percent-encoded unreserved characters only; other escapes keep their bytes and case', () => {
    expect(forwarded('/t/%61.txt')).toBe('/t/a.txt');
    expect(forwarded('/%41%7a%30%2D%5F%7E')).toBe('/Az0-_~');
    expect(forwarded('/a%20b/%3Fq/%23f/%25/%2c')).toBe('/a%20b/%3Fq/%23f/%25/%2c');
    // A double-encoded dot is a literal "%2e" name, not a dot-segment, for a server that decodes once.
    expect(forwarded('/t/%252e%252e/secret.txt')).toBe('/t/%252e%252e/secret.txt');
  });

  it('percent-encodes characters that may not appear in a path', () => {
    expect(forwarded('/a b')).toBe('/a%20b');
    expect(forwarded('/{x}|^`"<>')).toBe('/%7Bx%7D%7C%5E%60%22%3C%3E');
    expect(forwarded('/caf\u00e9')).toBe('/caf%E9');
  });

  it('keeps the query untouched (Envoy normalises the path only)', () => {
    expect(forwarded('/a/../b?x=/../y&z=%2e%2e//%2F')).toBe('/b?x=/../y&z=%2e%2e//%2F');
    expect(forwarded('/a//b?')).toBe('/a/b?');
    expect(forwarded('/?a=1')).toBe('/?a=1');
  });

  it('reports whether the target changed', () => {
    expect(normalizeRequestTarget('/v1/request-landing')).toEqual({ kind: 'forward', target: '/v1/request-landing', changed: false });
    expect(normalizeRequestTarget('/v1//request-landing')).toEqual({ kind: 'forward', target: '/v1/request-landing', changed: true });
  });

  it.each([
    ['/t/..%2fsecret.txt', '/secret.txt'],
    ['/t/..%2Fsecret.txt', '/secret.txt'],
    ['/t/..%5csecret.txt', '/secret.txt'],
    ['/t/%2e%2e%2fsecret.txt', '/secret.txt'],
    ['/t%2F..%2Fsecret.txt?x=%2F', '/secret.txt?x=%2F'],
    ['/a%2Fb', '/a/b'],
    ['/%5c%25', '/%25'],
  ])('issue-6 escaped slashes are never forwarded: %s redirects to %s (UNESCAPE_AND_REDIRECT)', (input, location) => {
    expect(normalizeRequestTarget(input)).toEqual({ kind: 'redirect', location });
  });

  it.each([
    ['/xyz/.%00../abc', 'encoded NUL'],
    ['/xyz/%00.%00./abc', 'encoded NUL'],
    ['/xyz/AAAAA%%0000/abc', 'invalid percent-encoding'],
    ['/a%', 'invalid percent-encoding'],
    ['/a%2', 'invalid percent-encoding'],
    ['/a%zz', 'invalid percent-encoding'],
    ['/a%%32%65', 'invalid percent-encoding'],
  ])('rejects %s (%s)', (input, why) => {
    const r = normalizeRequestTarget(input);
    expect(r.kind).toBe('reject');
    expect(r.kind === 'reject' && r.reason).toContain(why);
  });

  it('leaves the asterisk-form alone', () => {
    expect(normalizeRequestTarget('*')).toEqual({ kind: 'forward', target: '*', changed: false });
  });

  it('is idempotent: a normalised target normalises to itself', () => {
    for (const t of ['/t/../secret.txt', '/a//b/./c/%61?q=1', '/%c0%af/x', '/a b/{c}', '/t/%252e%252e/s']) {
      const once = forwarded(t);
      expect(forwarded(once)).toBe(once);
    }
  });

  it('every forwarded result is canonical and a fixed point (seeded random paths)', () => {
    const pieces = ['/', '/', '.', '..', 'a', 'B', '%2e', '%2E', '%61', '%2f', '%5C', '\\', '%20', '~', ';', '%25', 'é'];
    let seed = 42;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 5000; i++) {
      let t = '/';
      for (let k = next(12); k > 0; k--) t += pieces[next(pieces.length)];
      const r = normalizeRequestTarget(t);
      if (r.kind === 'reject') continue;
      const out = r.kind === 'forward' ? r.target : r.location;
      expect(out, t).not.toMatch(/\/\.\.?(\/|$)|\/\/|\\|%2e|%2f|%5c|%61/i);
      expect(normalizeRequestTarget(out), t).toEqual({ kind: 'forward', target: out, changed: false });
    }
  });

  it('handles a long hostile path in one linear pass', () => {
    const hostile = `/${'a/../'.repeat(2000)}${'%2e%2e/'.repeat(2000)}${'/'.repeat(4000)}x`;
    expect(forwarded(hostile)).toBe('/x');
  });
});
