/**
 * issue-6 item 2: a path rule cannot be walked around. A real static file server (Python's
 * http.server, which resolves `..`, `%2e%2e`, `%2f` itself) serves /secret.txt and /t/a.txt; the
 * policy allows only `GET /t/.*`. Every spelling of /t/../secret.txt must be denied (403) or
 * rejected (400), or redirected (307, Cilium's UNESCAPE_AND_REDIRECT) to a path that is then
 * denied; the server must never hand out the secret through the proxy, and what it receives is
 * exactly the path the policy judged.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanups, rawExchange, startProxy, startUpstream, until, type ProxyHarness } from './harness.js';
import { httpRulesPolicy, parseResponse } from './raw-http.js';

const SECRET = 'the-death-star-plans';
const A_TXT = 'contents of /t/a.txt';

interface StaticServer {
  port: number;
  /** Request lines the server logged, e.g. `GET /t/a.txt HTTP/1.1`. */
  requestLines: string[];
  child: ChildProcess;
}

/** python3 -m http.server on loopback, port chosen by the kernel; killed by PID afterwards. */
async function startStaticServer(root: string): Promise<StaticServer> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  const requestLines: string[] = [];
  let out = '';
  child.stderr?.on('data', (c: Buffer) => {
    for (const m of c.toString('latin1').matchAll(/"([A-Z]+ [^"]* HTTP\/1\.[01])"/g)) requestLines.push(m[1] as string);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`python3 http.server did not start: ${out}`)), 10_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /port (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python3 http.server exited ${code}: ${out}`)));
  });
  return { port, requestLines, child };
}

let root: string;
let server: StaticServer;
const cleanups = new Cleanups();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'membrane-static-'));
  mkdirSync(join(root, 't'));
  writeFileSync(join(root, 'secret.txt'), SECRET);
  writeFileSync(join(root, 't', 'a.txt'), A_TXT);
  server = await startStaticServer(root);
});

afterAll(() => {
  if (server?.child.pid !== undefined && server.child.exitCode === null) process.kill(server.child.pid, 'SIGTERM');
  rmSync(root, { recursive: true, force: true });
});

afterEach(() => cleanups.run());

async function get(port: number, target: string): Promise<ReturnType<typeof parseResponse>> {
  const r = await rawExchange(cleanups, port, `GET ${target} HTTP/1.1\r\nHost: deathstar\r\nConnection: close\r\n\r\n`, { timeoutMs: 5000 });
  expect(r.closed).toBe(true);
  return parseResponse(r.text);
}

async function proxyFor(rules: ReadonlyArray<Record<string, string>>, options = {}): Promise<ProxyHarness> {
  return startProxy(cleanups, { upstreamPort: server.port, policy: httpRulesPolicy(rules), options });
}

const WALKS = [
  '/t/../secret.txt',
  '/t/%2e%2e/secret.txt',
  '/t/%2E%2E/secret.txt',
  '/t/.%2e/secret.txt',
  '/t/%2e./secret.txt',
  '/t/./../secret.txt',
  '/t/a/../../secret.txt',
  '/t/..//secret.txt',
  '/t/../secret.txt?download=1',
  '/t/%2e%2e/%73ecret.txt',
  'http://deathstar/t/../secret.txt',
  'http://deathstar/t/%2e%2e/secret.txt',
];

const ESCAPED_SLASH_WALKS = ['/t/..%2fsecret.txt', '/t/..%2Fsecret.txt', '/t/%2e%2e%2fsecret.txt', '/t%2f..%2fsecret.txt', '/t/..%5csecret.txt', '/t/..%5Csecret.txt'];

describe('issue-6 path normalisation: a path rule cannot be walked around', () => {
  it('the static server itself serves the secret for these spellings (so the test can fail)', async () => {
    for (const target of ['/t/../secret.txt', '/t/%2e%2e/secret.txt', '/t/..%2fsecret.txt', '/t//../secret.txt']) {
      const r = await get(server.port, target);
      expect(r.body, target).toBe(SECRET);
    }
  });

  it.each(WALKS)('issue-6 %s is denied with 403 and never reaches the server', async (target) => {
    const h = await proxyFor([{ method: 'GET', path: '/t/.*' }]);
    const before = server.requestLines.length;
    const r = await get(h.port, target);
    expect(r.status).toBe(403);
    expect(r.body).toBe('Access denied\r\n');
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Denied', status: 403, path: expect.stringMatching(/^\/secret\.txt(\?download=1)?$/) });
    expect(server.requestLines.length).toBe(before);
  });

  it.each(ESCAPED_SLASH_WALKS)('issue-6 %s (escaped slash) is redirected to the normalised path, which is then denied', async (target) => {
    const h = await proxyFor([{ method: 'GET', path: '/t/.*' }]);
    const before = server.requestLines.length;
    const r = await get(h.port, target);
    expect(r.status).toBe(307);
    expect(r.headers.location).toBe('/secret.txt');
    expect(r.body).toBe('');
    const followed = await get(h.port, r.headers.location as string);
    expect(followed.status).toBe(403);
    await until(() => h.logs.length === 2);
    expect(h.logs[0]).toMatchObject({ verdict: 'Redirected', status: 307, location: '/secret.txt' });
    expect(h.logs[1]).toMatchObject({ verdict: 'Denied', path: '/secret.txt' });
    expect(server.requestLines.length).toBe(before);
    // The redirect is on the flow stream too: the request as sent, then the 307 (Cilium: a local
    // answer is a Request and a Response entry, both forwarded); then the followed request's DROPPED.
    expect(h.flows.map((f) => `${f.l7?.type} ${f.verdict} ${f.l7?.http?.code ?? ''}`)).toEqual(['REQUEST FORWARDED ', 'RESPONSE FORWARDED 307', 'REQUEST DROPPED ', 'RESPONSE FORWARDED 403']);
    expect(h.flows[0]!.Summary).toBe(`HTTP/1.1 GET http://deathstar${target}`);
    expect(h.flows[1]!.Summary).toMatch(/^HTTP\/1\.1 307 \d+ms \(GET http:\/\/deathstar\/.*\)$/);
  });

  it.each([
    ['/t//../secret.txt', '/t/secret.txt'],
    ['/t/%252e%252e/secret.txt', '/t/%252e%252e/secret.txt'],
    ['/t/..;/secret.txt', '/t/..;/secret.txt'],
  ])('issue-6 %s is allowed as %s, and that is exactly what the server is asked for (no secret)', async (target, judged) => {
    const h = await proxyFor([{ method: 'GET', path: '/t/.*' }]);
    const before = server.requestLines.length;
    const r = await get(h.port, target);
    expect(r.status).toBe(404);
    expect(r.body).not.toContain(SECRET);
    await until(() => h.logs.length === 1 && server.requestLines.length === before + 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Forwarded', path: judged });
    // The access log names what the client sent only when it differs from what was judged.
    expect(h.logs[0]?.original_path).toBe(target === judged ? undefined : target);
    expect(server.requestLines[before]).toBe(`GET ${judged} HTTP/1.1`);
  });

  it.each(['/t/./a.txt', '/t//a.txt', '/t/%61.txt', '/t/x/../a.txt', '//t///a.txt'])(
    'issue-6 %s is allowed and served /t/a.txt; flow, log and upstream all show /t/a.txt',
    async (target) => {
      const h = await proxyFor([{ method: 'GET', path: '/t/.*' }]);
      const before = server.requestLines.length;
      const r = await get(h.port, target);
      expect(r.status).toBe(200);
      expect(r.body).toBe(A_TXT);
      await until(() => h.logs.length === 1 && server.requestLines.length === before + 1);
      expect(h.logs[0]).toMatchObject({ verdict: 'Forwarded', status: 200, path: '/t/a.txt', original_path: target });
      expect(server.requestLines[before]).toBe('GET /t/a.txt HTTP/1.1');
      expect(h.flows[0]?.l7?.http?.url).toBe('http://deathstar/t/a.txt');
    },
  );

  it('issue-6 an encoded NUL or a malformed escape is rejected with 400', async () => {
    const h = await proxyFor([{ method: 'GET', path: '/t/.*' }]);
    for (const target of ['/t/%00/../../secret.txt', '/t/%zz/../../secret.txt', '/t/%%32%65%2e/secret.txt']) {
      const r = await get(h.port, target);
      expect(r.status, target).toBe(400);
    }
    expect(h.proxy.stats().malformed).toBe(3);
  });

  it('--http-normalize-path=false forwards the path as sent (Cilium: "set this to false only with caution")', async () => {
    const h = await proxyFor([{ method: 'GET', path: '/t/.*' }], { normalizePath: false });
    const r = await get(h.port, '/t/../secret.txt');
    // The walk-around the default closes: the rule matched "/t/../secret.txt", the server resolved it.
    expect(r.status).toBe(200);
    expect(r.body).toBe(SECRET);
  });
});

describe('issue-6 equivalent spellings of an allowed path are allowed (Star Wars rule1)', () => {
  it.each(['/v1/./request-landing', '/v1//request-landing', '/v1/x/../request-landing', '/v1/request%2Dlanding'])(
    'POST %s lands, upstream sees /v1/request-landing',
    async (target) => {
      const up = await startUpstream(cleanups);
      const h = await startProxy(cleanups, { upstreamPort: up.port, policy: httpRulesPolicy([{ method: 'POST', path: '/v1/request-landing' }]) });
      const r = await rawExchange(cleanups, h.port, `POST ${target} HTTP/1.1\r\nHost: deathstar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, { timeoutMs: 5000 });
      const res = parseResponse(r.text);
      expect(res.status).toBe(200);
      expect(res.body).toBe('Ship landed\n');
      expect(up.requests.map((q) => q.url)).toEqual(['/v1/request-landing']);
    },
  );
});
