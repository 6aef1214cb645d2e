/**
 * issue-9 an incremental regeneration leaves the maps as a full one does: after policy files are
 * rewritten, endpoints added and removed, each followed by a pass of one long-lived Regenerator
 * (which resolves and writes only what changed), every endpoint's policy entries, its endpoints-map
 * value and the ipcache equal what a fresh Regenerator writes in one full pass over the same state.
 *
 * The Datapath is the shared in-memory port (test/support/memory-datapath.ts); endpoint links are `lo`.
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
import { parseLabel, type PolicyObject } from '../../../src/policy/index.js';
import type { Datapath } from '../../../src/datapath/index.js';
import { identityPod, parsePolicyFile, policyYaml, withDefaults } from '../../../bench/lib/policy-gen.js';
import { MemoryDatapath } from '../../support/memory-datapath.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function store(): StateStore {
  const d = mkdtempSync(join(tmpdir(), 'membrane-regen-inc-'));
  dirs.push(d);
  return new StateStore(d);
}

describe('Regenerator, incremental', () => {
  it('issue-9 after policy rewrites and endpoint churn, the maps equal a full regeneration', () => {
    const gen = withDefaults({ policies: 30, identities: 60, endpoints: 60, namespaces: 3, appsPerNamespace: 5 });
    const spec = (n: number): EndpointSpec => {
      const { namespace, podLabels } = identityPod(n, gen);
      return { name: `pod-${n}`, namespace, podLabels, ip: `10.1.0.${n + 1}`, ifname: 'lo', namedPorts: { http: { port: 8080, protocol: 6 } } };
    };
    const identities = new IdentityAllocator(store(), parseLabel);
    const log = pino({ level: 'silent' });
    const ports = { http: 15001, dns: 15053, tls: 15443 };
    const dpA = new MemoryDatapath();
    const endpointsA = new EndpointManager(store());
    const a = new Regenerator(dpA as unknown as Datapath, endpointsA, identities, ports, log);
    const files: PolicyObject[][] = Array.from({ length: gen.policies }, (_, i) => parsePolicyFile(policyYaml(i, gen)));
    const present = new Set<number>();
    for (let n = 0; n < 20; n++) {
      endpointsA.upsert(spec(n));
      present.add(n);
    }
    a.regenerate(files.flat());

    const compare = (): void => {
      const dpB = new MemoryDatapath();
      const endpointsB = new EndpointManager(store());
      for (const n of [...present].sort((x, y) => x - y)) endpointsB.upsert(spec(n));
      new Regenerator(dpB as unknown as Datapath, endpointsB, identities, ports, log).regenerate(files.flat());
      expect(dpA.ipcache).toEqual(dpB.ipcache);
      for (const epA of endpointsA.list()) {
        const epB = endpointsB.get(epA.namespace, epA.name)!;
        expect(epA.state).toBe('ready');
        expect({ name: epA.name, entries: dpA.policy.get(epA.id) }).toEqual({ name: epA.name, entries: dpB.policy.get(epB.id) });
        const { endpointId: _a, ...valueA } = dpA.endpoints.get(epA.ip) as { endpointId: number };
        const { endpointId: _b, ...valueB } = dpB.endpoints.get(epB.ip) as { endpointId: number };
        expect(valueA).toEqual(valueB);
      }
    };
    compare();

    let step = 0;
    for (let round = 0; round < 3; round++) {
      for (let k = 0; k < 6; k++) {
        const i = (round * 6 + k) % files.length;
        files[i] = parsePolicyFile(policyYaml(i, gen, round + 1));
        a.regenerate(files.flat());
        const add = 20 + step;
        endpointsA.upsert(spec(add));
        present.add(add);
        a.regenerate(files.flat());
        const gone = step * 2;
        if (present.has(gone)) {
          const ep = endpointsA.remove(spec(gone).namespace, `pod-${gone}`);
          a.forget(ep);
          present.delete(gone);
          a.regenerate(files.flat());
        }
        step++;
      }
      compare();
    }
    // A pass with nothing changed touches no endpoint.
    expect(a.regenerate(files.flat()).resolved).toBe(0);
  });
});
