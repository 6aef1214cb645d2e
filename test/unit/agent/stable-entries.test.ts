/**
 * issue-9 a policy change costs what it changes: when one of the policies about a peer changes
 * (a new port beside others), the endpoint's other entries stay the same objects, so the map
 * writes and the proxy workers' delta (an entry patch, src/proxyworker/policy-patch.ts) hold the
 * changed entries only, and the maps still equal what a fresh full regeneration writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Regenerator } from '../../../src/agent/regenerate.js';
import { EndpointManager, type EndpointSpec } from '../../../src/agent/endpoints.js';
import { IdentityAllocator } from '../../../src/agent/identity-allocator.js';
import { StateStore } from '../../../src/agent/state-store.js';
import { loadPolicyText, parseLabel, type PolicyObject } from '../../../src/policy/index.js';
import type { Datapath } from '../../../src/datapath/index.js';
import { policyPatch } from '../../../src/proxyworker/policy-patch.js';
import { MemoryDatapath } from '../../support/memory-datapath.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function store(): StateStore {
  const d = mkdtempSync(join(tmpdir(), 'membrane-stable-'));
  dirs.push(d);
  return new StateStore(d);
}

const policy = (i: number, port: number): PolicyObject[] => {
  const r = loadPolicyText(
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p${i}, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: b}}]
      toPorts: [{ports: [{port: "${port}", protocol: TCP}]}]
`,
    `p${i}.yaml`,
  );
  expect(r.problems).toEqual([]);
  return r.policies;
};
const spec = (name: string, app: string, n: number): EndpointSpec => ({ name, namespace: 'default', podLabels: { app }, ip: `10.3.0.${n}`, ifname: 'lo' });

describe('issue-9 stable entries', () => {
  it('one port of ten changed: nine entries are the objects they were, one map entry written and one deleted, a two-entry patch for the workers', () => {
    const log = pino({ level: 'silent' });
    const ports = { http: 15001, dns: 15053, tls: 15443 };
    const identities = new IdentityAllocator(store(), parseLabel);
    const dp = new MemoryDatapath();
    const eps = new EndpointManager(store());
    const regen = new Regenerator(dp as unknown as Datapath, eps, identities, ports, log);
    eps.upsert(spec('a', 'a', 1));
    eps.upsert(spec('b', 'b', 2));
    // Ports far apart: adjacent ones would be folded into one prefix entry.
    const files = Array.from({ length: 10 }, (_, i) => policy(i, 1001 + 10 * i));
    regen.regenerate(files.flat());
    const a = eps.get('default', 'a')!;
    const before = a.policy!;
    expect(before.ingress.entries).toHaveLength(10);

    files[3] = policy(3, 2001);
    const r = regen.regenerate(files.flat());
    const after = a.policy!;
    expect(after.ingress.entries.map((e) => e.port).sort()).toEqual([1001, 1011, 1021, 1041, 1051, 1061, 1071, 1081, 1091, 2001]);
    const kept = after.ingress.entries.filter((e) => before.ingress.entries.includes(e));
    expect(kept).toHaveLength(9);
    expect(r.policyEntries).toEqual({ upserted: 1, deleted: 1 });
    const patch = policyPatch(before, after);
    expect(patch?.ingress.removed).toHaveLength(1);
    expect(patch?.ingress.added.map((e) => e.port)).toEqual([2001]);
    // An unchanged pass keeps the very same policy object (nothing to send, nothing to write).
    expect(regen.regenerate(files.flat()).resolved).toBe(0);
    expect(a.policy).toBe(after);

    // And the maps are what a fresh agent writes for the same state.
    const dpB = new MemoryDatapath();
    const epsB = new EndpointManager(store());
    epsB.upsert(spec('a', 'a', 1));
    epsB.upsert(spec('b', 'b', 2));
    new Regenerator(dpB as unknown as Datapath, epsB, identities, ports, log).regenerate(files.flat());
    expect(dp.policy.get(a.id)).toEqual(dpB.policy.get(epsB.get('default', 'a')!.id));
  });
});
