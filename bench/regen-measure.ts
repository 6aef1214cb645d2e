/**
 * Policy-engine scale, measured without the kernel: generated CNPs × identities (bench/lib/policy-gen.ts),
 * the node's endpoints resolved against them.
 *
 *   node dist-bench/bench/regen-measure.js [--sizes 100x1000,1000x10000] [--engine stateless|incremental]
 *
 * One child process per size (clean RSS). Per size it prints: full resolution of every endpoint
 * (ms), RSS after it (MB), then the incremental costs: one identity added (ms), one policy file
 * changed (ms). `stateless` calls resolveEndpointPolicy per endpoint (what the agent did before
 * the incremental engine: every change resolves every endpoint again); `incremental` uses
 * PolicyEngine, as the Regenerator does.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveEndpointPolicy, PolicyEngine, type Identity, type PolicyObject } from '../src/policy/index.js';
import { generatePolicyWorkload, generatedIdentity, parsePolicyFile, policyYaml, type PolicyWorkload } from './lib/policy-gen.js';

interface SizeResult {
  policies: number;
  identities: number;
  endpoints: number;
  engine: string;
  fullMs: number;
  rssMb: number;
  identityAddMs: number;
  policyChangeMs: number;
  entries: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function runStateless(w: PolicyWorkload): Omit<SizeResult, 'policies' | 'identities' | 'endpoints' | 'engine' | 'rssMb'> {
  const resolveAll = (policies: readonly PolicyObject[], identities: readonly Identity[]): number => {
    let entries = 0;
    for (const ep of w.endpoints) {
      const p = resolveEndpointPolicy({ policies, endpoint: { labels: ep.labels, namedPorts: ep.namedPorts }, identities, services: w.services });
      entries += p.ingress.entries.length + p.egress.entries.length;
    }
    return entries;
  };
  let t = performance.now();
  const entries = resolveAll(w.policies, w.identities);
  const fullMs = performance.now() - t;
  const extra = generatedIdentity(w.options.identities + 10, w.options);
  t = performance.now();
  resolveAll(w.policies, [...w.identities, extra]);
  const identityAddMs = performance.now() - t;
  const changed = [...w.policies];
  changed[3] = parsePolicyFile(policyYaml(3, w.options, 1))[0]!;
  t = performance.now();
  resolveAll(changed, w.identities);
  const policyChangeMs = performance.now() - t;
  return { fullMs, identityAddMs, policyChangeMs, entries };
}

function runIncremental(w: PolicyWorkload): Omit<SizeResult, 'policies' | 'identities' | 'endpoints' | 'engine' | 'rssMb'> {
  const engine = new PolicyEngine();
  const resolveAll = (): number => {
    let entries = 0;
    for (const ep of w.endpoints) {
      const r = engine.resolve(ep.identity, { labels: ep.labels, namedPorts: ep.namedPorts });
      entries += r.policy.ingress.entries.length + r.policy.egress.entries.length;
    }
    return entries;
  };
  let t = performance.now();
  engine.setPolicies(w.policies);
  engine.setServices(w.services);
  engine.setIdentities(w.identities);
  const entries = resolveAll();
  const fullMs = performance.now() - t;
  // Incremental costs: the median of several distinct changes (the first pays JIT warm-up).
  const adds: number[] = [];
  for (let k = 0; k < 7; k++) {
    const added = generatedIdentity(w.options.identities + 10 + k, w.options);
    t = performance.now();
    engine.upsertIdentity(added);
    resolveAll();
    adds.push(performance.now() - t);
  }
  const changes: number[] = [];
  const policies = [...w.policies];
  for (let k = 0; k < 7; k++) {
    const i = (3 + k * 37) % policies.length;
    policies[i] = parsePolicyFile(policyYaml(i, w.options, 1 + k))[0]!;
    t = performance.now();
    engine.setPolicies(policies);
    resolveAll();
    changes.push(performance.now() - t);
  }
  return { fullMs, identityAddMs: median(adds), policyChangeMs: median(changes), entries };
}

function one(policies: number, identities: number, engine: string): SizeResult {
  const w = generatePolicyWorkload({ policies, identities });
  const r = engine === 'incremental' ? runIncremental(w) : runStateless(w);
  (globalThis as { gc?: () => void }).gc?.();
  return { policies, identities, endpoints: w.endpoints.length, engine, rssMb: process.memoryUsage().rss / 1048576, ...r };
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

const engine = arg('--engine', 'incremental');
if (process.argv.includes('--one')) {
  const [p, i] = arg('--one', '100x1000').split('x').map(Number);
  process.stdout.write(JSON.stringify(one(p!, i!, engine)) + '\n');
} else {
  const sizes = arg('--sizes', '100x1000,100x10000,1000x1000,1000x10000').split(',');
  console.log('policies identities endpoints engine      full_ms  rss_mb  +1identity_ms  1policy_ms  entries');
  for (const size of sizes) {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--one', size, '--engine', engine], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) {
      console.log(`${size}: failed (${r.signal ?? r.status}) ${r.stderr.slice(0, 400)}`);
      continue;
    }
    const x = JSON.parse(r.stdout) as SizeResult;
    console.log(
      `${String(x.policies).padStart(8)} ${String(x.identities).padStart(10)} ${String(x.endpoints).padStart(9)} ${x.engine.padEnd(11)} ${x.fullMs.toFixed(1).padStart(8)} ${x.rssMb.toFixed(0).padStart(7)} ${x.identityAddMs.toFixed(2).padStart(14)} ${x.policyChangeMs.toFixed(2).padStart(11)} ${String(x.entries).padStart(8)}`,
    );
  }
}
