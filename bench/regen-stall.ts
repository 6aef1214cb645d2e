/**
 * The longest synchronous stretch regeneration puts on the agent's event loop during policy churn
 * and endpoint churn (issue 9's isolation target), without the kernel: the Regenerator, the
 * EndpointManager (with its state file) and the IdentityAllocator are the agent's own; the maps
 * are in memory, each entry encoded as the real datapath encodes it (so map-write costs are the
 * codec's, not the bpf syscalls').
 *
 *   node dist-bench/bench/regen-stall.js [--policies 200] [--endpoints 500] [--changes 200] [--churn 1000]
 *
 * Starts with `--endpoints` endpoints and `--policies` generated CNP files, then in one event loop,
 * each step a separate macrotask (as the agent gets them: a file-watcher event, an API request):
 * every policy file rewritten once with other content (`--changes`), interleaved with `--churn`
 * endpoints added and then removed again. Prints the per-step regeneration time (p50, p99, max)
 * and monitorEventLoopDelay's max, ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { Regenerator } from '../src/agent/regenerate.js';
import { EndpointManager, type EndpointSpec } from '../src/agent/endpoints.js';
import { IdentityAllocator } from '../src/agent/identity-allocator.js';
import { StateStore } from '../src/agent/state-store.js';
import { parseLabel, type PolicyObject } from '../src/policy/index.js';
import type { Datapath } from '../src/datapath/index.js';
// The maps in memory, written through the real policy-entry codec (the Regenerator tests' port).
import { bpfCodec, MemoryDatapath } from '../test/support/memory-datapath.js';
import { identityPod, parsePolicyFile, policyYaml, withDefaults } from './lib/policy-gen.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const nPolicies = arg('--policies', 200);
const nEndpoints = arg('--endpoints', 500);
const nChanges = arg('--changes', 200);
const nChurn = arg('--churn', 1000);
const gen = withDefaults({ policies: nPolicies, identities: nEndpoints + nChurn, endpoints: nEndpoints + nChurn });

const dir = mkdtempSync(join(tmpdir(), 'membrane-regen-stall-'));
try {
  const store = new StateStore(dir);
  const endpoints = new EndpointManager(store);
  const identities = new IdentityAllocator(store, parseLabel);
  const regen = new Regenerator(new MemoryDatapath(bpfCodec) as unknown as Datapath, endpoints, identities, { http: 15001, dns: 15053, tls: 15443 }, pino({ level: 'silent' }));
  const spec = (n: number): EndpointSpec => {
    const { namespace, podLabels } = identityPod(n, gen);
    // Endpoint links are `lo` (it exists everywhere): this measures regeneration, not attachment.
    return { name: `pod-${n}`, namespace, podLabels, ip: `10.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`, ifname: 'lo' };
  };
  const files: PolicyObject[][] = Array.from({ length: nPolicies }, (_, i) => parsePolicyFile(policyYaml(i, gen)));
  const policies = (): PolicyObject[] => files.flat();
  for (let n = 0; n < nEndpoints; n++) endpoints.upsert(spec(n));
  let t = performance.now();
  regen.regenerate(policies());
  const initialMs = performance.now() - t;

  // The churn, one step per macrotask: policy rewrites interleaved with endpoint adds, then removes.
  const steps: (() => void)[] = [];
  const adds = Array.from({ length: nChurn }, (_, k) => nEndpoints + k);
  for (let s = 0; s < Math.max(nChanges, nChurn * 2); s++) {
    if (s < nChanges) {
      const i = s % nPolicies;
      steps.push(() => {
        files[i] = parsePolicyFile(policyYaml(i, gen, 1 + Math.floor(s / nPolicies)));
        regen.regenerate(policies());
      });
    }
    if (s < nChurn) {
      const n = adds[s]!;
      steps.push(() => {
        endpoints.upsert(spec(n));
        regen.regenerate(policies());
      });
    } else if (s < nChurn * 2) {
      const n = adds[s - nChurn]!;
      steps.push(() => {
        const ep = endpoints.remove(spec(n).namespace, `pod-${n}`);
        regen.forget(ep);
        regen.regenerate(policies());
      });
    }
  }
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const durations: number[] = [];
  await new Promise<void>((done) => {
    let i = 0;
    const next = (): void => {
      if (i >= steps.length) return done();
      const step = steps[i++]!;
      setImmediate(() => {
        const s = performance.now();
        step();
        durations.push(performance.now() - s);
        next();
      });
    };
    next();
  });
  h.disable();
  t = performance.now();
  const sorted = durations.sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  console.log(
    JSON.stringify({
      policies: nPolicies,
      endpoints: nEndpoints,
      changes: nChanges,
      churn: nChurn,
      steps: durations.length,
      initialMs: +initialMs.toFixed(1),
      stepP50Ms: +q(0.5).toFixed(2),
      stepP99Ms: +q(0.99).toFixed(2),
      stepMaxMs: +sorted[sorted.length - 1]!.toFixed(2),
      loopDelayMaxMs: +(h.max / 1e6).toFixed(2),
      totalS: +(durations.reduce((a, b) => a + b, 0) / 1000).toFixed(1),
      rssMb: Math.round(process.memoryUsage().rss / 1048576),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
