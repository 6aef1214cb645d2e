/**
 * Policy-engine scale, without the kernel: generated CiliumNetworkPolicies × identities
 * (bench/lib/policy-gen.ts: the same L3/L4, L7, toFQDNs, toCIDR, deny and namespace-wide mix at
 * every size), the node's endpoints (100) resolved against them as the agent's regeneration does.
 *
 *   resolve_ms         policies, services and identities set, then every endpoint resolved
 *   rss_mb             the process's RSS after that (after a GC), Node.js' own ~40 MB included
 *   identity_add_ms    one identity added, every endpoint resolved again (median of 7 distinct adds)
 *   policy_change_ms   one policy file's content changed, every endpoint resolved again (median of 7)
 *
 * The engine is the agent's: PolicyEngine (incremental, src/policy/resolve/engine.ts) where this
 * build has it, else resolveEndpointPolicy per endpoint (what the agent did before it). One child
 * process per size and run, so RSS is the size's own:
 *
 *   npm run bench -- --only policy-engine
 *   node dist-bench/bench/policy-engine.js --one 1000x10000     one size, JSON on stdout
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as policy from '../src/policy/index.js';
import type { EndpointInput, EndpointPolicy, Identity, PolicyObject, ServiceInput } from '../src/policy/index.js';
import { generatePolicyWorkload, generatedIdentity, parsePolicyFile, policyYaml, type PolicyWorkload } from './lib/policy-gen.js';
import { row, type Benchmark, type BenchContext, type BenchResult, type BenchRow, type BenchTable, type BenchTarget } from './lib/types.js';

/** What this benchmark uses of PolicyEngine (looked up at run time: older builds lack it). */
interface Engine {
  setPolicies(policies: readonly PolicyObject[]): void;
  setServices(services: readonly ServiceInput[]): void;
  setIdentities(identities: readonly Identity[]): unknown;
  resolve(key: number, endpoint: EndpointInput): { policy: EndpointPolicy };
}
const EngineClass = (policy as unknown as { PolicyEngine?: new () => Engine }).PolicyEngine;

const SIZES: readonly (readonly [number, number])[] = [[100, 1_000], [100, 10_000], [1_000, 1_000], [1_000, 10_000]];
const INCREMENTS = 7;

interface SizeResult {
  engine: 'incremental' | 'stateless';
  policies: number;
  identities: number;
  endpoints: number;
  resolveMs: number;
  rssMb: number;
  identityAddMs: number;
  policyChangeMs: number;
  /** Of the medians above: ms in setIdentities / setPolicies (the rest re-resolves the endpoints). */
  identitySetMs: number;
  policySetMs: number;
  /** Policy-map entries of all endpoints after the full resolution. */
  entries: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Resolves every endpoint against `policies` × `identities`; the stateless or the incremental way. */
interface Resolver {
  engine: SizeResult['engine'];
  /** Resolves every endpoint; returns the policy-map entries of all. */
  all: (policies: readonly PolicyObject[], identities: readonly Identity[]) => number;
  /** Of the last `all`, ms spent in setPolicies/setIdentities (the rest is resolving endpoints). */
  setMs: number;
}

function resolver(w: PolicyWorkload): Resolver {
  const count = (p: EndpointPolicy): number => p.ingress.entries.length + p.egress.entries.length;
  if (EngineClass) {
    const engine = new EngineClass();
    let lastPolicies: readonly PolicyObject[] | null = null;
    let lastIdentities: readonly Identity[] | null = null;
    engine.setServices(w.services);
    const r: Resolver = {
      engine: 'incremental',
      setMs: 0,
      all: (policies, identities) => {
        const t = performance.now();
        if (policies !== lastPolicies) engine.setPolicies((lastPolicies = policies));
        if (identities !== lastIdentities) engine.setIdentities((lastIdentities = identities));
        r.setMs = performance.now() - t;
        let entries = 0;
        for (const ep of w.endpoints) entries += count(engine.resolve(ep.identity, { labels: ep.labels, namedPorts: ep.namedPorts }).policy);
        return entries;
      },
    };
    return r;
  }
  return {
    engine: 'stateless',
    setMs: 0,
    all: (policies, identities) => {
      let entries = 0;
      for (const ep of w.endpoints) {
        entries += count(policy.resolveEndpointPolicy({ policies, endpoint: { labels: ep.labels, namedPorts: ep.namedPorts }, identities, services: w.services }));
      }
      return entries;
    },
  };
}

/** One size, in this process (the child's side). */
function measureOne(policies: number, identities: number): SizeResult {
  const w = generatePolicyWorkload({ policies, identities });
  const r = resolver(w);
  let t = performance.now();
  const entries = r.all(w.policies, w.identities);
  const resolveMs = performance.now() - t;
  (globalThis as { gc?: () => void }).gc?.();
  const rssMb = process.memoryUsage().rss / 1048576;

  // Distinct changes each time (the first pays JIT warm-up: the median is the steady cost).
  const adds: number[] = [];
  const addSets: number[] = [];
  let ids = [...w.identities];
  for (let k = 0; k < INCREMENTS; k++) {
    ids = [...ids, generatedIdentity(w.options.identities + 10 + k, w.options)];
    t = performance.now();
    r.all(w.policies, ids);
    adds.push(performance.now() - t);
    addSets.push(r.setMs);
  }
  const changes: number[] = [];
  const changeSets: number[] = [];
  let current = [...w.policies];
  for (let k = 0; k < INCREMENTS; k++) {
    const i = (3 + k * 37) % current.length;
    current = [...current];
    current[i] = parsePolicyFile(policyYaml(i, w.options, 1 + k))[0]!;
    t = performance.now();
    r.all(current, ids);
    changes.push(performance.now() - t);
    changeSets.push(r.setMs);
  }
  return { engine: r.engine, policies, identities, endpoints: w.endpoints.length, resolveMs, rssMb, identityAddMs: median(adds), policyChangeMs: median(changes), identitySetMs: median(addSets), policySetMs: median(changeSets), entries };
}

/** One size in a child process of its own (Node.js' --expose-gc for the RSS after a GC). */
function child(policies: number, identities: number): SizeResult {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--one', `${policies}x${identities}`], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`policy-engine ${policies}x${identities} failed (${r.signal ?? r.status}): ${r.stderr.slice(0, 1000)}`);
  return JSON.parse(r.stdout) as SizeResult;
}

export const benchmark: Benchmark = {
  name: 'policy-engine',
  title: 'Policy engine: resolution time, RSS and incremental costs at 100 / 1,000 CNPs × 1k / 10k identities',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const results = new Map<string, SizeResult[]>();
    const key = (p: number, i: number): string => `${p} CNPs × ${i} identities`;
    // Interleaved: every size once per round.
    for (let round = 0; round < ctx.runs; round++) {
      for (const [p, i] of SIZES) {
        ctx.log(`round ${round + 1}/${ctx.runs} ${key(p, i)}`);
        const list = results.get(key(p, i)) ?? [];
        list.push(child(p, i));
        results.set(key(p, i), list);
      }
    }
    const B = 'policy-engine';
    const rows: BenchRow[] = [];
    const med = (v: string, k: 'resolveMs' | 'rssMb' | 'identityAddMs' | 'policyChangeMs' | 'identitySetMs' | 'policySetMs'): number => median((results.get(v) ?? []).map((r) => r[k]));
    for (const [v, rs] of results) {
      rows.push(row(B, v, 'resolve_ms', 'ms', rs.map((r) => r.resolveMs)));
      rows.push(row(B, v, 'rss_mb', 'MB', rs.map((r) => r.rssMb)));
      rows.push(row(B, v, 'identity_add_ms', 'ms', rs.map((r) => r.identityAddMs)));
      rows.push(row(B, v, 'policy_change_ms', 'ms', rs.map((r) => r.policyChangeMs)));
    }
    const engine = [...results.values()][0]?.[0]?.engine ?? 'stateless';
    const endpoints = [...results.values()][0]?.[0]?.endpoints ?? 0;
    const base = key(100, 1_000);
    const table: BenchTable = {
      title: `${endpoints} endpoints resolved (${engine === 'incremental' ? 'PolicyEngine, incremental' : 'resolveEndpointPolicy per endpoint, stateless'}), one child process per size, ${ctx.runs} round(s) (medians)`,
      header: ['size', 'resolve ms', 'vs 100×1k', 'RSS MB', '+1 identity ms', '1 policy changed ms', 'policy-map entries'],
      rows: [...results.entries()].map(([v, rs]) => [
        v,
        med(v, 'resolveMs').toFixed(1),
        (med(v, 'resolveMs') / med(base, 'resolveMs')).toFixed(1),
        med(v, 'rssMb').toFixed(0),
        med(v, 'identityAddMs').toFixed(2),
        med(v, 'policyChangeMs').toFixed(2),
        String(rs[0]!.entries),
      ]),
    };
    const big = key(1_000, 10_000);
    const fig = {
      resolve: med(big, 'resolveMs'), rss: med(big, 'rssMb'), add: med(big, 'identityAddMs'), change: med(big, 'policyChangeMs'),
      addSet: med(big, 'identitySetMs'), changeSet: med(big, 'policySetMs'),
    };
    const slowest = [...results.keys()].reduce((a, b) => (med(b, 'resolveMs') > med(a, 'resolveMs') ? b : a));
    const targets: BenchTarget[] = [
      {
        target: '1,000 CNPs × 10,000 identities resolve in < 1 s',
        figure: `${fig.resolve.toFixed(0)} ms`,
        met: fig.resolve < 1000,
        ...(fig.resolve < 1000 ? {} : {
          limit: `${engine} resolution of ${endpoints} endpoints, every peer selector of the rules selecting each matched against the identities ` +
            `(100×1k takes ${med(base, 'resolveMs').toFixed(0)} ms, the slowest size is ${slowest} at ${med(slowest, 'resolveMs').toFixed(0)} ms: the cost follows selected rules × peers, not the identity count)`,
        }),
      },
      {
        target: 'an incremental change (one identity, one policy) in < 10 ms at 1,000 × 10,000',
        figure: `+1 identity ${fig.add.toFixed(2)} ms, 1 policy changed ${fig.change.toFixed(2)} ms`,
        met: fig.add < 10 && fig.change < 10,
        ...(fig.add < 10 && fig.change < 10 ? {} : {
          limit: engine === 'stateless'
            ? 'stateless resolution: every change resolves every endpoint against every policy and identity again'
            : `+1 identity: ${fig.addSet.toFixed(2)} ms in setIdentities, ${(fig.add - fig.addSet).toFixed(2)} ms re-resolving the endpoints; ` +
              `1 policy: ${fig.changeSet.toFixed(2)} ms in setPolicies, ${(fig.change - fig.changeSet).toFixed(2)} ms re-resolving`,
        }),
      },
      {
        target: 'RSS < 200 MB at 1,000 × 10,000',
        figure: `${fig.rss.toFixed(0)} MB (the process after resolution, Node.js included)`,
        met: fig.rss < 200,
        ...(fig.rss < 200 ? {} : { limit: `policy-map entries held for ${endpoints} endpoints and the selector cache of 10,000 identities` }),
      },
    ];
    return {
      rows,
      tables: [table],
      targets,
      notes: [`workload: bench/lib/policy-gen.ts (deterministic, seed 1); ${engine} engine; the agent's RSS adds its datapath, proxies and flow buffer to the figure here.`],
    };
  },
};

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--one') {
  const [p, i] = (process.argv[3] ?? '').split('x').map(Number);
  if (!p || !i) throw new Error('usage: policy-engine.js --one POLICIESxIDENTITIES');
  process.stdout.write(`${JSON.stringify(measureOne(p, i))}\n`);
}
