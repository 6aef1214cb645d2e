import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { FlowContext } from '../../../src/l7proxy/index.js';
import { ALLOW_ALL_HTTP, Cleanups, DEATHSTAR, endpoint, rawExchange, startProxy, startUpstream, until } from './harness.js';

const HOST = 'deathstar.default.svc.cluster.local';
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('streamed bodies', () => {
  it('streams a large chunked upload and a large download through, both intact', async () => {
    const SIZE = 24 * 1024 * 1024;
    const download = randomBytes(SIZE);
    let yieldedAtFirstUpstreamChunk = -1;
    const upstream = await startUpstream(
      cleanups,
      (req, res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (c: Buffer) => {
          if (bytes === 0) yieldedAtFirstUpstreamChunk = yielded;
          bytes += c.length;
          hash.update(c);
        });
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upload-sha256': hash.digest('hex'), 'x-upload-bytes': String(bytes) });
          // Chunked, in pieces: the proxy must pass it on as it comes.
          let off = 0;
          const pump = (): void => {
            while (off < download.length) {
              const piece = download.subarray(off, off + 256 * 1024);
              off += piece.length;
              if (!res.write(piece)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          pump();
        });
      },
      { buffer: false },
    );
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });

    const upload = randomBytes(SIZE);
    const CHUNK = 512 * 1024;
    let yielded = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for (let off = 0; off < upload.length; off += CHUNK) {
        yielded++;
        yield upload.subarray(off, off + CHUNK);
      }
    }
    const c = new Client(`http://127.0.0.1:${h.port}`);
    cleanups.add(() => c.destroy());
    const res = await c.request({ path: '/upload', method: 'PUT', headers: { host: HOST }, body: Readable.from(body()) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-upload-bytes']).toBe(String(SIZE));
    expect(res.headers['x-upload-sha256']).toBe(sha256(upload));
    const got = Buffer.from(await res.body.arrayBuffer());
    expect(got.length).toBe(SIZE);
    expect(sha256(got)).toBe(sha256(download));
    // Streamed, not buffered: the upstream saw the first bytes long before the client produced the last.
    expect(yieldedAtFirstUpstreamChunk).toBeGreaterThan(0);
    expect(yieldedAtFirstUpstreamChunk).toBeLessThan(SIZE / CHUNK / 2);
    expect(upstream.requests[0]?.headers['transfer-encoding']).toBe('chunked');
  });

  it('keeps Content-Length framing for sized bodies and relays HEAD, 204 and 304 without bodies', async () => {
    const upstream = await startUpstream(cleanups, (req, res, body) => {
      if (req.url === '/none') {
        res.writeHead(204);
        res.end();
      } else if (req.url === '/cached') {
        res.writeHead(304, { etag: '"x"' });
        res.end();
      } else {
        res.writeHead(200, { 'content-length': String(body.length + 3) });
        res.end(req.method === 'HEAD' ? undefined : Buffer.concat([Buffer.from('ok:'), body]));
      }
    });
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    const c = new Client(`http://127.0.0.1:${h.port}`);
    cleanups.add(() => c.destroy());
    const post = await c.request({ path: '/echo', method: 'POST', headers: { host: HOST, 'content-length': '5' }, body: 'hello' });
    expect(post.headers['content-length']).toBe('8');
    expect(await post.body.text()).toBe('ok:hello');
    expect(upstream.requests[0]?.headers['content-length']).toBe('5');
    const head = await c.request({ path: '/echo', method: 'HEAD', headers: { host: HOST } });
    expect(head.statusCode).toBe(200);
    expect(await head.body.text()).toBe('');
    const none = await c.request({ path: '/none', method: 'GET', headers: { host: HOST } });
    expect(none.statusCode).toBe(204);
    await none.body.dump();
    const cached = await c.request({ path: '/cached', method: 'GET', headers: { host: HOST } });
    expect(cached.statusCode).toBe(304);
    expect(cached.headers.etag).toBe('"x"');
    await cached.body.dump();
    expect(h.proxy.stats()).toMatchObject({ forwarded: 4, upstreamErrors: 0 });
  });
});

describe('headers', () => {
  it('strips hop-by-hop headers both ways and forwards the rest (traceparent unchanged)', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const upstream = await startUpstream(cleanups, (_req, res) => {
      res.writeHead(200, [
        ['Connection', 'X-Resp-Hop'],
        ['X-Resp-Hop', 'drop me'],
        ['Keep-Alive', 'timeout=1'],
        ['Proxy-Authenticate', 'Basic'],
        ['X-Resp-Keep', 'keep me'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
      ].flat());
      res.end('done');
    });
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    const raw = await rawExchange(
      cleanups,
      h.port,
      [
        'GET /v1/hops HTTP/1.1',
        `Host: ${HOST}`,
        'Connection: close, X-Hop',
        'X-Hop: secret-for-the-proxy',
        'Keep-Alive: timeout=5',
        'Proxy-Authorization: Basic Zm9vOmJhcg==',
        'Proxy-Connection: keep-alive',
        'TE: trailers',
        'Trailer: X-Checksum',
        `traceparent: ${traceparent}`,
        'tracestate: vendor=1',
        'X-Keep-Me: yes',
        'Authorization: Bearer t0ken',
        '',
        '',
      ].join('\r\n'),
    );
    const seen = upstream.requests[0];
    expect(seen).toBeDefined();
    const names = (seen?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const hop of ['x-hop', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding']) {
      expect(names, hop).not.toContain(hop);
    }
    // undici manages the upstream connection itself: at most its own keep-alive header.
    expect(seen?.headers.connection ?? 'keep-alive').toBe('keep-alive');
    expect(seen?.headers.traceparent).toBe(traceparent);
    expect(seen?.headers.tracestate).toBe('vendor=1');
    expect(seen?.headers['x-keep-me']).toBe('yes');
    expect(seen?.headers.authorization).toBe('Bearer t0ken');
    expect(seen?.rawHeaders).toContain('X-Keep-Me'); // case kept

    const head = raw.text.split('\r\n\r\n')[0]?.toLowerCase() ?? '';
    expect(head).not.toContain('x-resp-hop');
    expect(head).not.toContain('proxy-authenticate');
    expect(head).not.toContain('keep-alive: timeout=1');
    expect(head).toContain('x-resp-keep: keep me');
    expect(head.match(/set-cookie/g)).toHaveLength(2);

    // The flow knows the trace, and secrets are redacted in it.
    await until(() => h.flows.length === 2);
    expect(h.flows[0]?.trace_context).toEqual({ parent: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' } });
    const auth = h.flows[0]?.l7?.http?.headers?.find((x) => x.key === 'authorization');
    expect(auth?.value).toBe('HUBBLE_REDACTED');
    expect(h.logs.find((l) => l.type === 'http')?.trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});

describe('upstream pools', () => {
  it('opens one pool per source identity and never shares an upstream connection across identities', async () => {
    const upstream = await startUpstream(cleanups);
    const identities: Record<string, number> = { '127.0.0.1': 1001, '127.0.0.2': 1002 };
    const h = await startProxy(cleanups, {
      upstreamPort: upstream.port,
      policy: ALLOW_ALL_HTTP,
      resolveConnection: (conn): FlowContext => {
        const id = identities[conn.srcIp] ?? 0;
        return { srcIdentity: id, dstIdentity: DEATHSTAR.identity, source: endpoint(`pod-${id}`, id), destination: DEATHSTAR, direction: 'EGRESS' };
      },
    });
    const get = (localAddress: string, path: string): Promise<{ status: number; upstreamPort: string }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: h.port, localAddress, path, headers: { host: HOST } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, upstreamPort: String(res.headers['x-upstream-port'] ?? '') }));
        });
        req.on('error', reject);
        req.end();
      });

    for (let i = 0; i < 3; i++) {
      expect((await get('127.0.0.1', `/a${i}`)).status).toBe(200);
      expect((await get('127.0.0.2', `/b${i}`)).status).toBe(200);
    }

    expect(h.connectCalls.map((c) => c.ctx.srcIdentity).sort()).toEqual([1001, 1002]);
    expect(h.proxy.stats().upstreamPools).toBe(2);
    // Exactly one upstream connection per identity, each reused for that identity only.
    expect(upstream.connections).toHaveLength(2);
    const portByPath = new Map(upstream.requests.map((r) => [r.url, r.remotePort]));
    const aPorts = new Set([0, 1, 2].map((i) => portByPath.get(`/a${i}`)));
    const bPorts = new Set([0, 1, 2].map((i) => portByPath.get(`/b${i}`)));
    expect(aPorts.size).toBe(1);
    expect(bPorts.size).toBe(1);
    expect([...aPorts][0]).not.toBe([...bPorts][0]);
    // Flows carry the right identity for each client.
    const reqFlows = h.flows.filter((f) => f.l7?.type === 'REQUEST');
    expect(reqFlows.filter((f) => f.source.identity === 1001)).toHaveLength(3);
    expect(reqFlows.filter((f) => f.source.identity === 1002)).toHaveLength(3);
  });

  it('different original destinations get different pools', async () => {
    const a = await startUpstream(cleanups);
    const b = await startUpstream(cleanups);
    let next = a.port;
    const h = await startProxy(cleanups, { upstreamPort: a.port, policy: ALLOW_ALL_HTTP, originalDestination: () => ({ ip: '127.0.0.1', port: next }) });
    const send = (): Promise<{ text: string }> => rawExchange(cleanups, h.port, `GET /x HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    expect((await send()).text.startsWith('HTTP/1.1 200')).toBe(true);
    next = b.port;
    expect((await send()).text.startsWith('HTTP/1.1 200')).toBe(true);
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(1);
    expect(h.proxy.stats().upstreamPools).toBe(2);
    expect(h.connectCalls.map((c) => c.conn.dstPort)).toEqual([a.port, b.port]);
  });

  it.each([
    [false, 1],
    [true, 2],
  ])('poolBySourceAddress=%s: two pods of one identity share %i pool(s)', async (bySource, pools) => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP, options: { poolBySourceAddress: bySource } });
    for (const localAddress of ['127.0.0.1', '127.0.0.3']) {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: h.port, localAddress, path: '/', headers: { host: HOST } }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
    }
    expect(h.proxy.stats().upstreamPools).toBe(pools);
    expect(h.connectCalls.map((c) => c.conn.srcIp)).toEqual(bySource ? ['127.0.0.1', '127.0.0.3'] : ['127.0.0.1']);
  });
});
