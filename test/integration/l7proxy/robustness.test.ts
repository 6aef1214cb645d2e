import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ALLOW_ALL_HTTP, Cleanups, rawExchange, startProxy, startUpstream, until } from './harness.js';

const HOST = 'deathstar.default.svc.cluster.local';
const LANDING = `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('malformed requests are rejected, counted, and the proxy keeps serving', () => {
  // [name, bytes, status line]: a header block over the bounds is 431, as Envoy answers it.
  const cases: Array<[string, string, string?]> = [
    ['Content-Length with Transfer-Encoding', `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['Transfer-Encoding other than chunked', `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: gzip, identity\r\n\r\n`],
    ['two Host headers', `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n`],
    ['two Content-Length headers', `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n`],
    ['header block over the size bound', `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 'HTTP/1.1 431 Request Header Fields Too Large'],
    ['more header fields than the bound', `GET / HTTP/1.1\r\nHost: ${HOST}\r\n${Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, 'HTTP/1.1 431 Request Header Fields Too Large'],
    ['missing Host on HTTP/1.1', 'GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n'],
    ['garbage request line', 'HELLO\r\n\r\n'],
    ['space in the header name', `GET / HTTP/1.1\r\nHost: ${HOST}\r\nBad Header: x\r\n\r\n`],
    ['authority-form target on GET', `GET deathstar:80 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ];

  it.each(cases)('%s → 400 (or 431)', async (_name, bytes, statusLine = 'HTTP/1.1 400 Bad Request') => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    const bad = await rawExchange(cleanups, h.port, bytes);
    expect(bad.text.split('\r\n')[0]).toBe(statusLine);
    expect(bad.closed).toBe(true);
    expect(h.proxy.stats().malformed).toBe(1);
    expect(upstream.requests).toHaveLength(0);
    // On the flow stream too (membrane observe): an ERROR request and the ERROR answer with its status.
    const status = bad.text.split('\r\n')[0]!.split(' ')[1];
    expect(h.flows.map((f) => `${f.l7?.type} ${f.verdict} ${f.l7?.http?.code ?? ''}`)).toEqual(['REQUEST ERROR ', `RESPONSE ERROR ${status}`]);
    expect(h.flows.map((f) => [f.event_type.type, f.Type, f.is_reply])).toEqual([[129, 'L7', false], [129, 'L7', true]]);

    const good = await rawExchange(cleanups, h.port, LANDING);
    expect(good.text.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(upstream.requests).toHaveLength(1);
    expect(h.proxy.stats().malformed).toBe(1);
  });

  it('refuses CONNECT (it would tunnel past HTTP policy)', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    const connectReq = await rawExchange(cleanups, h.port, `CONNECT deathstar:443 HTTP/1.1\r\nHost: deathstar:443\r\n\r\n`);
    expect(connectReq.text.split('\r\n')[0]).toBe('HTTP/1.1 501 Not Implemented');
    expect(upstream.requests).toHaveLength(0);
    expect(h.proxy.stats().malformed).toBe(1);
    expect(h.flows.map((f) => `${f.l7?.type} ${f.verdict}`)).toEqual(['REQUEST ERROR', 'RESPONSE ERROR']);
    expect(h.flows[0]!.Summary).toBe('HTTP/1.1 CONNECT deathstar:443');
    expect(h.flows[1]!.Summary).toMatch(/^HTTP\/1\.1 501 \d+ms \(CONNECT deathstar:443\)$/);
    expect(h.logs.find((l) => l.status === 501)?.reason).toBe('CONNECT not supported through the L7 proxy');
  });

  it('a malformed request whose request line was read names it in its flows', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    // Refused by the parse stage: Node read it in full, Host included.
    await rawExchange(cleanups, h.port, `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n`);
    expect(h.flows[0]!.Summary).toBe(`HTTP/1.1 POST http://${HOST}/v1/request-landing`);
    expect(h.flows[1]!.Summary).toMatch(new RegExp(`^HTTP/1\\.1 400 \\d+ms \\(POST http://${HOST}/v1/request-landing\\)$`));
    // Refused by Node's parser: the request line, and the original destination for the host.
    await rawExchange(cleanups, h.port, `GET /v1/ HTTP/1.1\r\nHost: ${HOST}\r\nBad Header: x\r\n\r\n`);
    expect(h.flows[2]!.Summary).toMatch(/^HTTP\/1\.1 GET http:\/\/127\.0\.0\.1:\d+\/v1\/$/);
    // No request line at all: the flows still say 400, with no method or URL.
    await rawExchange(cleanups, h.port, 'HELLO\r\n\r\n');
    expect(h.flows.slice(4).map((f) => [f.verdict, f.l7?.http?.method, f.l7?.http?.url, f.l7?.http?.code ?? 0])).toEqual([
      ['ERROR', '', '', 0],
      ['ERROR', '', '', 400],
    ]);
  });

  it('serves Upgrade requests (h2c, websocket) as plain HTTP/1.1 with the upgrade stripped', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    const r = await rawExchange(
      cleanups,
      h.port,
      `GET /v1/ HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
    );
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(upstream.requests[0]?.headers.upgrade).toBeUndefined();
    expect(upstream.requests[0]?.headers['http2-settings']).toBeUndefined();
    expect(h.judged[0]).toMatchObject({ method: 'GET', path: '/v1/' });
  });

  it('answers 408 when a request does not arrive in time', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, options: { headersTimeoutMs: 200, requestTimeoutMs: 300 } });
    // Node checks its timeouts on a coarse timer: allow a few seconds.
    const slow = await rawExchange(cleanups, h.port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n`, { timeoutMs: 5000 });
    expect(slow.text.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(h.proxy.stats()).toMatchObject({ timeouts: 1, malformed: 0 });
    // Seen where the other local answers are: the access log and the flow stream.
    expect(h.logs.find((l) => l.status === 408)?.reason).toBe('request not received in time');
    expect(h.flows.map((f) => `${f.l7?.type} ${f.verdict} ${f.l7?.http?.code ?? ''}`)).toEqual(['REQUEST ERROR ', 'RESPONSE ERROR 408']);
  });
});

describe('connections that cannot be attributed are closed (fail closed)', () => {
  it('unknown source: closed before any response, counted, upstream untouched', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, resolveConnection: () => null });
    const r = await rawExchange(cleanups, h.port, LANDING);
    expect(r.closed).toBe(true);
    expect(r.text).toBe('');
    expect(h.proxy.stats()).toMatchObject({ unknownSource: 1, requests: 0 });
    expect(upstream.connections).toHaveLength(0);
    expect(h.judged).toHaveLength(0);
    expect(h.logs[0]).toMatchObject({ type: 'connection', verdict: 'Denied', reason: 'unknown-source' });
  });

  it('a throwing resolver is treated as unknown', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, {
      upstreamPort: upstream.port,
      resolveConnection: () => {
        throw new Error('ipcache unavailable');
      },
    });
    const r = await rawExchange(cleanups, h.port, LANDING);
    expect(r).toMatchObject({ closed: true, text: '' });
    expect(h.proxy.stats().unknownSource).toBe(1);
  });

  it('a connection made straight to the proxy port (not redirected) is refused rather than looped', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, injectOriginalDestination: false, policy: ALLOW_ALL_HTTP });
    const r = await rawExchange(cleanups, h.port, LANDING);
    expect(r).toMatchObject({ closed: true, text: '' });
    expect(h.proxy.stats().unknownSource).toBe(1);
    expect(h.resolveCalls).toHaveLength(0);
    expect(h.logs[0]).toMatchObject({ reason: 'not-redirected' });
  });
});

describe('upstream failures', () => {
  async function closedPort(): Promise<number> {
    const s = createServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  async function rawUpstream(onData: (socket: import('node:net').Socket) => void): Promise<{ server: Server; port: number }> {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => onData(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.add(() => new Promise<void>((r) => server.close(() => r())));
    const sockets = new Set<import('node:net').Socket>();
    server.on('connection', (s) => sockets.add(s));
    cleanups.add(() => sockets.forEach((s) => s.destroy()));
    return { server, port: (server.address() as AddressInfo).port };
  }

  it('connection refused → 503, counted, ERROR response flow', async () => {
    const h = await startProxy(cleanups, { upstreamPort: await closedPort(), policy: ALLOW_ALL_HTTP });
    const r = await rawExchange(cleanups, h.port, LANDING);
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(r.text.endsWith('upstream connect error or disconnect/reset before headers. reset reason: connection failure')).toBe(true);
    expect(h.proxy.stats()).toMatchObject({ upstreamErrors: 1, forwarded: 0 });
    await until(() => h.logs.length === 1);
    expect(h.flows.map((f) => `${f.l7?.type} ${f.verdict} ${f.l7?.http?.code ?? ''}`)).toEqual(['REQUEST FORWARDED ', 'RESPONSE ERROR 503']);
    expect(h.logs[0]).toMatchObject({ verdict: 'Error', status: 503 });
  });

  it('connectUpstream throwing → 503, upstream untouched', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, {
      upstreamPort: upstream.port,
      policy: ALLOW_ALL_HTTP,
      connectUpstream: () => {
        throw new Error('no fd for you');
      },
    });
    const r = await rawExchange(cleanups, h.port, LANDING);
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(h.proxy.stats().upstreamErrors).toBe(1);
    expect(upstream.connections).toHaveLength(0);
    await until(() => h.logs.length === 1);
    expect(String(h.logs[0]?.reason)).toContain('no fd for you');
  });

  it('an unparseable upstream response → 502', async () => {
    const up = await rawUpstream((s) => s.end('HTTP/1.1 abc nonsense\r\n\r\n'));
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: ALLOW_ALL_HTTP });
    const r = await rawExchange(cleanups, h.port, LANDING);
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 502 Bad Gateway');
    expect(h.proxy.stats().upstreamErrors).toBe(1);
  });

  it('upstream resets before answering → 503', async () => {
    const up = await rawUpstream((s) => s.resetAndDestroy());
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: ALLOW_ALL_HTTP });
    const r = await rawExchange(cleanups, h.port, LANDING);
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
  });

  it('upstream silent past the timeout → 504', async () => {
    const up = await rawUpstream(() => undefined);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: ALLOW_ALL_HTTP, options: { httpRequestTimeoutMs: 300 } });
    const r = await rawExchange(cleanups, h.port, LANDING, { timeoutMs: 5000 });
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 504 Gateway Timeout');
    expect(h.proxy.stats().upstreamErrors).toBe(1);
  });

  it('upstream dying mid-body cuts the downstream response (no forged completion)', async () => {
    const up = await rawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
      setTimeout(() => s.destroy(), 50);
    });
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: ALLOW_ALL_HTTP });
    const c = new Client(`http://127.0.0.1:${h.port}`);
    cleanups.add(() => c.destroy());
    const res = await c.request({ path: '/v1/request-landing', method: 'POST', headers: { host: HOST } });
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Error', status: 200 });
    expect(h.proxy.stats()).toMatchObject({ forwarded: 1, upstreamErrors: 1 });
  });

  it('a client that goes away mid-upload aborts the upstream request', async () => {
    let upstreamAborted = false;
    const upstream = await startUpstream(
      cleanups,
      (req) => {
        req.on('aborted', () => (upstreamAborted = true));
        req.on('error', () => (upstreamAborted = true));
        req.resume();
      },
      { buffer: false },
    );
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    const sock = connect({ host: '127.0.0.1', port: h.port });
    cleanups.add(() => sock.destroy());
    sock.on('error', () => undefined);
    sock.write(`POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`);
    await until(() => upstream.requests.length === 1);
    sock.destroy();
    await until(() => upstreamAborted && h.logs.length === 1, 3000);
    expect(h.logs[0]).toMatchObject({ verdict: 'Error', reason: 'downstream connection closed' });
    expect(h.proxy.stats().upstreamErrors).toBe(0);
  });
});
