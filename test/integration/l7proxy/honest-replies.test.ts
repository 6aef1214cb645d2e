/**
 * issue-6 item 3: what the client is told must be what happened. Real raw-socket clients
 * (node:net writing exact bytes) and real upstream servers that misbehave exactly as described;
 * each test asserts the bytes the client receives and what the access log and counters say.
 */

import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups, rawExchange, startProxy, startUpstream, until, type ProxyHarness } from './harness.js';
import { httpRulesPolicy, parseResponse, statusLines } from './raw-http.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Every HTTP request allowed on the upstream's port (a redirect with an empty rule). */
const ALLOW_ALL = [{}];

/**
 * An upstream speaking raw bytes: `reply(requestLine, socket)` is called once per request head
 * received (requests here carry no body) and writes whatever the test wants.
 */
async function scriptedUpstream(reply: (requestLine: string, socket: Socket) => void): Promise<{ server: Server; port: number; requestLines: string[] }> {
  const requestLines: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let buf = '';
    socket.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const line = buf.slice(0, buf.indexOf('\r\n'));
        buf = buf.slice(end + 4);
        requestLines.push(line);
        reply(line, socket);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.add(() => new Promise<void>((r) => server.close(() => r())));
  cleanups.add(() => sockets.forEach((s) => s.destroy()));
  return { server, port: (server.address() as AddressInfo).port, requestLines };
}

async function allowAllProxy(upstreamPort: number, options = {}): Promise<ProxyHarness> {
  return startProxy(cleanups, { upstreamPort, policy: httpRulesPolicy(ALLOW_ALL), options });
}

describe('issue-6 a request that closes the connection is answered, not reported as failed', () => {
  it('issue-6 Connection: close followed by more bytes: the first request gets its 200, then the connection closes', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(cleanups, h.port, 'GET /a HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: deathstar\r\n\r\n', {
      timeoutMs: 5000,
    });
    expect(r.closed).toBe(true);
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 200 OK']);
    expect(parseResponse(r.text)).toMatchObject({ headers: { connection: 'close' }, body: 'ok GET /a\n' });
    // RFC 9112 §9.6: nothing after the closing request is processed.
    expect(up.requests.map((q) => q.url)).toEqual(['/a']);
    await until(() => h.logs.length >= 1);
    expect(h.logs).toHaveLength(1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Forwarded', status: 200, path: '/a' });
    expect(h.proxy.stats()).toMatchObject({ requests: 1, forwarded: 1, malformed: 0 });
  });

  it('issue-6 Connection: close followed by garbage: still the 200, no 400', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(cleanups, h.port, 'GET /a HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n\x00\x01garbage\r\n\r\n', { timeoutMs: 5000 });
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 200 OK']);
    expect(h.proxy.stats().malformed).toBe(0);
  });

  it('issue-6 an HTTP/1.0 request without keep-alive followed by more bytes: one answer', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(cleanups, h.port, 'GET /a HTTP/1.0\r\nHost: deathstar\r\n\r\nGET /b HTTP/1.1\r\nHost: deathstar\r\n\r\n', { timeoutMs: 5000 });
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 200 OK']);
    expect(up.requests.map((q) => q.url)).toEqual(['/a']);
  });

  it('issue-6 a request pipelined behind a denied request that closes is never executed', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: httpRulesPolicy([{ method: 'GET' }]) });
    // The chunked body is not drained on a deny: the 403 closes the connection.
    const r = await rawExchange(
      cleanups,
      h.port,
      'POST /denied HTTP/1.1\r\nHost: deathstar\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /allowed HTTP/1.1\r\nHost: deathstar\r\n\r\n',
      { timeoutMs: 5000 },
    );
    expect(r.closed).toBe(true);
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 403 Forbidden']);
    // Its answer could never be delivered after the 403 closed the connection: executing it would
    // make a retrying client run it twice.
    expect(up.requests).toHaveLength(0);
    expect(h.proxy.stats()).toMatchObject({ requests: 1, denied: 1, forwarded: 0 });
  });

  it('issue-6 malformed bytes pipelined behind a forwarded request: its 200 first, then the 400, then close', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(cleanups, h.port, 'GET /a HTTP/1.1\r\nHost: deathstar\r\n\r\nGET /b HTTP/1.1\r\nHost: deathstar\r\nContent-Length: x\r\n\r\n', {
      timeoutMs: 5000,
    });
    expect(r.closed).toBe(true);
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request']);
    expect(r.text).toContain('ok GET /a\n');
    expect(up.requests.map((q) => q.url)).toEqual(['/a']);
    await until(() => h.logs.length === 2);
    expect(h.logs.map((l) => `${l.verdict} ${l.status}`).sort()).toEqual(['Error 400', 'Forwarded 200']);
    expect(h.proxy.stats()).toMatchObject({ forwarded: 1, malformed: 1 });
  });

  it('pipelined keep-alive requests are all answered, in order', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(
      cleanups,
      h.port,
      'GET /a HTTP/1.1\r\nHost: deathstar\r\n\r\nGET /b HTTP/1.1\r\nHost: deathstar\r\n\r\nGET /c HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n',
      { timeoutMs: 5000 },
    );
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect([...r.text.matchAll(/ok GET (\/\w)/g)].map((m) => m[1])).toEqual(['/a', '/b', '/c']);
  });
});

describe('issue-6 bodiless and interim responses are relayed as the RFCs frame them', () => {
  it('issue-6 304 Not Modified with Content-Length and ETag reaches the client intact; the connection stays usable', async () => {
    const up = await scriptedUpstream((line, s) => {
      if (line.startsWith('GET /cached ')) s.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 12\r\n\r\n');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
    });
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(
      cleanups,
      h.port,
      'GET /cached HTTP/1.1\r\nHost: deathstar\r\nIf-None-Match: "v1"\r\n\r\nGET /other HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n',
      { timeoutMs: 5000 },
    );
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 304 Not Modified', 'HTTP/1.1 200 OK']);
    const first = parseResponse(r.text);
    expect(first.headers).toMatchObject({ etag: '"v1"', 'content-length': '12' });
    // No content after the 304 head: the next bytes are the next response.
    expect(first.body.startsWith('HTTP/1.1 200 OK')).toBe(true);
    expect(r.text.endsWith('next')).toBe(true);
    await until(() => h.logs.length === 2);
    expect(h.logs[0]).toMatchObject({ verdict: 'Forwarded', status: 304 });
    expect(h.logs[0]?.reason).toBeUndefined();
    expect(h.proxy.stats()).toMatchObject({ forwarded: 2, upstreamErrors: 0 });
  });

  it('204 No Content loses a stray Content-Length (RFC 9110 §8.6) and carries no content', async () => {
    const up = await scriptedUpstream((line, s) => {
      if (line.startsWith('DELETE ')) s.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Deleted: yes\r\n\r\n');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
    });
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(cleanups, h.port, 'DELETE /x HTTP/1.1\r\nHost: deathstar\r\n\r\nGET /y HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n', {
      timeoutMs: 5000,
    });
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 204 No Content', 'HTTP/1.1 200 OK']);
    const first = parseResponse(r.text);
    expect(first.headers['x-deleted']).toBe('yes');
    expect(first.headers['content-length']).toBeUndefined();
    expect(first.body.startsWith('HTTP/1.1 200 OK')).toBe(true);
    await until(() => h.logs.length === 2);
    expect(h.proxy.stats().upstreamErrors).toBe(0);
  });

  it('HEAD keeps the representation\'s Content-Length and sends no content', async () => {
    const up = await scriptedUpstream((line, s) => {
      if (line.startsWith('HEAD ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
    });
    const h = await allowAllProxy(up.port);
    const r = await rawExchange(cleanups, h.port, 'HEAD /big HTTP/1.1\r\nHost: deathstar\r\n\r\nGET /y HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n', {
      timeoutMs: 5000,
    });
    expect(statusLines(r.text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(parseResponse(r.text).headers['content-length']).toBe('1234');
    expect(parseResponse(r.text).body.startsWith('HTTP/1.1 200 OK')).toBe(true);
    expect(h.proxy.stats()).toMatchObject({ forwarded: 2, upstreamErrors: 0 });
  });

  it('103 Early Hints is forwarded before the final response (RFC 9110 §15.2), but not to an HTTP/1.0 client', async () => {
    const up = await scriptedUpstream((_line, s) => {
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n');
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const h = await allowAllProxy(up.port);
    const r11 = await rawExchange(cleanups, h.port, 'GET / HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 });
    expect(statusLines(r11.text)).toEqual(['HTTP/1.1 103 Early Hints', 'HTTP/1.1 200 OK']);
    expect(r11.text).toContain('Link: </style.css>; rel=preload; as=style\r\n');
    const r10 = await rawExchange(cleanups, h.port, 'GET / HTTP/1.0\r\nHost: deathstar\r\n\r\n', { timeoutMs: 5000 });
    expect(statusLines(r10.text)).toEqual(['HTTP/1.1 200 OK']);
  });

  it('Expect: 100-continue is answered by the proxy; the body reaches the upstream without Expect', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port);
    const sock = connect({ host: '127.0.0.1', port: h.port });
    cleanups.add(() => sock.destroy());
    let text = '';
    sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
    await once(sock, 'connect');
    sock.write('PUT /upload HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    await until(() => text.includes('100 Continue'), 5000);
    sock.write('hello');
    await once(sock, 'close');
    expect(statusLines(text)).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
    expect(up.requests[0]?.body.toString()).toBe('hello');
    expect(up.requests[0]?.headers.expect).toBeUndefined();
  });
});

describe('issue-6 upstream failures say what happened (Envoy local-reply texts and response flags)', () => {
  async function closedPort(): Promise<number> {
    const s = createServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  const GET = 'GET /x HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n';
  const RESET = 'upstream connect error or disconnect/reset before headers. reset reason: ';

  it('connect refused → 503 "connection failure", UF', async () => {
    const port = await closedPort();
    const h = await allowAllProxy(port);
    const r = parseResponse((await rawExchange(cleanups, h.port, GET, { timeoutMs: 5000 })).text);
    expect(r).toMatchObject({ status: 503, body: `${RESET}connection failure` });
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Error', status: 503, upstream_failure: 'connect-failure', response_flags: 'UF' });
    expect(String(h.logs[0]?.reason)).toContain('ECONNREFUSED');
  });

  it('issue-6 reset after connect, before any response → 503 "connection termination", UC (not "connect error")', async () => {
    const up = await scriptedUpstream((_line, s) => s.resetAndDestroy());
    const h = await allowAllProxy(up.port);
    const r = parseResponse((await rawExchange(cleanups, h.port, GET, { timeoutMs: 5000 })).text);
    expect(r).toMatchObject({ status: 503, body: `${RESET}connection termination` });
    expect(up.requestLines).toEqual(['GET /x HTTP/1.1']);
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Error', status: 503, upstream_failure: 'reset', response_flags: 'UC' });
  });

  it('issue-6 the upstream closes cleanly without answering → 503 "connection termination", UC', async () => {
    const up = await scriptedUpstream((_line, s) => s.end());
    const h = await allowAllProxy(up.port);
    const r = parseResponse((await rawExchange(cleanups, h.port, GET, { timeoutMs: 5000 })).text);
    expect(r).toMatchObject({ status: 503, body: `${RESET}connection termination` });
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ upstream_failure: 'reset', response_flags: 'UC' });
  });

  it('an unparseable response → 502 "protocol error", UPE', async () => {
    const up = await scriptedUpstream((_line, s) => s.end('HTTP/1.1 abc nonsense\r\n\r\n'));
    const h = await allowAllProxy(up.port);
    const r = parseResponse((await rawExchange(cleanups, h.port, GET, { timeoutMs: 5000 })).text);
    expect(r).toMatchObject({ status: 502, body: `${RESET}protocol error` });
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ status: 502, upstream_failure: 'protocol-error', response_flags: 'UPE' });
    expect(h.proxy.stats().upstreamErrors).toBe(1);
  });

  it('the route timeout expiring before headers → 504 "upstream request timeout", UT', async () => {
    const up = await scriptedUpstream(() => undefined);
    const h = await allowAllProxy(up.port, { httpRequestTimeoutMs: 300 });
    const r = parseResponse((await rawExchange(cleanups, h.port, GET, { timeoutMs: 10_000 })).text);
    expect(r).toMatchObject({ status: 504, body: 'upstream request timeout' });
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ status: 504, upstream_failure: 'timeout', response_flags: 'UT' });
  });

  it('a reset after the response started cuts the response; the log says so', async () => {
    const up = await scriptedUpstream((_line, s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', () => setImmediate(() => s.resetAndDestroy()));
    });
    const h = await allowAllProxy(up.port);
    const raw = await rawExchange(cleanups, h.port, GET, { timeoutMs: 5000 });
    expect(raw.closed).toBe(true);
    expect(statusLines(raw.text)).toEqual(['HTTP/1.1 200 OK']);
    // Fewer bytes than the Content-Length promised: the client can tell the response is incomplete.
    expect(parseResponse(raw.text).body.length).toBeLessThan(100);
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Error', status: 200, upstream_failure: 'reset', response_flags: 'UC' });
    expect(String(h.logs[0]?.reason)).toMatch(/^upstream reset after response started/);
  });
});

describe('issue-6 the HTTP request timeout is Cilium\'s route timeout', () => {
  it('defaults to Cilium\'s --http-request-timeout of 3600 s', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port);
    expect(h.proxy.options.httpRequestTimeoutMs).toBe(3600 * 1000);
  });

  it('starts when the whole request has been received: a slow upload is not cut by it', async () => {
    const up = await startUpstream(cleanups);
    const h = await allowAllProxy(up.port, { httpRequestTimeoutMs: 1000 });
    const sock = connect({ host: '127.0.0.1', port: h.port });
    cleanups.add(() => sock.destroy());
    let text = '';
    sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
    await once(sock, 'connect');
    sock.write('PUT /upload HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 6\r\nConnection: close\r\n\r\nab');
    // The upload takes longer than the route timeout; the timer has not started yet.
    for (const part of ['cd', 'ef']) {
      await new Promise((r) => setTimeout(r, 700));
      sock.write(part);
    }
    await once(sock, 'close');
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(up.requests[0]?.body.toString()).toBe('abcdef');
  });

  it('covers the whole response: a body that never completes is cut at the timeout, UT', async () => {
    const up = await scriptedUpstream((_line, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst bytes'));
    const h = await allowAllProxy(up.port, { httpRequestTimeoutMs: 300 });
    const raw = await rawExchange(cleanups, h.port, GET_CLOSE, { timeoutMs: 10_000 });
    expect(raw.closed).toBe(true);
    expect(statusLines(raw.text)).toEqual(['HTTP/1.1 200 OK']);
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Error', status: 200, upstream_failure: 'timeout', response_flags: 'UT' });
    expect(String(h.logs[0]?.reason)).toMatch(/^upstream request timeout after response started/);
  });
});

const GET_CLOSE = 'GET /x HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n';
