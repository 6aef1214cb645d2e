/**
 * Issue 9, the fast data path: what the per-request savings must not change for a user. The
 * policy state is kept per connection only while its revision says nothing changed; access-log
 * sampling leaves out forwarded requests only, never a denial, and never a flow.
 */
import { pino } from 'pino';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpProxy, type L7ProxyDeps } from '../../../src/l7proxy/index.js';
import { PolicyState } from '../../support/policy-state.js';
import { ALLOW_ALL_HTTP, Cleanups, STARWARS_L7, startProxy, startUpstream, until } from './harness.js';

const HOST = 'deathstar.default.svc.cluster.local';
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

function client(port: number): Client {
  const c = new Client(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 10_000 });
  cleanups.add(() => c.destroy());
  return c;
}

async function send(c: Client, method: string, path: string): Promise<number> {
  const res = await c.request({ method, path, headers: { host: HOST } });
  await res.body.text();
  return res.statusCode;
}

describe('issue-9 per-connection policy state', () => {
  it('issue-9 a connection reads its policy state once, and again (with the new verdict) after the revision changes', async () => {
    const upstream = await startUpstream(cleanups);
    const allowAll = new PolicyState(ALLOW_ALL_HTTP);
    const rule1 = new PolicyState(STARWARS_L7);
    let current = allowAll;
    let revision = 1;
    let reads = 0;
    const h = await startProxy(cleanups, {
      upstreamPort: upstream.port,
      l7Flow: () => {
        reads++;
        return current.flow('tiefighter', 'deathstar');
      },
      policyRevision: () => revision,
    });
    const c = client(h.port);
    expect([await send(c, 'PUT', '/v1/exhaust-port'), await send(c, 'PUT', '/v1/exhaust-port'), await send(c, 'GET', '/v1')]).toEqual([200, 200, 200]);
    expect(reads).toBe(1);

    current = rule1;
    revision++;
    expect(await send(c, 'PUT', '/v1/exhaust-port')).toBe(403);
    expect(await send(c, 'POST', '/v1/request-landing')).toBe(200);
    expect(reads).toBe(2);
    expect(upstream.connections).toHaveLength(1);
  });

  it('issue-9 without a revision the policy state is read for every request (a change applies to the next one)', async () => {
    const upstream = await startUpstream(cleanups);
    const allowAll = new PolicyState(ALLOW_ALL_HTTP);
    const rule1 = new PolicyState(STARWARS_L7);
    let current = allowAll;
    let reads = 0;
    const h = await startProxy(cleanups, {
      upstreamPort: upstream.port,
      l7Flow: () => {
        reads++;
        return current.flow('tiefighter', 'deathstar');
      },
    });
    const c = client(h.port);
    expect(await send(c, 'PUT', '/v1/exhaust-port')).toBe(200);
    current = rule1;
    expect(await send(c, 'PUT', '/v1/exhaust-port')).toBe(403);
    expect(reads).toBe(2);
  });

  it('issue-9 a policy state that throws denies the request, and is read again for the next one', async () => {
    const upstream = await startUpstream(cleanups);
    const rule1 = new PolicyState(STARWARS_L7);
    let fail = true;
    const h = await startProxy(cleanups, {
      upstreamPort: upstream.port,
      l7Flow: () => {
        if (fail) throw new Error('endpoint regenerating');
        return rule1.flow('tiefighter', 'deathstar');
      },
      policyRevision: () => 7,
    });
    const c = client(h.port);
    expect(await send(c, 'POST', '/v1/request-landing')).toBe(403);
    fail = false;
    expect(await send(c, 'POST', '/v1/request-landing')).toBe(200);
    await until(() => h.logs.length === 2);
    expect(h.logs[0]).toMatchObject({ verdict: 'Denied', reason: 'policy error: endpoint regenerating' });
    expect(upstream.requests).toHaveLength(1);
  });
});

/** deathstar lands ships only with `X-Has-Force: true` (a header rule: verdicts depend on headers). */
const FORCE_HEADER = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: force-header
  namespace: default
spec:
  endpointSelector:
    matchLabels: { org: empire, class: deathstar }
  ingress:
  - fromEndpoints:
    - matchLabels: { org: empire }
    toPorts:
    - ports: [{ port: "80", protocol: TCP }]
      rules:
        http:
        - method: POST
          path: /v1/request-landing
          headers: ['X-Has-Force: true']
`;

describe('issue-9 a repeated request on a kept policy state', () => {
  it('issue-9 the same method, host and path get the same verdict; another one is judged anew', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policyRevision: () => 1 });
    const c = client(h.port);
    const statuses = [];
    for (const [method, path] of [['POST', '/v1/request-landing'], ['POST', '/v1/request-landing'], ['PUT', '/v1/exhaust-port'], ['PUT', '/v1/exhaust-port'], ['POST', '/v1/request-landing']] as const) {
      statuses.push(await send(c, method, path));
    }
    expect(statuses).toEqual([200, 200, 403, 403, 200]);
    expect(upstream.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /v1/request-landing', 'POST /v1/request-landing', 'POST /v1/request-landing']);
  });

  it('issue-9 under a header rule every request is judged on its own headers', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: FORCE_HEADER, policyRevision: () => 1 });
    const c = client(h.port);
    const land = async (force: boolean): Promise<number> => {
      const res = await c.request({ method: 'POST', path: '/v1/request-landing', headers: force ? { host: HOST, 'x-has-force': 'true' } : { host: HOST } });
      await res.body.text();
      return res.statusCode;
    };
    expect([await land(false), await land(true), await land(true), await land(false)]).toEqual([403, 200, 200, 403]);
  });
});

describe('issue-9 access-log sampling (accessLogSampleRate)', () => {
  it('issue-9 a rate of 0.25 logs one forwarded request in four; every denial is logged; every request has its flows', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, options: { accessLogSampleRate: 0.25 } });
    const c = client(h.port);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await send(c, 'POST', '/v1/request-landing'));
    for (let i = 0; i < 2; i++) statuses.push(await send(c, 'PUT', '/v1/exhaust-port'));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 403, 403]);
    await until(() => h.flows.length === 20 && h.logs.length === 4);
    expect(h.logs.map((l) => `${l.verdict} ${l.status}`)).toEqual(['Forwarded 200', 'Forwarded 200', 'Denied 403', 'Denied 403']);
    expect(h.proxy.stats()).toMatchObject({ requests: 10, forwarded: 8, denied: 2, accessLogSampledOut: 6 });
  });

  it('issue-9 the default logs every request; a rate outside (0, 1] is refused', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const c = client(h.port);
    for (let i = 0; i < 3; i++) await send(c, 'POST', '/v1/request-landing');
    await until(() => h.logs.length === 3);
    expect(h.proxy.stats().accessLogSampledOut).toBe(0);
    const unused = (): never => {
      throw new Error('not reached');
    };
    const deps: L7ProxyDeps = { resolveConnection: () => null, l7Flow: unused, connectUpstream: unused, onFlow: () => undefined, accessLog: pino({ level: 'silent' }) };
    for (const rate of [0, -1, 1.5, Number.NaN]) expect(() => new HttpProxy(deps, { accessLogSampleRate: rate })).toThrow(RangeError);
  });
});

describe('issue-9 access-log lines of a connection (source and destination bound once per connection)', () => {
  it('issue-9 every line names its own connection: two keep-alive clients, forwarded and denied, each line with its client port', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const a = client(h.port);
    const b = client(h.port);
    expect([await send(a, 'POST', '/v1/request-landing'), await send(b, 'PUT', '/v1/exhaust-port'), await send(a, 'PUT', '/v1/exhaust-port'), await send(b, 'POST', '/v1/request-landing')]).toEqual([200, 403, 403, 200]);
    await until(() => h.logs.length === 4);
    const ports = h.resolveCalls.map((c) => c.srcPort);
    expect(ports).toHaveLength(2);
    const dst = `127.0.0.1:${upstream.port}`;
    expect(h.logs.map((l) => [l.verdict, (l.source as { address: string }).address, (l.destination as { address: string }).address])).toEqual([
      ['Forwarded', `127.0.0.1:${ports[0]}`, dst],
      ['Denied', `127.0.0.1:${ports[1]}`, dst],
      ['Denied', `127.0.0.1:${ports[0]}`, dst],
      ['Forwarded', `127.0.0.1:${ports[1]}`, dst],
    ]);
    // The whole record, as before: both endpoints with pod and identity, and the request's own fields.
    expect(h.logs[0]).toMatchObject({
      type: 'http',
      status: 200,
      method: 'POST',
      path: '/v1/request-landing',
      source: { namespace: 'default', pod: 'tiefighter', identity: 25698 },
      destination: { namespace: 'default', pod: 'deathstar', identity: 6822 },
      msg: 'http',
    });
  });
});

describe('issue-9 route timeouts kept by one shared timer', () => {
  it('issue-9 each request gets its own route timeout: two silent upstream answers are 504, requests finishing in between are untouched, and the proxy keeps timing later ones', async () => {
    const upstream = await startUpstream(cleanups, (req, res) => {
      if (req.url === '/slow') return; // never answered
      res.end('ok\n');
    });
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP, options: { httpRequestTimeoutMs: 300 } });
    const get = async (path: string): Promise<number> => {
      const c = client(h.port);
      const res = await c.request({ method: 'GET', path, headers: { host: HOST } });
      await res.body.text();
      return res.statusCode;
    };
    const slowA = get('/slow');
    const fast1 = await get('/fast');
    const slowB = get('/slow');
    const fast2 = await get('/fast');
    expect([await slowA, fast1, await slowB, fast2]).toEqual([504, 200, 504, 200]);
    // After both expired: the timer is armed again for the next request.
    expect(await get('/slow')).toBe(504);
    expect(await get('/fast')).toBe(200);
    await until(() => h.logs.length === 6);
    expect(h.logs.filter((l) => l.response_flags === 'UT')).toHaveLength(3);
  });
});
