/**
 * issue-9 the proxy workers' policy deltas by entry (src/proxyworker/policy-patch.ts): after any
 * sequence of FQDN-style updates (entries of new identities added, of retired ones removed), the
 * policy a worker holds — patched from structured-cloned messages, as over the worker port — has
 * exactly the entries of the agent's policy; a large change or a flag change is sent whole.
 */
import { describe, expect, it } from 'vitest';
import { WorkerState, type Delta, type EndpointState } from '../../../src/proxyworker/index.js';
import { policyPatch } from '../../../src/proxyworker/policy-patch.js';
import type { EndpointPolicy, MapEntry } from '../../../src/policy/index.js';

const entry = (identity: number, port = 0): MapEntry => ({
  identity,
  protocol: port ? 6 : 0,
  port,
  portPrefixLen: port ? 16 : 0,
  verdict: 'allow',
  derivedFrom: [{ policy: 'p', namespace: 'default', kind: 'CiliumNetworkPolicy', direction: 'egress', index: 0 }],
});
const policy = (egress: MapEntry[], enforced = true): EndpointPolicy => ({ ingress: { enforced: false, entries: [] }, egress: { enforced, entries: egress } });
const canon = (es: readonly MapEntry[]): string[] => es.map((e) => JSON.stringify(e)).sort();
const state = (p: EndpointPolicy): EndpointState => ({ ip: '10.1.0.2', id: 7, identity: 1000, policy: p, flowEndpoint: { ID: 7, identity: 1000, namespace: 'default', labels: [], pod_name: 'client' } });
const delta = (d: Partial<Delta>): Delta => structuredClone({ endpoints: [], removedEndpoints: [], identities: [], removedIdentities: [], ...d });

describe('policy patches to the proxy workers', () => {
  it('a worker patched through 200 FQDN-style updates holds exactly the agent policy each time', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const base = [entry(0, 53), entry(2, 443)];
    let agent = policy([...base]);
    const w = new WorkerState(() => 2);
    w.apply(delta({ endpoints: [state(agent)] }), true);
    let sent = agent;
    let nextId = 20000;
    let patched = 0;
    for (let step = 0; step < 200; step++) {
      // the engine's way: a new array, unchanged entries shared, new identities' entries appended, retired ones gone
      const keep = agent.egress.entries.filter((e) => e.identity < 20000 || rand(10) > 0);
      const fresh = Array.from({ length: 1 + rand(5) }, () => entry(nextId++));
      agent = policy([...keep, ...fresh]);
      const p = policyPatch(sent, agent);
      if (p) {
        w.apply(delta({ policyPatches: [{ ip: '10.1.0.2', ingress: p.ingress, egress: p.egress }] }), false);
        sent = p.result;
        patched++;
      } else {
        w.apply(delta({ endpoints: [state(agent)] }), false);
        sent = agent;
      }
      expect(canon(w.endpoint('10.1.0.2')!.policy!.egress.entries)).toEqual(canon(agent.egress.entries));
    }
    expect(patched).toBeGreaterThan(150);
  });

  it('a flag change or a change of most entries is not patched (the whole policy goes)', () => {
    const a = [entry(1), entry(2), entry(3)];
    expect(policyPatch(policy(a), policy(a, false))).toBeNull();
    expect(policyPatch(policy(a), policy([entry(4), entry(5), entry(6)]))).toBeNull();
    expect(policyPatch(policy(a), policy([...a, entry(4)]))).toMatchObject({ egress: { removed: [], added: [entry(4)] } });
  });

  it('a patch for an endpoint the worker holds without a policy leaves it denied (fail closed)', () => {
    const w = new WorkerState(() => 2);
    w.apply(delta({ endpoints: [{ ...state(policy([])), policy: null }] }), true);
    w.apply(delta({ policyPatches: [{ ip: '10.1.0.2', ingress: { removed: [], added: [] }, egress: { removed: [], added: [entry(3)] } }] }), false);
    expect(w.endpoint('10.1.0.2')!.policy).toBeNull();
    w.apply(delta({ endpoints: [state(policy([entry(1)]))] }), false);
    w.apply(delta({ policyPatches: [{ ip: '10.1.0.2', ingress: { removed: [], added: [] }, egress: { removed: [5], added: [] } }] }), false);
    expect(w.endpoint('10.1.0.2')!.policy).toBeNull();
  });
});
