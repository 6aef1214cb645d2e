import { describe, expect, it } from 'vitest';
import { evaluateDns, evaluateHttp, patternRegex } from '../../../src/policy/index.js';
import type { HttpRequestInfo, HttpRule, L7Rules } from '../../../src/policy/index.js';

const http = (rules: HttpRule[], allowAll = false): L7Rules & { kind: 'http' } => ({ kind: 'http', rules, allowAll });
const req = (method: string, path: string, headers: HttpRequestInfo['headers'] = {}, host = 'svc.local'): HttpRequestInfo => ({ method, path, host, headers });

describe('evaluateHttp', () => {
  it('method, path and host are full-string matches', () => {
    const r = http([{ method: 'GET', path: '/public' }]);
    expect(evaluateHttp(r, req('GET', '/public')).allowed).toBe(true);
    expect(evaluateHttp(r, req('GET', '/public/x')).allowed).toBe(false);
    expect(evaluateHttp(r, req('GET', '/x/public')).allowed).toBe(false);
    expect(evaluateHttp(r, req('GETX', '/public')).allowed).toBe(false);
    expect(evaluateHttp(http([{ path: '/v1/.*' }]), req('PUT', '/v1/anything?q=1')).allowed).toBe(true);
    expect(evaluateHttp(http([{ method: 'GET|HEAD' }]), req('HEAD', '/')).allowed).toBe(true);
    expect(evaluateHttp(http([{ host: 'api\\.example\\.com' }]), req('GET', '/', {}, 'api.example.com')).allowed).toBe(true);
    expect(evaluateHttp(http([{ host: 'api\\.example\\.com' }]), req('GET', '/', {}, 'api.example.com.evil')).allowed).toBe(false);
  });

  it('rules are OR-ed, fields AND-ed; the first matching rule is reported', () => {
    const r = http([{ method: 'GET', path: '/a' }, { method: 'POST', path: '/b' }]);
    expect(evaluateHttp(r, req('POST', '/b'))).toEqual({ allowed: true, matchedRule: 1 });
    expect(evaluateHttp(r, req('POST', '/a'))).toEqual({ allowed: false, matchedRule: null });
  });

  it('an empty rule matches everything; allowAll allows when nothing matches', () => {
    expect(evaluateHttp(http([{}]), req('DELETE', '/x'))).toEqual({ allowed: true, matchedRule: 0 });
    expect(evaluateHttp(http([{ path: '/a' }], true), req('GET', '/b'))).toEqual({ allowed: true, matchedRule: null });
    expect(evaluateHttp(http([]), req('GET', '/'))).toEqual({ allowed: false, matchedRule: null });
  });

  it('headers: exact value or presence, case-insensitive names, multi-valued headers', () => {
    const r = http([{ path: '/private', headers: [{ name: 'X-Very-Secret-Token', value: '42' }, { name: 'X-Present' }] }]);
    expect(evaluateHttp(r, req('GET', '/private', { 'x-very-secret-token': '42', 'x-present': '' })).allowed).toBe(true);
    expect(evaluateHttp(r, req('GET', '/private', { 'x-very-secret-token': '43', 'x-present': '1' })).allowed).toBe(false);
    expect(evaluateHttp(r, req('GET', '/private', { 'x-very-secret-token': '42' })).allowed).toBe(false);
    expect(evaluateHttp(r, req('GET', '/private', { 'x-very-secret-token': ['1', '42'], 'x-present': 'y' })).allowed).toBe(true);
  });

  it('headerMatches: default mismatch must match; LOG/ADD/DELETE/REPLACE never deny; secrets never match offline', () => {
    expect(evaluateHttp(http([{ headerMatches: [{ name: 'X-A', value: 'b' }] }]), req('GET', '/', { 'x-a': 'b' })).allowed).toBe(true);
    expect(evaluateHttp(http([{ headerMatches: [{ name: 'X-A', value: 'b' }] }]), req('GET', '/', { 'x-a': 'c' })).allowed).toBe(false);
    expect(evaluateHttp(http([{ headerMatches: [{ name: 'X-A' }] }]), req('GET', '/', {})).allowed).toBe(false);
    expect(evaluateHttp(http([{ headerMatches: [{ name: 'X-A', value: 'b', mismatch: 'REPLACE' }] }]), req('GET', '/', {})).allowed).toBe(true);
    expect(evaluateHttp(http([{ headerMatches: [{ name: 'X-A', secret: { namespace: 'n', name: 's' } }] }]), req('GET', '/', { 'x-a': 'x' })).allowed).toBe(false);
    const withFallback = http([{ headerMatches: [{ name: 'X-A', value: 'v', secret: { namespace: 'n', name: 's' } }] }]);
    expect(evaluateHttp(withFallback, req('GET', '/', { 'x-a': 'v' })).allowed).toBe(true);
    expect(evaluateHttp(withFallback, req('GET', '/', { 'x-a': 'w' })).allowed).toBe(false);
  });
});

describe('evaluateDns and FQDN patterns', () => {
  const dns = (patterns: string[], allowAll = false): L7Rules & { kind: 'dns' } => ({ kind: 'dns', patterns, allowAll });

  it('matchName is exact and case-insensitive, with or without the trailing dot', () => {
    const r = dns(['api.github.com.']);
    expect(evaluateDns(r, 'API.GitHub.com')).toEqual({ allowed: true, matchedPattern: 'api.github.com.' });
    expect(evaluateDns(r, 'api.github.com.').allowed).toBe(true);
    expect(evaluateDns(r, 'xapi.github.com').allowed).toBe(false);
  });

  it('"*" never crosses a dot; a leading "**." spans labels; all-stars allows every name', () => {
    expect(evaluateDns(dns(['*.github.com.']), 'api.github.com').allowed).toBe(true);
    expect(evaluateDns(dns(['*.github.com.']), 'github.com').allowed).toBe(false);
    expect(evaluateDns(dns(['*.github.com.']), 'a.b.github.com').allowed).toBe(false);
    expect(evaluateDns(dns(['**.cilium.io.']), 'a.b.cilium.io').allowed).toBe(true);
    expect(evaluateDns(dns(['**.cilium.io.']), 'cilium.io').allowed).toBe(false);
    expect(evaluateDns(dns(['*']), 'anything.at.all').allowed).toBe(true);
    expect(evaluateDns(dns([], true), 'x.y').allowed).toBe(true);
    expect(evaluateDns(dns([]), 'x.y').allowed).toBe(false);
  });

  it('pattern regexes follow the documented construction', () => {
    expect(patternRegex('*cilium.io').test('cilium.io.')).toBe(true);
    expect(patternRegex('*cilium.io').test('subcilium.io.')).toBe(true);
    expect(patternRegex('*cilium.io').test('www.cilium.io.')).toBe(false);
    expect(patternRegex('part*ial.com').test('part-extra-ial.com.')).toBe(true);
    expect(patternRegex('*').test('.')).toBe(true);
    expect(patternRegex('*').test('a.b.')).toBe(true);
    expect(patternRegex('*').test('a.b')).toBe(false);
    expect(patternRegex('a**b.com').test('axyb.com.')).toBe(true);
    expect(patternRegex('a**b.com').test('ax.yb.com.')).toBe(false);
  });
});
