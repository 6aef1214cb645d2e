/**
 * issue-9 the incremental policy engine resolves what a full resolution resolves: after policies
 * are added, changed and removed, identities come and go or get other labels, named ports and
 * services change, every endpoint's map state from `PolicyEngine.resolve` equals
 * `resolveEndpointPolicy` over the same inputs, and an endpoint no change touches is not
 * resolved again (its policy is returned as it was).
 */
import { describe, expect, it } from 'vitest';
import { PolicyEngine, resolveEndpointPolicy, type Identity, type PolicyObject, type ServiceInput } from '../../../src/policy/index.js';
import { SelectorCache } from '../../../src/policy/resolve/selector-cache.js';
import { generatePolicyWorkload, generatedIdentity, parsePolicyFile, policyYaml, type PolicyWorkload } from '../../../bench/lib/policy-gen.js';

function check(engine: PolicyEngine, w: PolicyWorkload, policies: readonly PolicyObject[], identities: readonly Identity[], services: readonly ServiceInput[]): number {
  let changed = 0;
  for (const ep of w.endpoints) {
    const endpoint = { labels: ep.labels, namedPorts: ep.namedPorts };
    const r = engine.resolve(ep.identity, endpoint);
    if (r.changed) changed++;
    expect(r.policy).toEqual(resolveEndpointPolicy({ policies, endpoint, identities, services }));
  }
  return changed;
}

describe('PolicyEngine', () => {
  const w = generatePolicyWorkload({ policies: 40, identities: 300, endpoints: 24 });

  it('equals a full resolution after every kind of change, resolving only what a change touches', () => {
    const engine = new PolicyEngine();
    let policies = [...w.policies];
    let identities = [...w.identities];
    let services = [...w.services];
    const apply = (): number => {
      engine.setPolicies(policies);
      engine.setServices(services);
      engine.setIdentities(identities);
      return check(engine, w, policies, identities, services);
    };
    expect(apply()).toBe(w.endpoints.length);
    // Nothing changed: nothing resolved again.
    expect(apply()).toBe(0);

    // One policy changed (a file written again with other content): only what it selects.
    policies[5] = parsePolicyFile(policyYaml(5, w.options, 3))[0]!;
    const afterPolicy = apply();
    expect(afterPolicy).toBeLessThan(w.endpoints.length);

    // A policy removed, one added.
    policies = [...policies.slice(0, 10), ...policies.slice(11), parsePolicyFile(policyYaml(77, w.options))[0]!];
    apply();

    // An identity added, one removed, one relabelled (same id, other labels).
    identities = [...identities, generatedIdentity(500, w.options)];
    apply();
    identities = identities.filter((i) => i.id !== identities[200]!.id);
    apply();
    const relabel = identities[150]!;
    identities = identities.map((i) => (i === relabel ? { ...generatedIdentity(501, w.options), id: relabel.id } : i));
    apply();

    // Named ports of a peer changed; a service's selector changed.
    identities = identities.map((i, k) => (k === 40 ? { ...i, namedPorts: { http: { port: 9090, protocol: 6 } } } : i));
    apply();
    services = services.map((s, k) => (k === 0 ? { ...s, selector: { app: 'app-3' } } : s));
    apply();
    // A learned FQDN address's identity (fqdn: labels) comes and goes.
    const fqdnId: Identity = { id: (1 << 24) + 7, labels: [{ source: 'cidr', key: '172.16.0.9/32', value: '' }, { source: 'reserved', key: 'world', value: '' }, { source: 'fqdn', key: 'matchPattern:*.svc13.example.com', value: '' }] };
    identities = [...identities, fqdnId];
    apply();
    identities = identities.filter((i) => i !== fqdnId);
    apply();
  });

  it('an endpoint whose labels change is resolved against its new labels', () => {
    const engine = new PolicyEngine();
    engine.setPolicies(w.policies);
    engine.setServices(w.services);
    engine.setIdentities(w.identities);
    const ep = w.endpoints[0]!;
    const other = w.endpoints[5]!;
    engine.resolve(ep.identity, { labels: ep.labels });
    const r = engine.resolve(ep.identity, { labels: other.labels });
    expect(r.changed).toBe(true);
    expect(r.policy).toEqual(resolveEndpointPolicy({ policies: w.policies, endpoint: { labels: other.labels }, identities: w.identities, services: w.services }));
  });
});

describe('SelectorCache.setIdentities', () => {
  const app = (v: string): Identity['labels'] => [{ source: 'k8s', key: 'app', value: v }];
  const sel = { requirements: [{ source: 'k8s', key: 'app', operator: 'In' as const, values: ['a'] }] };

  it('adds, removes and relabels by the difference, and named ports follow a changed peer', () => {
    const cache = new SelectorCache();
    const one: Identity = { id: 1000, labels: app('a'), namedPorts: { http: { port: 80, protocol: 6 } } };
    const two: Identity = { id: 1001, labels: app('b') };
    expect(cache.setIdentities([one, two])).toBe(2);
    expect([...cache.select(sel)]).toEqual([1000]);
    expect(cache.allNamed().get('http')).toEqual([{ port: 80, protocol: 6 }]);
    // The same list again, as new objects with the same content: nothing changes.
    expect(cache.setIdentities([{ ...one }, { ...two }])).toBe(0);
    // A peer's named port moved: the merged named ports say so (not the old object's).
    expect(cache.setIdentities([{ ...one, namedPorts: { http: { port: 8080, protocol: 6 } } }, two])).toBe(0);
    expect(cache.allNamed().get('http')).toEqual([{ port: 8080, protocol: 6 }]);
    // Relabelled to b, and 1001 gone: the selector selects nothing.
    expect(cache.setIdentities([{ id: 1000, labels: app('b') }])).toBe(2);
    expect([...cache.select(sel)]).toEqual([]);
    expect(cache.ids.map((i) => i.id)).toEqual([1000]);
    // Back, from two lists (the engine's reserved ones and the caller's).
    expect(cache.setIdentities([two], [one])).toBe(2);
    expect([...cache.select(sel)]).toEqual([1000]);
    expect(cache.ids.map((i) => i.id)).toEqual([1000, 1001]);
  });
});
