/**
 * What one proxy worker knows of the agent's state: local endpoints by IP (identity, resolved
 * policy, flow endpoint) and identity labels, applied from the agent's snapshot and deltas.
 * Until the first snapshot it knows nothing, so every connection is refused (fail closed).
 */
import type { FlowEndpoint } from '../observe/index.js';
import type { L7Flow } from '../policy/index.js';
import { applyDirectionPatch } from './policy-patch.js';
import type { Delta, EndpointState } from './protocol.js';

export class WorkerState {
  readonly #endpoints = new Map<string, EndpointState>();
  readonly #identityLabels = new Map<number, readonly string[]>();
  /** Flow endpoints of non-local identities, built once per identity (shared by every flow). */
  readonly #identityEndpoints = new Map<number, FlowEndpoint>();
  readonly #ipcache: (ip: string) => number;
  #ready = false;
  #revision = 0;
  #patchFailures = 0;

  /** `ipcache(ip)`: the identity of a non-local address (the datapath's ipcache map in production). */
  constructor(ipcache: (ip: string) => number) {
    this.#ipcache = ipcache;
  }

  /** Changes with every snapshot or delta applied: what `l7Flow` answers may have changed. */
  get revision(): number {
    return this.#revision;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get endpointCount(): number {
    return this.#endpoints.size;
  }

  get identityCount(): number {
    return this.#identityLabels.size;
  }

  /** Policy patches that could not be applied since start (each left its endpoint denied until a snapshot). */
  get patchFailures(): number {
    return this.#patchFailures;
  }

  /**
   * Replaces everything (`snapshot`) or applies changes (`delta`). Returns how many of the delta's
   * policy patches could not be applied: their endpoints are denied (policy null, fail closed)
   * until the next snapshot, which the caller asks the agent for (resync.ts).
   */
  apply(delta: Delta, replace: boolean): number {
    let failed = 0;
    if (replace) {
      this.#endpoints.clear();
      this.#identityLabels.clear();
      this.#identityEndpoints.clear();
    }
    for (const ip of delta.removedEndpoints) this.#endpoints.delete(ip);
    for (const ep of delta.endpoints) this.#endpoints.set(ep.ip, ep);
    for (const patch of delta.policyPatches ?? []) {
      const ep = this.#endpoints.get(patch.ip);
      // The agent patches only a policy it sent; anything else is a bug: deny (fail closed).
      if (!ep?.policy) {
        if (ep) this.#endpoints.set(ep.ip, { ...ep, policy: null });
        failed++;
        continue;
      }
      try {
        const policy = { ingress: applyDirectionPatch(ep.policy.ingress, patch.ingress), egress: applyDirectionPatch(ep.policy.egress, patch.egress) };
        this.#endpoints.set(ep.ip, { ...ep, policy });
      } catch {
        this.#endpoints.set(ep.ip, { ...ep, policy: null });
        failed++;
      }
    }
    for (const id of delta.removedIdentities) {
      this.#identityLabels.delete(id);
      this.#identityEndpoints.delete(id);
    }
    for (const i of delta.identities) {
      this.#identityLabels.set(i.id, i.labels);
      this.#identityEndpoints.delete(i.id);
    }
    if (replace) this.#ready = true;
    this.#revision++;
    this.#patchFailures += failed;
    return failed;
  }

  endpoint(ip: string): EndpointState | undefined {
    return this.#endpoints.get(ip);
  }

  /** The identity of `ip`: a local endpoint's, else what the ipcache says. */
  identityOf(ip: string): number {
    return this.#endpoints.get(ip)?.identity ?? this.#ipcache(ip);
  }

  /** As src/agent/flows.ts `flowEndpoint`: the local endpoint at `ip`, else the identity's labels. */
  flowEndpoint(ip: string, identity: number): FlowEndpoint {
    const ep = this.#endpoints.get(ip);
    if (ep) return ep.flowEndpoint;
    let fe = this.#identityEndpoints.get(identity);
    if (!fe) {
      fe = { ID: 0, identity, namespace: '', labels: [...(this.#identityLabels.get(identity) ?? [])], pod_name: '' };
      this.#identityEndpoints.set(identity, fe);
    }
    return fe;
  }

  /**
   * The policy state a request is judged against (the agent's `#l7Flow`): each side that is a
   * local endpoint contributes its policy (null until computed: decideL7 denies).
   */
  l7Flow(srcIp: string, srcIdentity: number, dstIp: string, dport: number, protocol: number, dstIdentity?: number): L7Flow {
    const src = this.#endpoints.get(srcIp);
    const dst = this.#endpoints.get(dstIp);
    return {
      srcIdentity,
      dstIdentity: dstIdentity ?? dst?.identity ?? this.#ipcache(dstIp),
      protocol,
      dport,
      ...(src ? { srcPolicy: src.policy } : {}),
      ...(dst ? { dstPolicy: dst.policy } : {}),
    };
  }
}
