/**
 * issue-10: gRPC, HTTP/2 and WebSocket through the node's L7 proxy, on the shipped Cloud City lab
 * (deploy/lab/cloudcity.yaml, Cilium's gRPC guide) and its policies, with real clients in a pod:
 * the lab's grpc-js door client, curl --http2-prior-knowledge, undici's WebSocket. The agent runs
 * with `--http-request-timeout 1` so a streaming call that lasts longer shows that timeout does not
 * cut HTTP/2 streams. The lab is the shipped spec with this file's names and subnet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse, stringify } from 'yaml';
import { TestNode, privilegedSkipReason, eventually, ROOT } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'h2grpcws';
const SUBNET = '10.236';
const P = 'hgw';
const DOOR = `${P}-door`;
const TERM = `${P}-term`;
const WS = `${P}-ws`;
const CLIENT = join(ROOT, 'dist/lab/apps/door-client.js');
const WS_CLIENT = join(ROOT, 'dist/lab/apps/ws-client.js');
const DOOR_SERVER = 'cc-door-server:50051';

function labSpec(): string {
  const doc = parse(readFileSync(join(ROOT, 'deploy/lab/cloudcity.yaml'), 'utf8').replaceAll('10.79', SUBNET)) as {
    metadata: { name: string };
    spec: { pods: { name: string }[]; hosts: Record<string, string> };
  };
  doc.metadata.name = `${P}-cc`;
  const rename: Record<string, string> = { 'cc-door-mgr': DOOR, 'terminal-87': TERM, 'ws-echo': WS };
  for (const pod of doc.spec.pods) pod.name = rename[pod.name] ?? pod.name;
  for (const [h, pod] of Object.entries(doc.spec.hosts)) doc.spec.hosts[h] = rename[pod] ?? pod;
  return stringify(doc);
}

/** Runs a command in a pod, as `kubectl exec`. */
function inPod(pod: string, argv: string[], timeoutMs = 20_000): { stdout: string; stderr: string; status: number } {
  const r = spawnSync('ip', ['netns', 'exec', pod, ...argv], { encoding: 'utf8', timeout: timeoutMs, cwd: ROOT });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status ?? -1 };
}

function door(...args: string[]): { stdout: string; stderr: string; status: number } {
  return inPod(TERM, [process.execPath, CLIENT, DOOR_SERVER, ...args]);
}

function curlH2(args: string[]): string {
  return inPod(TERM, ['curl', '-s', '--max-time', '5', '--http2-prior-knowledge', '-w', '\n%{http_code} %{http_version}', ...args]).stdout;
}

describe.skipIf(skip !== null)('issue-10 gRPC, HTTP/2 and WebSocket through the proxy (Cloud City lab)', () => {
  let node: TestNode;

  beforeAll(async () => {
    TestNode.sweep(ID, [DOOR, TERM, WS]);
    node = new TestNode(ID);
    await node.startAgent(['--http-request-timeout', '1']);
    await node.labUp(labSpec());
    for (const f of ['cc-door-ingress-security.yaml', 'ws-echo-policy.yaml']) {
      const imp = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/cloudcity', f)]);
      expect(imp.stderr).toBe('');
    }
  }, 60_000);

  afterAll(async () => {
    await node?.cleanup();
  });

  it('an allowed method answers as in the guide; SetAccessCode is PERMISSION_DENIED with a reason', async () => {
    expect(door('GetName', '1')).toMatchObject({ status: 0, stdout: 'Door name is: Spaceport Door #1\n' });
    expect(door('GetLocation', '1').stdout).toMatch(/^Door location is lat = 10\.22\d* long = 68\.87\d*\n$/);
    expect(door('SetAccessCode', '1', '999')).toMatchObject({ status: 1, stdout: '', stderr: 'Error: PERMISSION_DENIED (7): Access denied\n' });
    expect(door('GetStatus', '1').stderr).toBe('Error: PERMISSION_DENIED (7): Access denied\n');
    // The server never saw the denied calls.
    const calls = node.serverLog(DOOR).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { grpc?: string }).grpc);
    expect(calls).toContain('GetName');
    expect(calls).not.toContain('SetAccessCode');
    const doorLines = (): Record<string, unknown>[] => node.accessLog().filter((l) => l.type === 'http' && typeof l.path === 'string' && (l.path as string).startsWith('/cloudcity.'));
    // The access log is written asynchronously.
    await eventually(() => doorLines().length >= 4, 3000);
    const log = doorLines();
    expect(log.map((l) => [l.verdict, l.status, l.method, l.path, l.protocol])).toEqual([
      ['Forwarded', 200, 'POST', '/cloudcity.DoorManager/GetName', 'HTTP/2'],
      ['Forwarded', 200, 'POST', '/cloudcity.DoorManager/GetLocation', 'HTTP/2'],
      ['Denied', 403, 'POST', '/cloudcity.DoorManager/SetAccessCode', 'HTTP/2'],
      ['Denied', 403, 'POST', '/cloudcity.DoorManager/GetStatus', 'HTTP/2'],
    ]);
  });

  it('a server-streaming call streams for longer than --http-request-timeout (1 s)', () => {
    const r = door('WatchStatus', '1', '15', '200');
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter((l) => l.startsWith('Door status #'))).toHaveLength(15);
    expect(r.stdout).toContain('Stream ended after 15 updates\n');
  });

  it('a 4 MiB request message is forwarded whole', () => {
    expect(door('RequestMaintenance', '1', String(4 * 1024 * 1024))).toMatchObject({ status: 0, stdout: 'Successfully requested maintenance\n' });
  });

  it('curl --http2-prior-knowledge: allowed stream reaches the server, denied stream gets 403 "Access denied"', () => {
    // An allowed gRPC path with an empty body: the gRPC server answers it (HTTP 200, its own grpc-status).
    expect(curlH2(['-X', 'POST', '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://${DOOR_SERVER}/cloudcity.DoorManager/GetName`]).split('\n').at(-1)).toBe('200 2');
    expect(curlH2([`http://${DOOR_SERVER}/admin`])).toBe('Access denied\r\n\n403 2');
    // Allowed and denied streams multiplexed on one connection: each gets its own answer.
    const script = `
      const http2 = require('node:http2');
      const s = http2.connect('http://${DOOR_SERVER}');
      const ask = (path, method, headers) => new Promise((resolve) => {
        const r = s.request({ ':path': path, ':method': method, ...headers });
        r.on('response', (h) => resolve(path + ' ' + h[':status'] + ' ' + (h['grpc-status'] ?? '-')));
        r.on('error', (e) => resolve(path + ' ' + e.code));
        r.resume();
        r.end();
      });
      Promise.all([
        ask('/cloudcity.DoorManager/GetName', 'POST', { 'content-type': 'application/grpc', te: 'trailers' }),
        ask('/cloudcity.DoorManager/SetAccessCode', 'POST', { 'content-type': 'application/grpc', te: 'trailers' }),
        ask('/admin', 'GET', {}),
      ]).then((out) => { console.log(out.join('\\n')); s.close(); });`;
    // The allowed stream reaches the gRPC server, which answers an empty call with its own status.
    const lines = inPod(TERM, [process.execPath, '-e', script]).stdout.split('\n');
    expect(lines[0]).toMatch(/^\/cloudcity\.DoorManager\/GetName 200 (?!7$)\S+$/);
    expect(lines.slice(1)).toEqual(['/cloudcity.DoorManager/SetAccessCode 403 7', '/admin 403 -', '']);
  });

  it('WebSocket: an upgrade on the allowed path echoes frames both ways; another path is denied', () => {
    expect(inPod(TERM, [process.execPath, WS_CLIENT, `ws://ws-echo.default.svc.cluster.local/ws`, 'hello', 'R2-D2'])).toMatchObject({
      status: 0,
      stdout: `< ${WS}: hello\n< ${WS}: R2-D2\n`,
    });
    const denied = inPod(TERM, [process.execPath, WS_CLIENT, `ws://ws-echo.default.svc.cluster.local/admin`]);
    expect(denied.status).toBe(1);
    expect(denied.stderr).toMatch(/^Error: WebSocket handshake failed/);
    const raw = inPod(TERM, ['curl', '-s', '-i', '--max-time', '3', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'http://ws-echo.default.svc.cluster.local/admin']).stdout;
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(raw.endsWith('\r\n\r\nAccess denied\r\n')).toBe(true);
    const upgrade = node.accessLog().find((l) => l.type === 'http' && l.path === '/ws');
    expect(upgrade).toMatchObject({ verdict: 'Forwarded', status: 101, protocol: 'HTTP/1.1' });
  });

  it('HTTP/1.1 on the same ports is unchanged', () => {
    const r = inPod(TERM, ['curl', '-s', '--max-time', '3', '-w', '\n%{http_code} %{http_version}', 'http://ws-echo.default.svc.cluster.local/ws']).stdout;
    expect(r).toBe('Upgrade Required\n\n426 1.1');
    const d = inPod(TERM, ['curl', '-s', '--max-time', '3', '-w', '\n%{http_code} %{http_version}', 'http://ws-echo.default.svc.cluster.local/other']).stdout;
    expect(d).toBe('Access denied\r\n\n403 1.1');
  });

  it('the proxy keeps serving after clients reset streams and open many at once', async () => {
    // h2load-like load from a script in the pod: 200 streams reset at once, then 300 concurrent.
    const script = `
      const http2 = require('node:http2');
      const s = http2.connect('http://${DOOR_SERVER}');
      s.on('error', () => {});
      for (let i = 0; i < 200; i++) { const r = s.request({ ':path': '/admin', ':method': 'GET' }); r.on('error', () => {}); r.close(http2.constants.NGHTTP2_CANCEL); }
      let done = 0, denied = 0;
      for (let i = 0; i < 300; i++) {
        const r = s.request({ ':path': '/x' + i, ':method': 'GET' });
        r.on('response', (h) => { if (h[':status'] === 403) denied++; });
        r.resume();
        r.on('close', () => { if (++done === 300) { console.log('denied ' + denied); s.close(); } });
      }`;
    expect(inPod(TERM, [process.execPath, '-e', script]).stdout).toBe('denied 300\n');
    expect(await eventually(() => door('GetName', '2').stdout === 'Door name is: Spaceport Door #2\n', 5000)).toBe(true);
  });
});
