/**
 * HTTP proxy throughput: the same POST through no proxy, through `http-proxy` (the classic
 * Node peer), and through Membrane's L7 proxy evaluating the Star Wars L7 rule and writing its
 * access log and flows. Each server runs in its own process; one load generator (undici, keep-
 * alive, fixed concurrency) measures all peers in the same run, interleaved, and prints a table
 * of requests/s, latency and ratios. Loopback only.
 *
 *   npm run bench            (or: node dist-bench/bench/proxy-throughput.js [requests] [concurrency])
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, Agent as HttpAgent } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import httpProxy from 'http-proxy';
import { HttpProxy } from '../src/l7proxy/index.js';
import { FlowRing } from '../src/observe/index.js';
import { AccessLogFile, accessLogger } from '../src/agent/access-log.js';
import { readFileSync } from 'node:fs';
import { endpointLabels, loadPolicyText, PROTO, resolveEndpointPolicy } from '../src/policy/index.js';

const SELF = fileURLToPath(import.meta.url);
const BODY = 'Ship landed\n';

/** deathstar's ingress under the demo's L7 rule1, resolved as the agent does: the proxy judges with it. */
function deathstarPolicy() {
  const file = fileURLToPath(new URL('../../deploy/lab/starwars/sw_l3_l4_l7_policy.yaml', import.meta.url));
  const { policies } = loadPolicyText(readFileSync(file, 'utf8'), file);
  const pod = (id: number, cls: string) => ({ id, labels: endpointLabels({ namespace: 'default', podLabels: { org: 'empire', class: cls } }) });
  const deathstar = pod(256, 'deathstar');
  return resolveEndpointPolicy({ policies, endpoint: deathstar, identities: [deathstar, pod(257, 'tiefighter')] });
}

type Role = 'upstream' | 'http-proxy' | 'membrane';

/** Child side: start one server on 127.0.0.1:0 and report its port. */
async function serve(role: Role, upstreamPort: number): Promise<number> {
  if (role === 'upstream') {
    const server = createServer((req, res) => {
      req.resume();
      res.end(BODY);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.address() as AddressInfo).port;
  }
  if (role === 'http-proxy') {
    const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${upstreamPort}`, agent: new HttpAgent({ keepAlive: true, maxSockets: 256 }) });
    const server = createServer((req, res) => proxy.web(req, res));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.address() as AddressInfo).port;
  }
  const ring = new FlowRing({ capacity: 4096 });
  const dstPolicy = deathstarPolicy();
  const endpoint = (name: string, identity: number) => ({ ID: 0, identity, namespace: 'default', labels: [], pod_name: name });
  const proxy = new HttpProxy({
    resolveConnection: () => ({
      srcIdentity: 257,
      dstIdentity: 256,
      source: endpoint('tiefighter', 257),
      destination: endpoint('deathstar', 256),
      direction: 'INGRESS',
    }),
    l7Flow: () => ({ srcIdentity: 257, dstIdentity: 256, protocol: PROTO.TCP, dport: 80, dstPolicy }),
    // The policy never changes during the run: the proxy reads it once per connection.
    policyRevision: () => 0,
    connectUpstream: () => connect(upstreamPort, '127.0.0.1'),
    originalDestination: () => ({ ip: '127.0.0.1', port: upstreamPort }),
    onFlow: (f) => ring.push(f),
    // The agent's access log: the rotated, batched file (--access-log).
    accessLog: accessLogger(new AccessLogFile({ path: join(tmpdir(), `membrane-bench-access-${process.pid}.log`), maxSizeBytes: 10 * 1024 * 1024, maxBackups: 1 })),
  });
  await proxy.listen({ port: 0, host: '127.0.0.1' });
  return (proxy.address() as AddressInfo).port;
}

interface Result {
  reqPerSec: number;
  p50: number;
  p99: number;
  /** CPU time the peer's own process spent per request, µs (0 for direct: no process of its own). */
  cpuPerRequest: number;
}

function cpuMicros(child: ChildProcess | null): Promise<number> {
  if (!child) return Promise.resolve(0);
  return new Promise((resolve) => {
    child.once('message', (m) => resolve((m as { cpuMicros: number }).cpuMicros));
    child.send('cpu');
  });
}

async function load(port: number, requests: number, concurrency: number): Promise<Omit<Result, 'cpuPerRequest'>> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < requests) {
      next++;
      const t = process.hrtime.bigint();
      const res = await pool.request({ method: 'POST', path: '/v1/request-landing', headers: { host: 'deathstar' } });
      const text = await res.body.text();
      if (res.statusCode !== 200 || text !== BODY) throw new Error(`unexpected answer ${res.statusCode} ${JSON.stringify(text)}`);
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { reqPerSec: requests / seconds, p50: at(0.5), p99: at(0.99) };
}

function start(role: Role, upstreamPort = 0): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['--serve', role, String(upstreamPort)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m) => resolve({ child, port: Number(m) }));
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 20000);
  const concurrency = Number(process.argv[3] ?? 32);
  const rounds = 3;
  const upstream = await start('upstream');
  const peers = {
    direct: { port: upstream.port, child: null as ChildProcess | null },
    'http-proxy': await start('http-proxy', upstream.port),
    membrane: await start('membrane', upstream.port),
  };
  const results: Record<string, Result[]> = { direct: [], 'http-proxy': [], membrane: [] };
  try {
    for (const [name, peer] of Object.entries(peers)) await load(peer.port, Math.min(2000, requests), concurrency); // warm-up
    for (let round = 0; round < rounds; round++) {
      for (const [name, peer] of Object.entries(peers)) {
        const cpuBefore = await cpuMicros(peer.child);
        const r = await load(peer.port, requests, concurrency);
        const cpuAfter = await cpuMicros(peer.child);
        results[name]?.push({ ...r, cpuPerRequest: (cpuAfter - cpuBefore) / requests });
      }
    }
  } finally {
    for (const p of [upstream, peers['http-proxy'], peers.membrane]) p.child?.kill();
  }
  const summary = Object.fromEntries(
    Object.entries(results).map(([name, rs]) => [
      name,
      { rps: median(rs.map((r) => r.reqPerSec)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), cpu: median(rs.map((r) => r.cpuPerRequest)) },
    ]),
  );
  const direct = summary.direct?.rps ?? 1;
  const peer = summary['http-proxy']?.rps ?? 1;
  console.log(`POST /v1/request-landing, ${requests} requests × ${rounds} rounds, ${concurrency} keep-alive connections, loopback (median of rounds)`);
  const peerCpu = summary['http-proxy']?.cpu ?? 1;
  console.log('peer          req/s   p50 ms   p99 ms   vs direct   vs http-proxy   proxy CPU µs/req   CPU vs http-proxy');
  for (const [name, s] of Object.entries(summary)) {
    const cpu = name === 'direct' ? '-' : s.cpu.toFixed(0);
    const cpuRatio = name === 'direct' ? '-' : (s.cpu / peerCpu).toFixed(2);
    console.log(
      `${name.padEnd(12)}${s.rps.toFixed(0).padStart(7)}${s.p50.toFixed(2).padStart(9)}${s.p99.toFixed(2).padStart(9)}${(s.rps / direct).toFixed(2).padStart(12)}${(s.rps / peer).toFixed(2).padStart(16)}${cpu.padStart(19)}${cpuRatio.padStart(20)}`,
    );
  }
}

if (process.argv[2] === '--serve') {
  const port = await serve(process.argv[3] as Role, Number(process.argv[4]));
  // Exit normally on a signal, so `--cpu-prof` can write its profile when profiling a peer.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
  // CPU time is steadier than throughput on a shared machine: report it when asked.
  process.on('message', () => {
    const u = process.cpuUsage();
    process.send?.({ cpuMicros: u.user + u.system });
  });
  process.send?.(port);
} else {
  await main();
}
