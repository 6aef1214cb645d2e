/**
 * DNS through Membrane's transparent DNS proxy vs straight to the DNS server vs dnsdist, in one
 * run, on the real agent and datapath (root: network namespaces, BPF maps; see dns-lab.ts):
 *
 *   direct    bdn-plain  ──────────────────────────────► dnsmasq (bdn-dns)
 *   dnsdist   bdn-plain  ──► dnsdist (bdn-dnsdist) ─────► dnsmasq      QName rule: *.bench.test, else REFUSED
 *   membrane  bdn-client ──► tc redirect ► DNS proxy ──► dnsmasq      DNS rule `*` + toFQDNs *.bench.test
 *
 * Load: Debian's dnsperf in the client pod, query files generated here. Each name of the zone
 * answers its own address (dnsmasq synth-domain), so the FQDN path sees exactly the IPs we choose.
 *
 *   qps        dnsperf at saturation (no rate limit, fixed outstanding queries), same names over
 *              and over: for Membrane each answer still goes through NameManager.onAnswer
 *   p50/p99    dnsperf -Q 5000 (fixed rate) -v: per-query latencies
 *   CPU µs/q   utime+stime of the proxy process (/proc/PID/stat, all threads) over the saturation run
 *   release    Membrane only: dnsperf -Q 1000 over names never asked before (each answer a new IP:
 *              new identity, ipcache + policy-map writes before release); the delays are the
 *              proxy's own (`releaseDelayNs`, read through its diagnostics channel by dns-agent.ts)
 *
 * Rounds are interleaved (every peer once per round) and the table gives medians over rounds.
 *
 *   sudo npm run bench:dns   (or: node dist-bench/bench/dns-proxy.js [--rounds N] [--seconds S])
 *   MEMBRANE_BENCH_PROFILE=DIR  writes CPU profiles of the agent's saturation and new-IP runs to DIR
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchNode, POD, cpuMicros, nameOf } from './dns-lab.js';

/** MEMBRANE_BENCH_PROFILE=DIR: CPU profiles of the agent during its saturation and new-IP runs. */
const PROFILE_DIR = process.env.MEMBRANE_BENCH_PROFILE ?? '';

type Peer = 'direct' | 'dnsdist' | 'membrane';
const PEERS: readonly Peer[] = ['direct', 'dnsdist', 'membrane'];

interface Options {
  rounds: number;
  /** Seconds of each measured dnsperf run. */
  seconds: number;
  /** The fixed rate of the latency runs, queries/s. */
  fixedQps: number;
  /** The rate of new-IP answers of the release-delay runs, answers/s. */
  newIpQps: number;
  /** Names of the saturation and fixed-rate runs (learned in the warm-up, then answered again). */
  names: number;
  /** dnsperf at saturation: simulated clients (sockets) and queries outstanding. */
  clients: number;
  outstanding: number;
}

function options(argv: string[]): Options {
  const o: Options = { rounds: 3, seconds: 6, fixedQps: 5000, newIpQps: 1000, names: 500, clients: 8, outstanding: 200 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = Number(argv[i + 1]);
    if (!key || !(key in o) || !Number.isFinite(value) || value <= 0) throw new Error(`usage: dns-proxy.js [--${Object.keys(o).join(' N] [--')} N]: bad ${argv[i]} ${argv[i + 1]}`);
    (o as unknown as Record<string, number>)[key] = value;
  }
  return o;
}

interface DnsperfResult {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  /** Answers that were not NOERROR, by rcode. */
  rcodes: Record<string, number>;
  /** Per-query latencies, ms (only with verbose). */
  latencies: number[];
}

function dnsperf(pod: string, server: string, file: string, args: string[], verbose: boolean): Promise<DnsperfResult> {
  return new Promise((resolve, reject) => {
    const argv = ['netns', 'exec', pod, 'dnsperf', '-s', server, '-d', file, '-t', '2', ...args, ...(verbose ? ['-v'] : [])];
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('close', (code) => {
      const text = Buffer.concat(out).toString();
      const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
      const r: DnsperfResult = {
        sent: num(/Queries sent:\s+(\d+)/),
        completed: num(/Queries completed:\s+(\d+)/),
        lost: num(/Queries lost:\s+(\d+)/),
        qps: num(/Queries per second:\s+([\d.]+)/),
        rcodes: {},
        latencies: [],
      };
      if (code !== 0 || !Number.isFinite(r.qps)) {
        reject(new Error(`dnsperf ${argv.join(' ')} exited ${code}:\n${Buffer.concat(err).toString()}\n${text.slice(-2000)}`));
        return;
      }
      for (const m of text.matchAll(/^Response codes:\s+(.*)$/gm)) {
        for (const part of (m[1] ?? '').split(',')) {
          const [name, count] = part.trim().split(/\s+/);
          if (name && name !== 'NOERROR') r.rcodes[name] = Number(count);
        }
      }
      if (verbose) {
        for (const line of text.split('\n')) {
          if (!line.startsWith('> ')) continue;
          const f = line.split(' ');
          const seconds = Number(f[f.length - 1]);
          if (f[1] !== 'T' && Number.isFinite(seconds)) r.latencies.push(seconds * 1000);
        }
      }
      resolve(r);
    });
  });
}

function queryFile(dir: string, name: string, first: number, count: number): string {
  const file = join(dir, name);
  const lines: string[] = [];
  for (let i = first; i < first + count; i++) lines.push(`${nameOf(i)} A`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
const median = (xs: readonly number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);

interface Round {
  qps: number;
  p50: number;
  p99: number;
  /** Achieved rate of the fixed-rate run (a peer that cannot keep 5k/s shows it here). */
  fixedQps: number;
  cpuPerQuery: number;
  /** Lost or non-NOERROR answers over both runs. */
  failed: number;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:dns needs root: it creates network namespaces and loads BPF programs');
  const o = options(process.argv.slice(2));
  BenchNode.sweep();
  const node = new BenchNode();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void node.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await node.startAgent();
    await node.labUp();
    node.startServers();
    const dnsIp = node.podIp(POD.dns);
    const target: Record<Peer, { pod: string; server: string; pid: () => number | null }> = {
      direct: { pod: POD.plain, server: dnsIp, pid: () => null },
      dnsdist: { pod: POD.plain, server: node.podIp(POD.dnsdist), pid: () => node.dnsdist?.pid ?? null },
      membrane: { pod: POD.client, server: dnsIp, pid: () => node.agent?.pid ?? null },
    };
    const steady = queryFile(node.dir, 'steady.txt', 1, o.names);
    const saturate = ['-l', String(o.seconds), '-c', String(o.clients), '-q', String(o.outstanding)];

    // Warm-up: the servers answer, the policies are in force, Membrane has learned the steady names.
    const deadline = Date.now() + 300_000;
    for (const peer of PEERS) {
      for (;;) {
        const r = await dnsperf(target[peer].pod, target[peer].server, steady, ['-n', '1', '-c', '1', '-q', '20'], false).catch(() => null);
        if (r && r.completed === o.names && Object.keys(r.rcodes).length === 0) break;
        if (Date.now() > deadline) {
          throw new Error(`${peer} does not answer every steady name: ${JSON.stringify(r)}\nagent log:\n${node.agentLog().slice(-3000)}\ndnsdist:\n${node.log('dnsdist.log').slice(-1000)}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      await dnsperf(target[peer].pod, target[peer].server, steady, ['-l', '2', '-c', String(o.clients), '-q', String(o.outstanding)], false);
    }
    await node.releaseDelays(); // the warm-up's learning is not measured

    const rounds: Record<Peer, Round[]> = { direct: [], dnsdist: [], membrane: [] };
    const release: { p50: number; p99: number; count: number; released: number; sent: number; lost: number }[] = [];
    let nextNewIp = o.names + 1;
    for (let round = 0; round < o.rounds; round++) {
      for (const peer of PEERS) {
        const t = target[peer];
        const pid = t.pid();
        const profile = PROFILE_DIR && peer === 'membrane';
        if (profile) node.profileStart();
        const cpu0 = pid ? cpuMicros(pid) : 0;
        const sat = await dnsperf(t.pod, t.server, steady, saturate, false);
        const cpu1 = pid ? cpuMicros(pid) : 0;
        if (profile) await node.profileStop(join(PROFILE_DIR, `membrane-saturation-${round}.cpuprofile`));
        const fixed = await dnsperf(t.pod, t.server, steady, ['-l', String(o.seconds), '-Q', String(o.fixedQps), '-c', String(o.clients), '-q', String(o.outstanding)], true);
        const lat = fixed.latencies.sort((a, b) => a - b);
        const bad = (r: DnsperfResult): number => r.lost + Object.values(r.rcodes).reduce((a, b) => a + b, 0);
        rounds[peer].push({
          qps: sat.qps,
          p50: quantile(lat, 0.5),
          p99: quantile(lat, 0.99),
          fixedQps: fixed.qps,
          cpuPerQuery: pid ? (cpu1 - cpu0) / Math.max(1, sat.completed) : NaN,
          failed: bad(sat) + bad(fixed),
        });
      }
    }

    // Membrane's answer-release delay: every answer a name never asked before, so a new IP. After
    // the interleaved rounds: a proxy that cannot keep up would leave a backlog in the others' runs.
    // dnsperf stops offering past `outstanding` unanswered queries, so the backlog stays bounded.
    for (let run = 0; run < o.rounds; run++) {
      const count = o.newIpQps * o.seconds;
      if (nextNewIp + count > 65_000) throw new Error('out of fresh addresses in the answer range: fewer rounds or seconds');
      const fresh = queryFile(node.dir, `fresh-${run}.txt`, nextNewIp, count);
      nextNewIp += count;
      await node.releaseDelays();
      if (PROFILE_DIR) node.profileStart();
      const r = await dnsperf(POD.client, dnsIp, fresh, ['-n', '1', '-l', String(o.seconds), '-Q', String(o.newIpQps), '-c', String(o.clients), '-q', String(o.outstanding)], false);
      if (PROFILE_DIR) await node.profileStop(join(PROFILE_DIR, `membrane-new-ips-${run}.cpuprofile`));
      const delays = (await node.releaseDelays()).sort((a, b) => a - b);
      release.push({
        p50: quantile(delays, 0.5) / 1000,
        p99: quantile(delays, 0.99) / 1000,
        count: delays.length,
        released: delays.length / o.seconds,
        sent: r.sent,
        lost: r.lost,
      });
    }

    // What the FQDN path left behind: names in Membrane's cache, entries in its pinned ipcache.
    const cache = await node.client.request<unknown[]>('GET', '/v1/fqdn/cache');
    const timeouts = (node.agentLog().match(/Timed out waiting for datapath updates of FQDN IP information/g) ?? []).length;

    const s = Object.fromEntries(
      PEERS.map((p) => {
        const rs = rounds[p];
        return [p, {
          qps: median(rs.map((r) => r.qps)),
          p50: median(rs.map((r) => r.p50)),
          p99: median(rs.map((r) => r.p99)),
          fixedQps: median(rs.map((r) => r.fixedQps)),
          cpu: median(rs.map((r) => r.cpuPerQuery)),
          failed: rs.reduce((a, r) => a + r.failed, 0),
        }];
      }),
    ) as Record<Peer, { qps: number; p50: number; p99: number; fixedQps: number; cpu: number; failed: number }>;
    const rel = { p50: median(release.map((r) => r.p50)), p99: median(release.map((r) => r.p99)) };
    const cpuCol = (p: Peer): string => (Number.isFinite(s[p].cpu) ? s[p].cpu.toFixed(1) : '-');
    const cpuRatio = (p: Peer): string => (Number.isFinite(s[p].cpu) ? (s[p].cpu / s.dnsdist.cpu).toFixed(2) : '-');

    console.log(
      `DNS A queries over UDP, ${o.names} names of ${'bench.test'} (each its own IPv4), ${o.rounds} interleaved rounds of ${o.seconds} s per run, dnsperf -c ${o.clients} -q ${o.outstanding} (median of rounds)`,
    );
    console.log('peer         qps(sat)  vs direct  vs dnsdist   p50 ms   p99 ms  (at qps)   proxy CPU µs/q  CPU vs dnsdist  failed');
    for (const p of PEERS) {
      const r = s[p];
      console.log(
        `${p.padEnd(11)}${r.qps.toFixed(0).padStart(10)}${(r.qps / s.direct.qps).toFixed(2).padStart(11)}${(r.qps / s.dnsdist.qps).toFixed(2).padStart(11)}` +
          `${r.p50.toFixed(3).padStart(9)}${r.p99.toFixed(3).padStart(9)}${`(${r.fixedQps.toFixed(0)})`.padStart(10)}${cpuCol(p).padStart(17)}${cpuRatio(p).padStart(16)}${String(r.failed).padStart(8)}`,
      );
    }
    const relRate = median(release.map((r) => r.released));
    const lost = release.reduce((a, r) => a + r.lost, 0);
    const sent = release.reduce((a, r) => a + r.sent, 0);
    console.log(
      `membrane answer release, new-IP answers offered at ${o.newIpQps}/s for ${o.seconds} s × ${o.rounds}: released ${relRate.toFixed(0)}/s, ` +
        `p50 ${rel.p50.toFixed(3)} ms, p99 ${rel.p99.toFixed(3)} ms; dnsperf: ${sent} sent, ${lost} without an answer within 2 s`,
    );
    console.log(
      `  per run p50/p99 ms: ${release.map((r) => `${r.p50.toFixed(3)}/${r.p99.toFixed(3)}`).join(', ')}; answers released after --tofqdns-proxy-response-max-delay: ${timeouts}; FQDN cache at the end: ${cache.length} names`,
    );
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    console.log(
      `targets: qps ≥ 1.0× dnsdist: ${(s.membrane.qps / s.dnsdist.qps).toFixed(2)}× ${verdict(s.membrane.qps >= s.dnsdist.qps)}; ` +
        `answer-release p99 < 2 ms at ${o.newIpQps} new-IP answers/s: ${rel.p99.toFixed(3)} ms at ${relRate.toFixed(0)}/s released ${verdict(rel.p99 < 2 && relRate >= 0.99 * o.newIpQps)}`,
    );
  } finally {
    if (!stopping) await node.cleanup();
  }
}

await main();
