/**
 * issue-8 serverNames through the TLS passthrough listener, end to end on loopback: a real HTTPS
 * server (node:https, certificate from a CA made by openssl for this test), real clients (curl
 * --resolve, openssl s_client, node:tls), the listener with an injected original destination (the
 * test stands in for the datapath's redirect), and verdicts from real CiliumNetworkPolicy YAML
 * resolved by the policy module. The clients verify the server's certificate: the handshake
 * completes end to end through the splice, nothing is terminated in between.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TlsPassthrough, type TlsPassthroughOptions } from '../../../src/l7proxy/index.js';
import { PolicyState } from '../../support/policy-state.js';
import type { Flow } from '../../../src/observe/index.js';
import { Cleanups, DEATHSTAR, TIEFIGHTER } from './harness.js';

const run = promisify(execFile);

/** mediabot-style: tiefighter may reach deathstar:443 only if the TLS handshake names an allowed server. */
const SNI_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: sni, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: ["api.github.com", "*.api.github.com"]
`;

let dir: string;
let ca: string;
let server: Server;
let serverPort: number;
/** TLS handshakes the real server completed, with the SNI it saw. */
const handshakes: Array<string | false> = [];
const BIG = Buffer.alloc(4 * 1024 * 1024, 'x');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'membrane-tls-'));
  const o = (f: string): string => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', o('ca.key'), '-out', o('ca.pem'), '-days', '1', '-subj', '/CN=membrane test CA'], { stdio: 'ignore' });
  execFileSync('openssl', ['req', ...ec, '-keyout', o('srv.key'), '-out', o('srv.csr'), '-subj', '/CN=api.github.com'], { stdio: 'ignore' });
  writeFileSync(o('san.ext'), 'subjectAltName=DNS:api.github.com,DNS:v2.api.github.com,DNS:support.github.com\n');
  execFileSync('openssl', ['x509', '-req', '-in', o('srv.csr'), '-CA', o('ca.pem'), '-CAkey', o('ca.key'), '-CAcreateserial', '-out', o('srv.pem'), '-days', '1', '-extfile', o('san.ext')], { stdio: 'ignore' });
  ca = o('ca.pem');
  server = createServer({ key: readFileSync(o('srv.key')), cert: readFileSync(o('srv.pem')) }, (req, res) => {
    if (req.url === '/big') {
      res.end(BIG);
      return;
    }
    res.end(`hello ${req.headers.host ?? ''}\n`);
  });
  server.on('secureConnection', (s) => handshakes.push((s as unknown as { servername: string | false }).servername));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  serverPort = (server.address() as AddressInfo).port;
}, 30_000);

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

interface Harness {
  port: number;
  proxy: TlsPassthrough;
  flows: Flow[];
  logs: Array<Record<string, unknown>>;
}

async function startListener(options: TlsPassthroughOptions = {}): Promise<Harness> {
  const state = new PolicyState(SNI_POLICY);
  const flows: Flow[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const accessLog = pino({ level: 'info', base: null }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const proxy = new TlsPassthrough(
    {
      resolveConnection: () => ({ srcIdentity: TIEFIGHTER.identity, dstIdentity: DEATHSTAR.identity, source: TIEFIGHTER, destination: DEATHSTAR, direction: 'EGRESS' }),
      // The server's ephemeral port stands for deathstar:443.
      l7Flow: () => state.flow('tiefighter', 'deathstar', 443, 'src'),
      connectUpstream: (_ctx, conn) => connect({ host: conn.dstIp, port: conn.dstPort }),
      originalDestination: () => ({ ip: '127.0.0.1', port: serverPort }),
      onFlow: (f) => flows.push(f),
      accessLog,
      nodeName: 'test-node',
    },
    options,
  );
  const port = await proxy.listen({ port: 0, host: '127.0.0.1' });
  cleanups.add(() => proxy.close());
  return { port, proxy, flows, logs };
}

async function curl(port: number, name: string, path = '/'): Promise<{ code: number; out: string }> {
  try {
    const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', ca, '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}${path}`], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: r.stdout };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, out: err.stderr };
  }
}

/** Waits until the connection is closed by the peer; resolves how it ended. */
function closed(s: Socket): Promise<'reset' | 'closed'> {
  return new Promise((resolve) => {
    let how: 'reset' | 'closed' = 'closed';
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') how = 'reset';
    });
    s.on('close', () => resolve(how));
  });
}

describe('issue-8 TLS passthrough: serverNames without termination', () => {
  it('a listed SNI passes: curl verifies the real server certificate through the splice', async () => {
    const h = await startListener();
    const before = handshakes.length;
    const r = await curl(h.port, 'api.github.com');
    expect(r).toEqual({ code: 0, out: `hello api.github.com:${h.port}\n` });
    expect(handshakes.slice(before)).toEqual(['api.github.com']);
    expect(h.logs.find((l) => l.type === 'tls')).toMatchObject({ verdict: 'Forwarded', sni: 'api.github.com', policies: ['default/sni'], direction: 'EGRESS' });
    expect(h.flows).toHaveLength(1);
    expect(h.flows[0]).toMatchObject({ verdict: 'FORWARDED', Type: 'L7', l7: { type: 'REQUEST' }, Summary: 'TLS ClientHello SNI api.github.com', egress_allowed_by: [{ name: 'sni', namespace: 'default' }] });
    expect(h.proxy.stats).toMatchObject({ connections: 1, allowed: 1, denied: 0 });
  });

  it('a wildcard entry matches one label; node:tls with an upper-case servername passes too', async () => {
    const h = await startListener();
    expect((await curl(h.port, 'v2.api.github.com')).code).toBe(0);
    const body = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: h.port, servername: 'API.GITHUB.COM', ca: readFileSync(ca) }, () => {
        s.write('GET / HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n');
      });
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(body).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(body).toMatch(/hello api\.github\.com\n$/);
    expect(h.proxy.stats.allowed).toBe(2);
  });

  it('an unlisted SNI is refused with a reset; the server never sees the connection', async () => {
    const h = await startListener();
    const before = handshakes.length;
    const r = await curl(h.port, 'support.github.com');
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/reset|SSL_ERROR_SYSCALL|Connection reset/i);
    expect(handshakes.length).toBe(before);
    expect(h.logs.find((l) => l.type === 'tls')).toMatchObject({
      verdict: 'Denied',
      sni: 'support.github.com',
      reason: 'egress: TLS ClientHello with SNI support.github.com matches no serverNames entry',
    });
    expect(h.flows[0]).toMatchObject({ verdict: 'DROPPED', Summary: 'TLS ClientHello SNI support.github.com', egress_denied_by: [{ name: 'sni', namespace: 'default' }] });
    expect(h.proxy.stats).toMatchObject({ denied: 1, allowed: 0 });
  });

  it('a ClientHello without SNI (openssl s_client -noservername) is refused', async () => {
    const h = await startListener();
    const before = handshakes.length;
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${h.port}`, '-noservername', '-CAfile', ca], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.add(() => p.kill());
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
    expect(code).not.toBe(0);
    expect(out).toMatch(/no peer certificate available/);
    expect(handshakes.length).toBe(before);
    expect(h.logs.find((l) => l.type === 'tls')).toMatchObject({ verdict: 'Denied', sni: null, reason: 'egress: TLS ClientHello without SNI matches no serverNames entry' });
    expect(h.flows[0]).toMatchObject({ verdict: 'DROPPED', Summary: 'TLS ClientHello without SNI' });
  });

  it('openssl s_client with a listed -servername completes the handshake and verifies the chain', async () => {
    const h = await startListener();
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${h.port}`, '-servername', 'api.github.com', '-verify_hostname', 'api.github.com', '-CAfile', ca], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.add(() => p.kill());
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stdin.end('GET / HTTP/1.0\r\nHost: api.github.com\r\n\r\n');
    await new Promise((resolve) => p.on('exit', resolve));
    expect(out).toMatch(/Verify return code: 0 \(ok\)/);
  });

  it('a slow, partial ClientHello times out and is refused (fail closed)', async () => {
    const h = await startListener({ clientHelloTimeoutMs: 300 });
    // A record and handshake header announcing a 196-byte ClientHello, 9 bytes of it, then silence.
    const hello = Buffer.from([22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3, ...new Array<number>(9).fill(7)]);
    const c = connect({ host: '127.0.0.1', port: h.port });
    const ended = closed(c);
    c.write(hello);
    expect(['reset', 'closed']).toContain(await ended);
    expect(h.logs.find((l) => l.type === 'tls')).toMatchObject({ verdict: 'Denied', reason: 'no complete ClientHello within 300 ms' });
    expect(h.proxy.stats.timeouts).toBe(1);
    expect(h.flows[0]).toMatchObject({ verdict: 'DROPPED', Summary: 'TLS no complete ClientHello within 300 ms' });
  });

  it('a garbage first record (plain HTTP on the TLS port) is refused at once', async () => {
    const h = await startListener();
    const c = connect({ host: '127.0.0.1', port: h.port });
    const ended = closed(c);
    c.write('GET / HTTP/1.1\r\nHost: api.github.com\r\n\r\n');
    expect(await ended).toBe('reset');
    expect(h.logs.find((l) => l.type === 'tls')).toMatchObject({ verdict: 'Denied', reason: 'malformed ClientHello: not a TLS handshake record (first byte 0x47)' });
    expect(h.proxy.stats.malformed).toBe(1);
  });

  it('handshakes still pending are bounded: beyond the cap a new connection is reset at once, the others still pass', async () => {
    const h = await startListener({ maxPendingHandshakes: 2 });
    const silent = [connect({ host: '127.0.0.1', port: h.port }), connect({ host: '127.0.0.1', port: h.port })];
    for (const s of silent) cleanups.add(() => s.destroy());
    await Promise.all(silent.map((s) => new Promise((r) => s.once('connect', r))));
    while (h.proxy.stats.connections < 2) await new Promise((r) => setTimeout(r, 5));
    const third = connect({ host: '127.0.0.1', port: h.port });
    expect(await closed(third)).toBe('reset');
    expect(h.proxy.stats.overloaded).toBe(1);
    for (const s of silent) s.destroy();
    // Once they are gone, a real client passes again.
    while (h.proxy.stats.active > 0) await new Promise((r) => setTimeout(r, 5));
    expect(await curl(h.port, 'api.github.com')).toMatchObject({ code: 0 });
  });

  it('a connection that ends before its ClientHello is complete is refused', async () => {
    const h = await startListener();
    const c = connect({ host: '127.0.0.1', port: h.port });
    const ended = closed(c);
    c.end(Buffer.from([22, 3, 1, 0, 50, 1]));
    await ended;
    expect(h.logs.find((l) => l.type === 'tls')).toMatchObject({ verdict: 'Denied', reason: 'connection ended before a complete ClientHello' });
  });

  it('the splice carries a 4 MiB response intact (backpressure both ways)', async () => {
    const h = await startListener();
    const r = await run('curl', ['-sS', '--max-time', '20', '--cacert', ca, '--resolve', `api.github.com:${h.port}:127.0.0.1`, `https://api.github.com:${h.port}/big`], {
      maxBuffer: 16 * 1024 * 1024,
      encoding: 'buffer',
    });
    expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(createHash('sha256').update(BIG).digest('hex'));
  });
});
