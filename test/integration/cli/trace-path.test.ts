/**
 * issue-6 `policy trace` judges the HTTP path the proxy judges: normalised as Cilium's
 * http-normalize-path (dot-segments, merged slashes, encoded unreserved characters), 400 for
 * what the proxy rejects, the follow-up request of a 307 for an escaped slash.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, membrane } from './run-cli.js';

beforeAll(() => assertBuilt());

const RULE1 = 'deploy/lab/starwars/sw_l3_l4_l7_policy.yaml';

function trace(method: string, path: string): { status: number | null; out: string } {
  const r = membrane(['policy', 'trace', '--policy', RULE1, '--src', 'org=empire,class=tiefighter', '--dst', 'org=empire,class=deathstar', '--dport', '80', '--http-method', method, '--http-path', path]);
  return { status: r.status, out: r.stdout };
}

describe('issue-6 trace normalises the path as the proxy does', () => {
  it.each(['/v1/./request-landing', '/v1//request-landing', '/v1/x/../request-landing', '/v1/%72equest-landing', '/v1/request%2Dlanding'])(
    'POST %s is judged as /v1/request-landing: allowed (exit 0)',
    (path) => {
      const r = trace('POST', path);
      expect(r.out).toContain(`HTTP path ${path} is judged and forwarded as /v1/request-landing`);
      expect(r.status).toBe(0);
    },
  );

  it('a walk out of an allowed prefix is judged where it lands', () => {
    const r = trace('POST', '/v1/request-landing/../exhaust-port');
    expect(r.out).toContain('is judged and forwarded as /v1/exhaust-port');
    expect(r.status).toBe(1);
  });

  it('an encoded NUL is a 400 from the proxy: denied', () => {
    const r = trace('POST', '/v1/request-landing%00');
    expect(r.out).toContain('the proxy answers 400 Bad Request');
    expect(r.status).toBe(1);
  });

  it('an escaped slash: 307 to the normalised path, whose request is judged', () => {
    const r = trace('POST', '/v1%2Frequest-landing');
    expect(r.out).toContain('the proxy answers 307 to /v1/request-landing');
    expect(r.status).toBe(0);
  });
});
