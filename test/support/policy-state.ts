/**
 * Real policy state for tests that judge requests: CiliumNetworkPolicy YAML → the policy module's
 * loader and resolver → per-endpoint map state → the `L7Flow` the proxies hand to `decideL7`.
 * Nothing here decides anything itself.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  endpointLabels,
  loadPolicyText,
  PROTO,
  resolveEndpointPolicy,
  type EndpointPolicy,
  type Identity,
  type L7Flow,
  type PolicyObject,
} from '../../src/policy/index.js';

export interface Pod {
  readonly name: string;
  readonly namespace?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly identity: number;
}

/** The Star Wars pods of the reference demo. */
export const STARWARS_PODS: readonly Pod[] = [
  { name: 'deathstar', labels: { org: 'empire', class: 'deathstar' }, identity: 6822 },
  { name: 'tiefighter', labels: { org: 'empire', class: 'tiefighter' }, identity: 25698 },
  { name: 'xwing', labels: { org: 'alliance', class: 'xwing' }, identity: 31540 },
];

/** A file of deploy/lab/starwars/, as the demo imports it. */
export function starwarsPolicyYaml(file: 'sw_l3_l4_l7_policy.yaml' | 'sw_l3_l4_policy.yaml'): string {
  return readFileSync(fileURLToPath(new URL(`../../deploy/lab/starwars/${file}`, import.meta.url)), 'utf8');
}

export class PolicyState {
  readonly policies: readonly PolicyObject[];
  readonly #pods: Map<string, Pod & { labels: Readonly<Record<string, string>> }>;
  readonly #identities: Identity[];
  readonly #resolved = new Map<string, EndpointPolicy>();

  /** Throws when a document does not validate: a test fixture must be a policy Cilium accepts. */
  constructor(yaml: string | readonly string[], pods: readonly Pod[] = STARWARS_PODS) {
    const docs = typeof yaml === 'string' ? [yaml] : yaml;
    this.policies = docs.flatMap((text, i) => {
      const r = loadPolicyText(text, `fixture-${i}.yaml`);
      if (r.problems.length > 0) throw new Error(`invalid fixture policy: ${r.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
      return r.policies;
    });
    this.#pods = new Map(pods.map((p) => [p.name, p]));
    this.#identities = pods.map((p) => ({ id: p.identity, labels: endpointLabels({ namespace: p.namespace ?? 'default', podLabels: p.labels }) }));
  }

  pod(name: string): Pod {
    const p = this.#pods.get(name);
    if (!p) throw new Error(`no pod ${name} in the fixture`);
    return p;
  }

  /** The pod's resolved policy, as the agent's regeneration computes it. */
  policyOf(name: string): EndpointPolicy {
    let r = this.#resolved.get(name);
    if (!r) {
      const p = this.pod(name);
      r = resolveEndpointPolicy({
        policies: this.policies,
        endpoint: { labels: endpointLabels({ namespace: p.namespace ?? 'default', podLabels: p.labels }) },
        identities: this.#identities,
      });
      this.#resolved.set(name, r);
    }
    return r;
  }

  /**
   * The flow from pod `src` to pod `dst` on TCP `dport`. `local` says which sides are endpoints
   * of this node ('none' stands for a node whose endpoints have no policy state yet).
   */
  flow(src: string, dst: string, dport = 80, local: 'both' | 'src' | 'dst' | 'none' = 'both'): L7Flow {
    const s = this.pod(src);
    const d = this.pod(dst);
    return {
      srcIdentity: s.identity,
      dstIdentity: d.identity,
      protocol: PROTO.TCP,
      dport,
      ...(local === 'both' || local === 'src' ? { srcPolicy: this.policyOf(src) } : {}),
      ...(local === 'both' || local === 'dst' ? { dstPolicy: this.policyOf(dst) } : {}),
      ...(local === 'none' ? { srcPolicy: null, dstPolicy: null } : {}),
    };
  }
}
