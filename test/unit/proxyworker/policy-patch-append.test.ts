/**
 * issue-8/9 the append path of the proxy workers' policy patches: when the agent's policy only
 * grew (applyFqdn appends the new addresses' entries to the entries it held), the patch is the
 * tail, found from the agent's previous policy; the worker — even one holding the entries in
 * another order — then holds exactly the agent's entries, and a change that is not an append
 * still goes the general way.
 */
import { describe, expect, it } from 'vitest';
import { WorkerState, type Delta, type EndpointState } from '../../../src/proxyworker/index.js';
import { policyPatch } from '../../../src/proxyworker/policy-patch.js';
import type { EndpointPolicy, MapEntry } from '../../../src/policy/index.js';

const entry = (identity: number, port = 443): MapEntry => ({ identity, protocol: 6, port, portPrefixLen: 16, verdict: 'allow', derivedFrom: [] });
const policy = (egress: MapEntry[]): EndpointPolicy => ({ ingress: { enforced: false, entries: [] }, egress: { enforced: true, entries: egress } });
const canon = (es: readonly MapEntry[]): string[] => es.map((e) => JSON.stringify(e)).sort();
const state = (p: EndpointPolicy): EndpointState => ({ ip: '10.1.0.2', id: 7, identity: 1000, policy: p, flowEndpoint: { ID: 7, identity: 1000, namespace: 'default', labels: [], pod_name: 'client' } });
const delta = (d: Partial<Delta>): Delta => structuredClone({ endpoints: [], removedEndpoints: [], identities: [], removedIdentities: [], ...d });

describe('policy patches that only append', () => {
  it('a worker holding the entries in another order is patched to exactly the agent policy, step after step', () => {
    const base = Array.from({ length: 40 }, (_, i) => entry(20000 + i));
    let agent = policy(base);
    const w = new WorkerState(() => 2);
    // The worker got them reversed (a full send of an earlier order, then patches).
    let sent = policy([...base].reverse());
    w.apply(delta({ endpoints: [state(sent)] }), true);
    let next = 30000;
    for (let step = 0; step < 50; step++) {
      const grown = policy(agent.egress.entries.concat(Array.from({ length: 1 + (step % 3) }, () => entry(next++))));
      const p = policyPatch(sent, grown, agent)!;
      expect(p.egress.removed).toEqual([]);
      expect(p.egress.added).toHaveLength(1 + (step % 3));
      w.apply(delta({ policyPatches: [{ ip: '10.1.0.2', ingress: p.ingress, egress: p.egress }] }), false);
      expect(canon(w.endpoint('10.1.0.2')!.policy!.egress.entries)).toEqual(canon(grown.egress.entries));
      // What the pool records as held is what the worker holds, in its order.
      expect(p.result.egress.entries).toEqual(w.endpoint('10.1.0.2')!.policy!.egress.entries);
      sent = p.result;
      agent = grown;
    }
  });

  it('a change that is not an append (an entry gone) takes the general patch, still exact', () => {
    const base = [entry(1), entry(2), entry(3), entry(4), entry(5)];
    const agent = policy(base);
    const next = policy([base[0]!, base[2]!, base[3]!, base[4]!, entry(6)]);
    const p = policyPatch(agent, next, agent)!;
    expect(p.egress.removed).toEqual([1]);
    expect(canon(p.result.egress.entries)).toEqual(canon(next.egress.entries));
    // A large append is sent whole, as any large change.
    expect(policyPatch(agent, policy([...base, ...Array.from({ length: 10 }, (_, i) => entry(100 + i))]), agent)).toBeNull();
  });
});
