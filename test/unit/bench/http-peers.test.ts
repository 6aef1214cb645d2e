/**
 * The HTTP benchmark's peers and observability sink (bench/lib/http-peers.ts, bench/lib/obs-sink.ts):
 * HAProxy and nginx accept the configurations the benchmark writes (HTTP/1.1 and h2c frontends),
 * and the OTLP sink answers an exporter, counts what it got and scrapes metrics only while told to.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { haproxyConf, proxyNginxConf } from '../../../bench/lib/http-peers.js';
import { startSink, type SinkStats } from '../../../bench/lib/obs-sink.js';

const has = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const dirs: string[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function listening(s: Server): Promise<number> {
  servers.push(s);
  return new Promise((resolve) => (s.listening ? resolve((s.address() as AddressInfo).port) : s.once('listening', () => resolve((s.address() as AddressInfo).port))));
}

describe('bench HTTP peers', () => {
  it.skipIf(!has('haproxy'))('HAProxy accepts the configuration with its h2c frontend and h2c backend', () => {
    const d = mkdtempSync(join(tmpdir(), 'membrane-peers-test-'));
    dirs.push(d);
    writeFileSync(join(d, 'haproxy.cfg'), haproxyConf('127.0.0.1:28080', '127.0.0.1:28081', { listen: '127.0.0.1:28082', backend: '127.0.0.1:28083' }));
    const r = spawnSync('haproxy', ['-c', '-f', join(d, 'haproxy.cfg')], { encoding: 'utf8' });
    expect(r.stderr + r.stdout).toContain('Configuration file is valid');
    expect(r.status).toBe(0);
  });

  it.skipIf(!has('nginx'))('nginx accepts the reverse-proxy configuration with its h2c server, without obsolete directives', () => {
    const d = mkdtempSync(join(tmpdir(), 'membrane-peers-test-'));
    dirs.push(d);
    writeFileSync(join(d, 'proxy.conf'), proxyNginxConf(d, '127.0.0.1:28084', '127.0.0.1:28081', '127.0.0.1:28085'));
    const r = spawnSync('nginx', ['-t', '-e', 'stderr', '-p', d, '-c', join(d, 'proxy.conf')], { encoding: 'utf8' });
    expect(r.stderr).toContain('test is successful');
    expect(r.stderr).not.toMatch(/\[(warn|emerg)\]/);
    expect(r.status).toBe(0);
  });
});

describe('bench observability sink', () => {
  it('answers an OTLP/HTTP export 200 with an empty body and counts requests and bytes', async () => {
    const port = await listening(startSink(0, 'http://127.0.0.1:9/metrics'));
    const res = await fetch(`http://127.0.0.1:${port}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(1234) });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as SinkStats;
    expect(stats.traces).toEqual({ requests: 1, bytes: 1234 });
    expect(stats.scrapes.ok).toBe(0);
  });

  it('scrapes the metrics URL only between every=MS and every=0', async () => {
    let served = 0;
    const metrics = await listening(createServer((_req, res) => (served++, res.end('membrane_up 1\n'))).listen(0, '127.0.0.1'));
    const port = await listening(startSink(0, `http://127.0.0.1:${metrics}/metrics`));
    const stats = async (): Promise<SinkStats> => (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as SinkStats;
    expect((await fetch(`http://127.0.0.1:${port}/scrape?every=20`, { method: 'POST' })).status).toBe(204);
    const deadline = Date.now() + 5000;
    while ((await stats()).scrapes.ok < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await fetch(`http://127.0.0.1:${port}/scrape?every=0`, { method: 'POST' });
    await new Promise((r) => setTimeout(r, 50)); // a scrape in flight when stopped completes
    const stopped = await stats();
    expect(stopped.scrapes.ok).toBeGreaterThanOrEqual(3);
    expect(stopped.scrapes.bytes).toBe(stopped.scrapes.ok * 'membrane_up 1\n'.length);
    await new Promise((r) => setTimeout(r, 150));
    expect((await stats()).scrapes.ok).toBe(stopped.scrapes.ok);
    expect(served).toBe(stopped.scrapes.ok);
  });
});
