/**
 * issue-10: HTTP/2 (prior knowledge), gRPC and WebSocket through the L7 proxy, in process with real
 * servers and clients: the lab's gRPC door manager and WebSocket echo (src/lab/apps), grpc-js,
 * Node's http2 client, curl, and undici's WebSocket client. Every stream is judged by the same
 * CiliumNetworkPolicy HTTP rules as HTTP/1.1 (Cilium's gRPC guide shape).
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect as h2connect, constants as h2c, createServer as createH2Server, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { once } from 'node:events';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { credentials, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { WebSocket } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { doorManagerService } from '../../../src/lab/apps/cloudcity.js';
import { serveDoorManager } from '../../../src/lab/apps/door-manager.js';
import { serveWebSocketEcho } from '../../../src/lab/apps/websocket-echo.js';
import { Cleanups, rawExchange, startProxy, startUpstream, type ProxyHarness } from './harness.js';

/** deathstar:80 (the harness's destination) takes these gRPC methods and the /ws path only. */
const GRPC_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: door-rules}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: "POST", path: "/cloudcity.DoorManager/GetName"}
        - {method: "POST", path: "/cloudcity.DoorManager/RequestMaintenance"}
        - {method: "POST", path: "/cloudcity.DoorManager/WatchStatus"}
        - {method: "GET", path: "/ws"}
        - {method: "GET", path: "/public/.*"}
        - {method: "POST", path: "/upload"}
`;

type Unary = (req: Record<string, unknown>, cb: (err: ServiceError | null, reply: Record<string, unknown>) => void) => void;
type DoorClient = Client & Record<string, Unary>;

let cleanups: Cleanups;
afterEach(async () => {
  await cleanups.run();
});

function doorClient(port: number): DoorClient {
  const Ctor = doorManagerService();
  const c = new Ctor(`127.0.0.1:${port}`, credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 }) as DoorClient;
  cleanups.add(() => c.close());
  return c;
}

function unary(c: DoorClient, method: string, req: Record<string, unknown>): Promise<{ err: ServiceError | null; reply: Record<string, unknown> }> {
  return new Promise((resolve) => (c[method] as Unary).call(c, req, (err, reply) => resolve({ err, reply })));
}

async function grpcProxy(opts: { httpRequestTimeoutMs?: number } = {}): Promise<ProxyHarness> {
  cleanups = cleanups ?? new Cleanups();
  const { server, port } = await serveDoorManager(0, () => undefined, '127.0.0.1');
  cleanups.add(() => server.forceShutdown());
  return startProxy(cleanups, { upstreamPort: port, policy: GRPC_POLICY, options: { httpRequestTimeoutMs: opts.httpRequestTimeoutMs ?? 3_600_000 } });
}

/** A plain h2c upstream: answers `ok METHOD PATH`; POST bodies are counted and echoed as a length. */
async function h2Upstream(): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = createH2Server();
  server.on('stream', (stream, headers) => {
    seen.push(`${String(headers[':method'])} ${String(headers[':path'])}`);
    let n = 0;
    stream.on('data', (c: Buffer) => (n += c.length));
    stream.on('end', () => {
      if (stream.closed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(headers[':method'] === 'POST' ? `got ${n} bytes\n` : `ok ${String(headers[':method'])} ${String(headers[':path'])}\n`);
    });
    stream.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.add(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
      }),
  );
  return { port: (server.address() as AddressInfo).port, seen };
}

const execFileP = promisify(execFile);
async function run(args: string[]): Promise<string> {
  const r = await execFileP('curl', args, { encoding: 'utf8' }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  return r.stdout;
}

function h2Session(port: number): ClientHttp2Session {
  const s = h2connect(`http://127.0.0.1:${port}`);
  s.on('error', () => undefined);
  cleanups.add(() => s.destroy());
  return s;
}

function h2Get(s: ClientHttp2Session, path: string, method = 'GET', body?: Buffer): Promise<{ status: number; body: string; headers: IncomingHttpHeaders; rst?: number }> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': method, ':path': path }, { endStream: body === undefined });
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(headers[':status']), body: Buffer.concat(chunks).toString(), headers }));
    req.on('error', reject);
    if (body) req.end(body);
  });
}

/** curl in a child process (asynchronously: the proxy runs in this process). */
async function curl(args: string[]): Promise<{ status: string; body: string }> {
  const out = await run(['-s', '--max-time', '5', '-w', '\n%{http_code} %{http_version}', ...args]);
  const nl = out.lastIndexOf('\n');
  return { body: out.slice(0, nl), status: out.slice(nl + 1) };
}

describe('issue-10 gRPC through the proxy (HTTP/2 prior knowledge)', () => {
  it('an allowed method returns its reply; a denied one is PERMISSION_DENIED "Access denied", never a reset', async () => {
    cleanups = new Cleanups();
    const h = await grpcProxy();
    const c = doorClient(h.port);
    const ok = await unary(c, 'GetName', { door_id: 1 });
    expect(ok.err).toBeNull();
    expect(ok.reply.name).toBe('Spaceport Door #1');
    const denied = await unary(c, 'SetAccessCode', { door_id: 1, access_code: 999 });
    expect(denied.err?.code).toBe(status.PERMISSION_DENIED);
    expect(denied.err?.details).toBe('Access denied');
    // The same connection keeps serving after the denial.
    expect((await unary(c, 'GetName', { door_id: 2 })).reply.name).toBe('Spaceport Door #2');

    const lines = h.logs.filter((l) => l.type === 'http');
    expect(lines.map((l) => [l.verdict, l.status, l.path, l.protocol])).toEqual([
      ['Forwarded', 200, '/cloudcity.DoorManager/GetName', 'HTTP/2'],
      ['Denied', 403, '/cloudcity.DoorManager/SetAccessCode', 'HTTP/2'],
      ['Forwarded', 200, '/cloudcity.DoorManager/GetName', 'HTTP/2'],
    ]);
    const requests = h.flows.filter((f) => f.l7?.type === 'REQUEST');
    expect(requests.map((f) => [f.verdict, f.l7?.http?.protocol, f.l7?.http?.method])).toEqual([
      ['FORWARDED', 'HTTP/2', 'POST'],
      ['DROPPED', 'HTTP/2', 'POST'],
      ['FORWARDED', 'HTTP/2', 'POST'],
    ]);
    // One upstream HTTP/2 session carried both allowed calls.
    expect(h.connectCalls).toHaveLength(1);
  });

  it('the lab door client prints the guide\'s answers and exits when done', async () => {
    cleanups = new Cleanups();
    const h = await grpcProxy();
    const client = new URL('../../../dist/lab/apps/door-client.js', import.meta.url).pathname;
    const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      execFileP(process.execPath, [client, `127.0.0.1:${h.port}`, ...args], { encoding: 'utf8', timeout: 10_000 }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
      );
    expect(await run(['GetName', '1'])).toEqual({ code: 0, stdout: 'Door name is: Spaceport Door #1\n', stderr: '' });
    expect(await run(['SetAccessCode', '1', '999'])).toEqual({ code: 1, stdout: '', stderr: 'Error: PERMISSION_DENIED (7): Access denied\n' });
  });

  it('a server-streaming call outlives --http-request-timeout (it bounds the wait for headers only)', async () => {
    cleanups = new Cleanups();
    const h = await grpcProxy({ httpRequestTimeoutMs: 300 });
    const c = doorClient(h.port);
    const seqs: number[] = [];
    const stream = (c as unknown as { WatchStatus(r: unknown): NodeJS.ReadableStream }).WatchStatus({ door_id: 1, count: 8, interval_ms: 100 });
    const ended = new Promise<string>((resolve) => {
      stream.on('data', (r: { seq: number }) => seqs.push(r.seq));
      stream.on('error', (e: ServiceError) => resolve(`error ${e.code} ${e.details}`));
      stream.on('end', () => resolve('end'));
    });
    expect(await ended).toBe('end');
    expect(seqs).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('a 4 MiB message passes both ways; a client cancelling a stream leaves the connection serving', async () => {
    cleanups = new Cleanups();
    const h = await grpcProxy();
    const c = doorClient(h.port);
    const big = await unary(c, 'RequestMaintenance', { door_id: 1, maint_description: 'x'.repeat(4 * 1024 * 1024) });
    expect(big.err).toBeNull();
    expect(big.reply.success).toBe(true);
    // RST_STREAM(CANCEL) from the client in the middle of a stream.
    const call = (c as unknown as { WatchStatus(r: unknown): NodeJS.ReadableStream & { cancel(): void } }).WatchStatus({ door_id: 1, count: 1000, interval_ms: 20 });
    const cancelled = new Promise<number>((resolve) => {
      call.on('data', () => call.cancel());
      call.on('error', (e: ServiceError) => resolve(e.code));
    });
    expect(await cancelled).toBe(status.CANCELLED);
    expect((await unary(c, 'GetName', { door_id: 1 })).reply.name).toBe('Spaceport Door #1');
    expect(h.logs.filter((l) => l.type === 'http' && l.path === '/cloudcity.DoorManager/WatchStatus')).toHaveLength(1);
  });
});

describe('issue-10 HTTP/2 streams are judged one by one', () => {
  it('curl --http2-prior-knowledge: allowed 200 over HTTP/2, denied 403 "Access denied"', async () => {
    cleanups = new Cleanups();
    const up = await h2Upstream();
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: GRPC_POLICY });
    expect(await curl(['--http2-prior-knowledge', `http://127.0.0.1:${h.port}/public/a`])).toEqual({ status: '200 2', body: 'ok GET /public/a\n' });
    expect(await curl(['--http2-prior-knowledge', `http://127.0.0.1:${h.port}/private`])).toEqual({ status: '403 2', body: 'Access denied\r\n' });
    // The path is normalised before it is judged and forwarded, as for HTTP/1.1.
    expect(await curl(['--http2-prior-knowledge', '--path-as-is', `http://127.0.0.1:${h.port}/public/../private`])).toEqual({ status: '403 2', body: 'Access denied\r\n' });
    expect(await curl(['--http2-prior-knowledge', '--path-as-is', `http://127.0.0.1:${h.port}/public//b`])).toEqual({ status: '200 2', body: 'ok GET /public/b\n' });
    expect(up.seen).toEqual(['GET /public/a', 'GET /public/b']);
  });

  it('streams answered without a policy decision (307 escaped slash, 400) are flows too, as over HTTP/1.1', async () => {
    cleanups = new Cleanups();
    const up = await h2Upstream();
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: GRPC_POLICY });
    expect((await curl(['--http2-prior-knowledge', '--path-as-is', `http://127.0.0.1:${h.port}/public%2fa`])).status).toBe('307 2');
    expect((await curl(['--http2-prior-knowledge', '--path-as-is', `http://127.0.0.1:${h.port}/a%00b`])).status).toBe('400 2');
    expect(h.flows.map((f) => `${f.l7?.type} ${f.verdict} ${f.l7?.http?.code ?? ''} ${f.l7?.http?.url}`)).toEqual([
      `REQUEST FORWARDED  http://127.0.0.1:${h.port}/public%2fa`,
      `RESPONSE FORWARDED 307 http://127.0.0.1:${h.port}/public%2fa`,
      `REQUEST ERROR  http://127.0.0.1:${h.port}/a%00b`,
      `RESPONSE ERROR 400 http://127.0.0.1:${h.port}/a%00b`,
    ]);
    expect(h.flows.every((f) => f.l7?.http?.protocol === 'HTTP/2')).toBe(true);
    expect(up.seen).toEqual([]);
  });

  it('a denied stream beside an allowed upload on the same connection leaves the upload whole', async () => {
    cleanups = new Cleanups();
    const up = await h2Upstream();
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: GRPC_POLICY });
    const s = h2Session(h.port);
    const upload = s.request({ ':method': 'POST', ':path': '/upload' });
    const uploaded = new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      upload.on('data', (c: Buffer) => chunks.push(c));
      upload.on('end', () => resolve(Buffer.concat(chunks).toString()));
      upload.on('error', reject);
    });
    upload.write(Buffer.alloc(256 * 1024, 1));
    const denied = await h2Get(s, '/admin');
    upload.end(Buffer.alloc(256 * 1024, 2));
    expect(denied.status).toBe(403);
    expect(denied.body).toBe('Access denied\r\n');
    expect(await uploaded).toBe(`got ${512 * 1024} bytes\n`);
    // And many streams at once on one connection (more than SETTINGS_MAX_CONCURRENT_STREAMS).
    const many = await Promise.all(Array.from({ length: 300 }, (_, i) => h2Get(s, i % 2 === 0 ? `/public/${i}` : `/secret/${i}`)));
    expect(many.filter((r) => r.status === 200)).toHaveLength(150);
    expect(many.filter((r) => r.status === 403)).toHaveLength(150);
    expect(h.proxy.stats()).toMatchObject({ denied: 151 });
  });

  it('HTTP/1.1 on the same port is served as before', async () => {
    cleanups = new Cleanups();
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: GRPC_POLICY });
    expect(await curl([`http://127.0.0.1:${h.port}/public/x`])).toEqual({ status: '200 1.1', body: 'ok GET /public/x\n' });
    expect(await curl([`http://127.0.0.1:${h.port}/private`])).toEqual({ status: '403 1.1', body: 'Access denied\r\n' });
  });
});

describe('issue-10 WebSocket through the proxy', () => {
  async function wsProxy(): Promise<ProxyHarness> {
    cleanups = new Cleanups();
    const { server, port } = await serveWebSocketEcho(0, 'echo', () => undefined, '127.0.0.1');
    cleanups.add(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    return startProxy(cleanups, { upstreamPort: port, policy: GRPC_POLICY });
  }

  it('an allowed path is upgraded and frames pass both ways; a denied path gets 403', async () => {
    const h = await wsProxy();
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/ws`);
    cleanups.add(() => ws.close());
    const replies: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => ws.send('hello');
      ws.onmessage = (ev) => {
        replies.push(String(ev.data));
        if (replies.length === 1) ws.send('again');
        else resolve();
      };
      ws.onerror = () => reject(new Error('websocket error'));
    });
    expect(replies).toEqual(['echo: hello', 'echo: again']);
    const upgrade = h.logs.find((l) => l.type === 'http' && l.path === '/ws');
    expect(upgrade).toMatchObject({ verdict: 'Forwarded', status: 101, method: 'GET' });

    const raw = await run(['-s', '-i', '--max-time', '3', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `http://127.0.0.1:${h.port}/admin`]);
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(raw.endsWith('\r\n\r\nAccess denied\r\n')).toBe(true);
  });

  it('a 101 the client did not ask for (or to another protocol) is a 502, never spliced', async () => {
    cleanups = new Cleanups();
    // A rogue server: switches to h2c whatever it was asked, then answers anything sent after.
    const rogue = createNetServer((c) => {
      c.once('data', () => {
        c.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
        c.on('data', () => c.write('SMUGGLED'));
      });
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', () => r()));
    cleanups.add(() => new Promise<void>((r) => rogue.close(() => r())));
    const h = await startProxy(cleanups, { upstreamPort: (rogue.address() as AddressInfo).port, policy: GRPC_POLICY });
    const next = 'GET /admin HTTP/1.1\r\nHost: deathstar\r\n\r\n';
    for (const offer of ['Upgrade: h2c', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']) {
      const r = await rawExchange(cleanups, h.port, `GET /ws HTTP/1.1\r\nHost: deathstar\r\nConnection: Upgrade\r\n${offer}\r\n\r\n${next}`, { timeoutMs: 2000 });
      expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 502 Bad Gateway');
      expect(r.text).not.toContain('SMUGGLED');
    }
  });

  it('a plain request to the WebSocket server on an allowed path gets its own answer (426)', async () => {
    const h = await wsProxy();
    expect(await curl([`http://127.0.0.1:${h.port}/ws`])).toEqual({ status: '426 1.1', body: 'Upgrade Required\n' });
  });
});

describe('issue-10 HTTP/2 hostile inputs', () => {
  /** A raw client: the preface, then `frame` repeated; resolves when the proxy closes the connection. */
  async function flood(port: number, frame: Buffer, count: number): Promise<{ closed: boolean; goaway: boolean }> {
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const r = await rawExchange(cleanups, port, Buffer.concat([preface, settings, ...Array.from({ length: count }, () => frame)]), { timeoutMs: 5000 });
    // GOAWAY: type 7 on stream 0.
    const bytes = Buffer.from(r.text, 'latin1');
    let goaway = false;
    for (let i = 0; i + 9 <= bytes.length; ) {
      const len = bytes.readUIntBE(i, 3);
      if (bytes[i + 3] === 7) goaway = true;
      i += 9 + len;
    }
    return { closed: r.closed, goaway };
  }

  it('a SETTINGS flood and a PING flood get the flooding connection closed; other clients are served', async () => {
    cleanups = new Cleanups();
    const up = await h2Upstream();
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: GRPC_POLICY });
    const settingsFlood = await flood(h.port, Buffer.from([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]), 20_000);
    expect(settingsFlood).toEqual({ closed: true, goaway: true });
    const ping = Buffer.concat([Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0]), Buffer.alloc(8)]);
    const pingFlood = await flood(h.port, ping, 20_000);
    expect(pingFlood.closed).toBe(true);
    expect(await h2Get(h2Session(h.port), '/public/after')).toMatchObject({ status: 200, body: 'ok GET /public/after\n' });
  });

  it('a client resetting streams as fast as it opens them does not stop the proxy serving others', async () => {
    cleanups = new Cleanups();
    const up = await h2Upstream();
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: GRPC_POLICY });
    const s = h2Session(h.port);
    for (let i = 0; i < 200; i++) {
      const r = s.request({ ':method': 'GET', ':path': `/public/${i}` });
      r.on('error', () => undefined);
      r.close(h2c.NGHTTP2_CANCEL);
    }
    const other = h2Session(h.port);
    expect(await h2Get(other, '/public/after')).toMatchObject({ status: 200, body: 'ok GET /public/after\n' });
  });
});
