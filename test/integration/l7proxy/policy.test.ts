import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { formatCompact, type Flow } from '../../../src/observe/index.js';
import { Cleanups, rawExchange, startProxy, startUpstream, until } from './harness.js';

const HOST = 'deathstar.default.svc.cluster.local';
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

function client(port: number): Client {
  const c = new Client(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 10_000 });
  cleanups.add(() => c.destroy());
  return c;
}

describe('policy verdicts', () => {
  it('forwards an allowed request to the original destination and reports it', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const res = await client(h.port).request({ path: '/v1/request-landing', method: 'POST', headers: { host: HOST }, body: 'x' });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('Ship landed\n');

    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]).toMatchObject({ method: 'POST', url: '/v1/request-landing', body: Buffer.from('x') });
    expect(upstream.requests[0]?.headers.host).toBe(HOST);
    expect(h.judged[0]).toMatchObject({ method: 'POST', path: '/v1/request-landing', host: HOST });

    await until(() => h.logs.length === 1);
    const [req, resp] = h.flows as [Flow, Flow];
    expect(h.flows).toHaveLength(2);
    expect(req).toMatchObject({
      verdict: 'FORWARDED',
      Type: 'L7',
      is_reply: false,
      l7: { type: 'REQUEST', http: { method: 'POST', url: `http://${HOST}/v1/request-landing`, protocol: 'HTTP/1.1' } },
      source: { pod_name: 'tiefighter', identity: 25698 },
      destination: { pod_name: 'deathstar', identity: 6822 },
      IP: { source: '127.0.0.1', destination: '127.0.0.1' },
      l4: { TCP: { destination_port: upstream.port } },
      traffic_direction: 'INGRESS',
      node_name: 'test-node',
      proxy_port: h.port,
      ingress_allowed_by: [{ name: 'rule1', namespace: 'default' }],
    });
    expect(resp).toMatchObject({ verdict: 'FORWARDED', is_reply: true, l7: { type: 'RESPONSE', http: { code: 200 } }, source: { pod_name: 'deathstar' } });
    expect(resp.l7?.latency_ns).toBeGreaterThan(0);
    expect(formatCompact(req)).toMatch(
      new RegExp(`: default/tiefighter:\\d+ \\(ID:25698\\) -> default/deathstar:${upstream.port} \\(ID:6822\\) http-request FORWARDED \\(HTTP/1.1 POST http://${HOST}/v1/request-landing\\)$`),
    );
    expect(formatCompact(resp)).toMatch(/ <- default\/deathstar:\d+ \(ID:6822\) http-response FORWARDED \(HTTP\/1\.1 200 \d+ms \(POST /);

    expect(h.logs[0]).toMatchObject({
      type: 'http',
      verdict: 'Forwarded',
      status: 200,
      method: 'POST',
      host: HOST,
      path: '/v1/request-landing',
      source: { namespace: 'default', pod: 'tiefighter', identity: 25698 },
      destination: { pod: 'deathstar', identity: 6822, address: `127.0.0.1:${upstream.port}` },
      policies: ['default/rule1'],
    });
    expect(typeof h.logs[0]?.time).toBe('number');
    expect(typeof h.logs[0]?.latency_ms).toBe('number');
    expect(h.proxy.stats()).toMatchObject({ requests: 1, forwarded: 1, denied: 0, upstreamErrors: 0, malformed: 0 });
  });

  it('denies with 403 "Access denied\\r\\n" and never contacts the upstream', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const raw = await rawExchange(cleanups, h.port, `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    const [head, body] = raw.text.split('\r\n\r\n') as [string, string];
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(head.toLowerCase()).toContain('content-type: text/plain');
    expect(head.toLowerCase()).toContain('content-length: 15');
    expect(Buffer.from(body, 'latin1')).toEqual(Buffer.from('Access denied\r\n'));

    expect(upstream.requests).toHaveLength(0);
    expect(upstream.connections).toHaveLength(0);
    expect(h.connectCalls).toHaveLength(0);

    await until(() => h.logs.length === 1);
    const [req, resp] = h.flows as [Flow, Flow];
    expect(req).toMatchObject({ verdict: 'DROPPED', l7: { type: 'REQUEST', http: { method: 'PUT' } }, ingress_denied_by: [{ name: 'rule1', namespace: 'default' }] });
    expect(resp).toMatchObject({ verdict: 'FORWARDED', l7: { type: 'RESPONSE', http: { code: 403 } } });
    expect(formatCompact(req)).toMatch(/http-request DROPPED \(HTTP\/1\.1 PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)$/);
    expect(formatCompact(resp)).toMatch(/http-response FORWARDED \(HTTP\/1\.1 403 \d+ms \(PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)\)$/);
    expect(h.logs[0]).toMatchObject({ verdict: 'Denied', status: 403, method: 'PUT', path: '/v1/exhaust-port', reason: 'ingress: HTTP PUT /v1/exhaust-port matches no HTTP rule' });
    expect(h.proxy.stats()).toMatchObject({ requests: 1, denied: 1, forwarded: 0 });
  });

  it('keeps one keep-alive connection across allowed and denied requests', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    cleanups.add(() => agent.destroy());
    const clientPorts = new Set<number>();
    const send = (method: string, path: string, body?: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: h.port, method, path, agent, headers: { host: HOST } }, (res) => {
          clientPorts.add(res.socket.localPort ?? 0);
          let text = '';
          res.setEncoding('latin1');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });

    const results = [];
    results.push(await send('POST', '/v1/request-landing', 'a'));
    results.push(await send('PUT', '/v1/exhaust-port', 'boom'));
    results.push(await send('POST', '/v1/request-landing'));
    results.push(await send('GET', '/v1/'));
    results.push(await send('POST', '/v1/request-landing', 'b'.repeat(1000)));
    expect(results.map((r) => r.status)).toEqual([200, 403, 200, 403, 200]);
    expect(results[1]?.body).toBe('Access denied\r\n');
    expect(results[0]?.body).toBe('Ship landed\n');

    expect(clientPorts.size).toBe(1); // one downstream connection
    expect(h.resolveCalls).toHaveLength(1); // resolved once per connection
    expect(upstream.requests.map((r) => `${r.method} ${r.url} ${r.body.length}`)).toEqual([
      'POST /v1/request-landing 1',
      'POST /v1/request-landing 0',
      'POST /v1/request-landing 1000',
    ]);
    expect(upstream.connections).toHaveLength(1); // and one upstream connection, reused
    expect(h.proxy.stats()).toMatchObject({ requests: 5, forwarded: 3, denied: 2 });
    expect(h.flows.map((f) => `${f.l7?.type} ${f.verdict}`)).toEqual([
      'REQUEST FORWARDED',
      'RESPONSE FORWARDED',
      'REQUEST DROPPED',
      'RESPONSE FORWARDED',
      'REQUEST FORWARDED',
      'RESPONSE FORWARDED',
      'REQUEST DROPPED',
      'RESPONSE FORWARDED',
      'REQUEST FORWARDED',
      'RESPONSE FORWARDED',
    ]);
  });

  it('fails closed when the policy callback throws', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, {
      upstreamPort: upstream.port,
      l7Flow: () => {
        throw new Error('engine exploded');
      },
    });
    const res = await client(h.port).request({ path: '/v1/request-landing', method: 'POST', headers: { host: HOST } });
    expect(res.statusCode).toBe(403);
    expect(await res.body.text()).toBe('Access denied\r\n');
    expect(upstream.requests).toHaveLength(0);
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Denied', reason: 'policy error: engine exploded' });
  });

  it('answers Expect: 100-continue only after the policy allowed the request', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const denied = await rawExchange(cleanups, h.port, `PUT /v1/exhaust-port HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
    expect(denied.text.startsWith('HTTP/1.1 403 Forbidden')).toBe(true);
    expect(denied.text).not.toContain('100 Continue');
    expect(denied.closed).toBe(true); // body never read: the connection cannot be reused

    const allowed = await new Promise<{ status: number; body: string; sawContinue: boolean }>((resolve, reject) => {
      let sawContinue = false;
      const req = httpRequest(
        { host: '127.0.0.1', port: h.port, method: 'POST', path: '/v1/request-landing', headers: { host: HOST, expect: '100-continue', 'content-length': 5 } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, sawContinue }));
        },
      );
      req.on('continue', () => {
        sawContinue = true;
        req.end('hello');
      });
      req.on('error', reject);
    });
    expect(allowed).toEqual({ status: 200, body: 'Ship landed\n', sawContinue: true });
    expect(upstream.requests.map((r) => r.body.toString())).toEqual(['hello']);
    expect(upstream.requests[0]?.headers.expect).toBeUndefined();
  });

  it('normalises an absolute-form target so policy and upstream see the same request', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const raw = await rawExchange(
      cleanups,
      h.port,
      `POST http://deathstar.example/v1/request-landing?x=1 HTTP/1.1\r\nHost: decoy.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    expect(raw.text.startsWith('HTTP/1.1 200')).toBe(false); // path with a query does not match the full-match rule
    expect(h.judged[0]).toMatchObject({ path: '/v1/request-landing?x=1', host: 'deathstar.example' });

    const ok = await rawExchange(cleanups, h.port, `POST http://deathstar.example/v1/request-landing HTTP/1.1\r\nHost: decoy.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    expect(ok.text.startsWith('HTTP/1.1 200')).toBe(true);
    expect(upstream.requests[0]).toMatchObject({ url: '/v1/request-landing' });
    expect(upstream.requests[0]?.headers.host).toBe('deathstar.example');
  });
});
