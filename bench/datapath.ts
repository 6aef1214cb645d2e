/**
 * The kernel datapath's cost as the ipcache grows: throughput (iperf3 from Debian, one TCP
 * stream) and request/response rate (bench/rr.c, netperf's TCP_RR: netperf is not in Debian
 * main) between two pods of one node, on the same veth links each time:
 *
 *   none         no programs, no rules: the links and routes only
 *   iptables N   N rules in the node namespace's FORWARD chain: N−2 source-CIDR rules that do not
 *                match (synthetic /32s, as ipcache entries are), then the pod pair's two ACCEPTs;
 *                every packet walks the chain (the classic per-rule iptables cost)
 *   membrane N   the real agent's programs on both pods' links (an L3/L4 policy allowing the two
 *                ports), N synthetic CIDR entries (/32s in 10.240/12, local-scope identities)
 *                written to the pinned ipcache through the datapath's map API (Datapath.upsertIpcache)
 *
 * Rounds are interleaved: per round every variant once, odd rounds Membrane first (pods deregistered from the agent for none
 * and iptables, so its programs are detached; registered again for membrane). The iptables rules
 * live in the bench's own node namespace and go with it; the synthetic entries go with the pins.
 *
 *   npm run bench -- --only datapath
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ProbedNode, ROOT, TreeCpu, run } from './node.js';
import { row, type Benchmark, type BenchContext, type BenchResult, type BenchRow, type BenchTable, type BenchTarget } from './lib/types.js';

type DatapathModule = typeof import('../src/datapath/index.js');

const NODE_NETNS = 'mbb-dp';
const POD = { client: 'bdp-client', server: 'bdp-server' } as const;
const IPERF_PORT = 5201;
const RR_PORT = 7001;
/** Synthetic ipcache prefixes: never routed, never sent a packet. */
const SYNTH_BASE = (10 << 24) | (240 << 16);
/** Local-scope (CIDR) identities start at 2^24 (Cilium's identity.LocalIdentityFlag). */
const SYNTH_IDENTITY = (1 << 24) + 100_000;

const LAB_SPEC = `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: bdp-lab
spec:
  subnet: "10.233"
  pods:
    - {name: ${POD.client}, namespace: default, labels: {app: bench-dp-client}}
    - {name: ${POD.server}, namespace: default, labels: {app: bench-dp-server}}
`;

const PORTS = `
      toPorts:
        - ports: [{port: "${IPERF_PORT}", protocol: TCP}, {port: "${RR_PORT}", protocol: TCP}]`;

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-dp, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: bench-dp-server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: bench-dp-client}}]${PORTS}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-dp-client, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: bench-dp-client}}
  egress:
    - toEndpoints: [{matchLabels: {app: bench-dp-server}}]${PORTS}
`;

const ipOf = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const synthPrefix = (i: number): string => `${ipOf(SYNTH_BASE + i)}/32`;

interface Probe {
  /** Membrane's programs: ns per program run (kernel BPF stats), NaN without them. */
  progNs: number;
  /** CPU of the agent (all threads) during the probes, % of one core (NaN without the agent's programs). */
  agentCpu: number;
  gbps: number;
  rrPerS: number;
  rrP50: number;
  rrP99: number;
}

/**
 * Client and server each on a CPU of its own, the same in every run: unpinned, the scheduler
 * sometimes put both on one CPU and sometimes not, and request/response latency took one of two
 * values 30% apart from run to run, whatever the variant.
 */
const PINNED = availableParallelism() >= 2;
const CLIENT_CPU: readonly string[] = PINNED ? ['taskset', '-c', '0'] : [];
const SERVER_CPU: readonly string[] = PINNED ? ['taskset', '-c', '1'] : [];

function iperf(serverIp: string, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const argv = ['netns', 'exec', POD.client, ...CLIENT_CPU, 'iperf3', '-c', serverIp, '-p', String(IPERF_PORT), '-t', String(seconds), '-J'];
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        const j = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
        const bps = j.end?.sum_received?.bits_per_second;
        if (code === 0 && bps) resolve(bps / 1e9);
        else reject(new Error(`iperf3 exited ${code}: ${j.error ?? out.slice(-500)}`));
      } catch {
        reject(new Error(`iperf3 exited ${code}: ${out.slice(-500)}`));
      }
    });
  });
}

function rr(bin: string, serverIp: string, seconds: number): { perS: number; p50: number; p99: number } {
  const out = run('ip', ['netns', 'exec', POD.client, ...CLIENT_CPU, bin, 'client', serverIp, String(RR_PORT), String(seconds)]);
  const num = (k: string): number => Number(new RegExp(`${k}=([\\d.]+)`).exec(out)?.[1] ?? NaN);
  return { perS: num('transactions') / num('seconds'), p50: num('p50_us'), p99: num('p99_us') };
}

/** iptables-restore input for the FORWARD chain: `n` rules, the pod pair's ACCEPTs last. */
function iptablesRules(n: number, client: string, server: string): string {
  const lines = ['*filter', ':FORWARD ACCEPT [0:0]'];
  for (let i = 0; i < n - 2; i++) lines.push(`-A FORWARD -s ${synthPrefix(i)} -j DROP`);
  lines.push(`-A FORWARD -s ${client}/32 -d ${server}/32 -p tcp -j ACCEPT`, `-A FORWARD -s ${server}/32 -d ${client}/32 -p tcp -j ACCEPT`, 'COMMIT', '');
  return lines.join('\n');
}

/**
 * Run time and run count of the programs behind the node's pinned TCX links (kernel BPF stats,
 * `kernel.bpf_stats_enabled`): the programs' own cost per packet, which the shared machine's
 * noise does not move as it moves throughput.
 */
function programStats(pinRoot: string): { ns: number; runs: number } {
  let ns = 0;
  let runs = 0;
  const dir = join(pinRoot, 'links');
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const link = JSON.parse(run('bpftool', ['-j', 'link', 'show', 'pinned', join(dir, name)], { allowFail: true }) || '{}') as { prog_id?: number };
    if (!link.prog_id) continue;
    const prog = JSON.parse(run('bpftool', ['-j', 'prog', 'show', 'id', String(link.prog_id)], { allowFail: true }) || '{}') as { run_time_ns?: number; run_cnt?: number };
    ns += prog.run_time_ns ?? 0;
    runs += prog.run_cnt ?? 0;
  }
  return { ns, runs };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const benchmark: Benchmark = {
  name: 'datapath',
  packages: ['iperf3', 'iptables', 'gcc'],
  title: 'Datapath: iperf3 and TCP request/response between two pods, no programs vs Membrane at 10–100k ipcache entries vs iptables',
  async run(ctx: BenchContext): Promise<BenchResult> {
    if (process.getuid?.() !== 0) throw new Error('datapath benchmark needs root: it creates network namespaces and loads BPF programs');
    for (const bin of ['iperf3', 'iptables-restore', 'cc']) {
      if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) throw new Error(`${bin} is missing: run scripts/setup.sh (iperf3, iptables, gcc)`);
    }
    const seconds = ctx.quick ? 1 : 5;
    // --quick: the ends of each range only (the whole quick run stays under 3 minutes).
    const entrySizes = ctx.quick ? [10, 100_000] : [10, 1_000, 10_000, 100_000];
    const ruleSizes = ctx.quick ? [10, 10_000] : [10, 1_000, 10_000];
    const opts = { netns: NODE_NETNS, pods: Object.values(POD), labSpec: LAB_SPEC, policies: { 'dp.yaml': POLICY } };
    ProbedNode.sweep(opts);
    const node = new ProbedNode(opts);
    ctx.onCleanup(() => node.cleanup());
    // Kernel BPF run-time stats for the programs' ns per packet; the machine's setting comes back after.
    const STATS = '/proc/sys/kernel/bpf_stats_enabled';
    const statsBefore = readFileSync(STATS, 'utf8').trim();
    const restoreStats = (): void => writeFileSync(STATS, statsBefore);
    ctx.onCleanup(restoreStats);
    // Off while throughput is timed: each program run then pays two clock reads and a per-CPU
    // update for the statistics alone, which no production node pays (and, in a guest whose
    // clock reads are costly, a large part of the programs' own figure).
    const stats = (on: boolean): void => writeFileSync(STATS, on ? '1' : '0');
    stats(false);
    const results = new Map<string, Probe[]>();
    let dp: ReturnType<DatapathModule['Datapath']['open']> | null = null;
    let agentEntries = 0;
    try {
      const rrBin = join(node.dir, 'rr');
      run('cc', ['-O2', '-o', rrBin, join(ROOT, 'bench/rr.c')]);
      await node.labUp(false);
      const client = node.podIp(POD.client);
      const server = node.podIp(POD.server);
      node.serve(POD.server, [...SERVER_CPU, 'iperf3', '-s', '-p', String(IPERF_PORT)], 'iperf3.log');
      node.serve(POD.server, [...SERVER_CPU, rrBin, 'server', String(RR_PORT)], 'rr.log');
      await node.listening(POD.server, IPERF_PORT);
      await node.listening(POD.server, RR_PORT);
      ctx.log('agent');
      await node.startAgent();
      const { Datapath } = (await import(pathToFileURL(join(ROOT, 'dist/datapath/index.js')).href)) as DatapathModule;
      dp = Datapath.open({ pinRoot: node.pinRoot });
      const datapath = dp;

      const measure = async (variant: string, withAgent: boolean): Promise<void> => {
        ctx.log(`${variant}`);
        // Untimed first: the first packets after a change (programs attached or detached, a chain
        // loaded) pay for neighbour and route lookups that are not the variant's steady cost.
        rr(rrBin, server, 0.5);
        const cpu = withAgent && node.agent?.pid ? new TreeCpu(node.agent.pid) : null;
        const t0 = performance.now();
        cpu?.start();
        const gbps = await iperf(server, seconds);
        const r = rr(rrBin, server, seconds);
        const agentCpu = cpu ? (cpu.stop() / 1000 / (performance.now() - t0)) * 100 : NaN;
        // The programs' own cost, untimed, with the kernel's BPF statistics on: the same traffic
        // (a stream and request/response), over the same time.
        let progNs = NaN;
        if (withAgent) {
          stats(true);
          try {
            const stats0 = programStats(node.pinRoot);
            await iperf(server, seconds);
            rr(rrBin, server, seconds);
            const stats1 = programStats(node.pinRoot);
            if (stats1.runs > stats0.runs) progNs = (stats1.ns - stats0.ns) / (stats1.runs - stats0.runs);
          } finally {
            stats(false);
          }
        }
        const list = results.get(variant) ?? [];
        list.push({ progNs, agentCpu, gbps, rrPerS: r.perS, rrP50: r.p50, rrP99: r.p99 });
        results.set(variant, list);
      };
      // Warm-up on the bare links (ARP, the servers' first accept).
      await iperf(server, 1);
      rr(rrBin, server, 1);

      const bare = async (): Promise<void> => {
        await measure('none', false);
        for (const n of ruleSizes) {
          run('ip', ['netns', 'exec', NODE_NETNS, 'iptables-restore'], { input: iptablesRules(n, client, server) });
          try {
            await measure(`iptables ${n} rules`, false);
          } finally {
            run('ip', ['netns', 'exec', NODE_NETNS, 'iptables', '-F', 'FORWARD']);
          }
        }
      };
      const membrane = async (): Promise<void> => {
        await node.registerPods();
        agentEntries = datapath.dumpIpcache().size;
        let written = 0;
        for (const n of entrySizes) {
          for (; written < n; written++) datapath.upsertIpcache(synthPrefix(written), SYNTH_IDENTITY + (written % 1000));
          await measure(`membrane ${n} entries`, true);
          const size = datapath.dumpIpcache().size;
          if (size < n + agentEntries) throw new Error(`ipcache holds ${size} entries, expected ${n} synthetic + ${agentEntries} of the agent: something removed them during the run`);
        }
        for (let i = 0; i < written; i++) datapath.deleteIpcache(synthPrefix(i));
        await node.deregisterPods();
      };
      // Odd rounds start with Membrane's programs: neither group is always measured first.
      for (let round = 0; round < ctx.runs; round++) {
        if (round % 2 === 0) {
          await bare();
          await membrane();
        } else {
          await membrane();
          await bare();
        }
      }
    } finally {
      dp?.close();
      await node.cleanup();
      restoreStats();
    }

    const B = 'datapath';
    const rows: BenchRow[] = [];
    for (const [variant, ps] of results) {
      rows.push(row(B, variant, 'throughput_gbps', 'Gbit/s', ps.map((p) => p.gbps)));
      rows.push(row(B, variant, 'rr_per_s', 'transactions/s', ps.map((p) => p.rrPerS)));
      rows.push(row(B, variant, 'rr_p50_us', 'µs', ps.map((p) => p.rrP50)));
      rows.push(row(B, variant, 'rr_p99_us', 'µs', ps.map((p) => p.rrP99)));
      if (variant.startsWith('membrane')) {
        rows.push(row(B, variant, 'agent_cpu_pct', '% of a core', ps.map((p) => p.agentCpu)));
        rows.push(row(B, variant, 'program_ns_per_run', 'ns', ps.map((p) => p.progNs)));
      }
    }
    const med = (variant: string, k: keyof Probe): number => median((results.get(variant) ?? []).map((p) => p[k]));
    const none = { gbps: med('none', 'gbps'), rr: med('none', 'rrPerS') };
    const table: BenchTable = {
      title: `Pod to pod on one node (veth), iperf3 one TCP stream ${seconds} s and TCP_RR (1 byte each way) ${seconds} s, ${ctx.runs} interleaved round(s) (medians)`,
      header: ['variant', 'Gbit/s', 'vs none', 'RR/s', 'vs none', 'RR p50 µs', 'RR p99 µs', 'programs ns/packet', 'agent CPU %'],
      rows: [...results.keys()].map((v) => [
        v,
        med(v, 'gbps').toFixed(2),
        (med(v, 'gbps') / none.gbps).toFixed(3),
        med(v, 'rrPerS').toFixed(0),
        (med(v, 'rrPerS') / none.rr).toFixed(3),
        med(v, 'rrP50').toFixed(1),
        med(v, 'rrP99').toFixed(1),
        v.startsWith('membrane') ? med(v, 'progNs').toFixed(0) : '-',
        v.startsWith('membrane') ? med(v, 'agentCpu').toFixed(1) : '-',
      ]),
    };
    const spread = (xs: readonly number[]): number => (xs.length ? (Math.max(...xs) - Math.min(...xs)) / Math.max(...xs) : NaN);
    const m100k = { gbps: med('membrane 100000 entries', 'gbps'), rr: med('membrane 100000 entries', 'rrPerS') };
    const within = m100k.gbps >= 0.95 * none.gbps && m100k.rr >= 0.95 * none.rr;
    const mem = entrySizes.map((n) => med(`membrane ${n} entries`, 'gbps'));
    const memRr = entrySizes.map((n) => med(`membrane ${n} entries`, 'rrPerS'));
    const flat = spread(mem) <= 0.05 && spread(memRr) <= 0.05;
    const nsFirst = med(`membrane ${entrySizes[0]} entries`, 'progNs');
    const nsLast = med(`membrane ${entrySizes[entrySizes.length - 1]} entries`, 'progNs');
    const targets: BenchTarget[] = [
      {
        target: 'throughput within 5% of no-program at 100k ipcache entries',
        figure: `iperf3 ${(m100k.gbps / none.gbps).toFixed(3)}× (${m100k.gbps.toFixed(2)} vs ${none.gbps.toFixed(2)} Gbit/s), RR ${(m100k.rr / none.rr).toFixed(3)}× (${m100k.rr.toFixed(0)} vs ${none.rr.toFixed(0)}/s)`,
        met: within,
        ...(within ? {} : {
          limit: `Membrane's programs cost ${nsLast.toFixed(0)} ns per packet at ${entrySizes[entrySizes.length - 1]} entries (${nsFirst.toFixed(0)} at ${entrySizes[0]}; kernel BPF stats: ` +
            'ipcache LPM lookups for both addresses, endpoint and conntrack lookups, a policy lookup for new flows); ' +
            `the agent used ${med('membrane 100000 entries', 'agentCpu').toFixed(0)}% of a core; no-program runs alone spread ${(spread((results.get('none') ?? []).map((p) => p.gbps)) * 100).toFixed(0)}% (min–max) on this shared machine`,
        }),
      },
      {
        target: 'flat as ipcache entries grow (10 → 100k within 5%)',
        figure: `iperf3 spread ${(spread(mem) * 100).toFixed(1)}%, RR spread ${(spread(memRr) * 100).toFixed(1)}% over ${entrySizes.join(' / ')} entries`,
        met: flat,
        ...(flat ? {} : {
          limit: nsLast > nsFirst * 1.05
            ? `the programs' own cost grows with the entries: ${nsFirst.toFixed(0)} → ${nsLast.toFixed(0)} ns per packet (kernel BPF stats) from ${entrySizes[0]} to ${entrySizes[entrySizes.length - 1]} entries`
            : `the programs' own cost is flat (${nsFirst.toFixed(0)} → ${nsLast.toFixed(0)} ns per packet, kernel BPF stats, from ${entrySizes[0]} to ${entrySizes[entrySizes.length - 1]} entries): ` +
              `the throughput spread is the shared machine's noise (no-program runs alone spread ${(spread((results.get('none') ?? []).map((p) => p.gbps)) * 100).toFixed(0)}%)`,
        }),
      },
    ];
    const ipt10k = med(`iptables ${ruleSizes[ruleSizes.length - 1]} rules`, 'gbps');
    return {
      rows,
      tables: [table],
      targets,
      notes: [
        `${spawnSync('iperf3', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'iperf3'} and ${spawnSync('iptables', ['--version'], { encoding: 'utf8' }).stdout.trim()} from Debian; RR probe bench/rr.c (netperf is not in Debian main).`,
        `iptables at 10k rules: ${(ipt10k / none.gbps).toFixed(3)}× of no-program throughput; Membrane at 100k entries: ${(m100k.gbps / none.gbps).toFixed(3)}×.`,
        `the agent's own ipcache entries (${agentEntries}) come on top of the synthetic ones.`,
        `Throughput and RR are timed with the kernel's BPF statistics off (kernel.bpf_stats_enabled=0, as on a production node); "programs ns/packet" comes from a separate untimed pass of the same traffic with them on.`,
        PINNED ? 'iperf3 and the RR probe: client on CPU 0, server on CPU 1 (taskset), in every variant.' : 'one CPU: client and server unpinned.',
      ],
    };
  },
};
