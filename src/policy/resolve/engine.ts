/**
 * Incremental resolution: the map state of many endpoints, kept current as policies, identities
 * and services change, recomputing only the endpoints a change can affect.
 *
 *   setPolicies ─ added/removed policy objects ─► endpoints their rules select are stale
 *   setIdentities ─ SelectorCache: only the cached selectors an added/removed identity matches
 *                   change stamp ─► endpoints that read those selectors are stale
 *   setServices ─► endpoints with toServices peers are stale
 *   resolve(endpoint) ─ current? the cached EndpointPolicy : resolveDirection against the cache
 *
 * Same result as `resolveEndpointPolicy` with the same inputs (the engine's unit test checks it
 * after every kind of change); Cilium's policy repository and SelectorCache split the work the
 * same way (pkg/policy/repository.go, selectorcache.go). Policy objects are compared by
 * reference: the policy directory keeps an unchanged file's objects.
 */
import type { Label } from '../api/labels.js';
import type { PolicyObject, Rule } from '../api/types.js';
import type { Identity } from './identity.js';
import { reservedIdentities } from './identity.js';
import { resolveDirection, selectingRules, type EndpointInput, type SelectedRule, type ServiceInput } from './resolve.js';
import { SelectorCache, type IdentityView } from './selector-cache.js';
import { selectorMatches } from '../api/selector.js';
import type { EndpointPolicy, MapEntry } from './types.js';

export interface EngineResolution {
  readonly policy: EndpointPolicy;
  /** False when the endpoint's previous policy was still current (returned as it was). */
  readonly changed: boolean;
}

interface Memo {
  readonly inputKey: string;
  readonly selected: readonly SelectedRule[];
  readonly policy: EndpointPolicy;
  /** Selector key → stamp read while resolving. */
  readonly deps: ReadonlyMap<string, number>;
  /** Stamps of what the resolution depends on as a whole; -1 when it does not. */
  readonly namedStamp: number;
  readonly servicesStamp: number;
  /** Uses cidrGroup peers: resolved against the policy list's CiliumCIDRGroups. */
  readonly usesPolicies: boolean;
  /** The selector cache's clock when resolved. */
  readonly clock: number;
}

/** Up to this many identities changed since an endpoint's resolution, only their entries are computed again. */
const PARTIAL_MAX = 64;
/** The reserved identities, one set of objects for the engine's life (same object: no relabel check). */
const RESERVED: readonly Identity[] = reservedIdentities();
const RESERVED_IDS: ReadonlySet<number> = new Set(RESERVED.map((r) => r.id));

/**
 * Replaces the entries of `changed` identities in `old` by those of `fresh` (which holds entries of
 * those identities and identity 0), keeping the order a full resolution gives: identity 0 first,
 * then by identity.
 */
function spliceEntries(old: readonly MapEntry[], fresh: readonly MapEntry[], changed: ReadonlySet<number>): MapEntry[] {
  const keep = old.filter((e) => !changed.has(e.identity));
  const add = fresh.filter((e) => e.identity !== 0 && changed.has(e.identity));
  if (add.length === 0) return keep;
  const out: MapEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < keep.length || j < add.length) {
    if (j >= add.length || (i < keep.length && keep[i]!.identity < add[j]!.identity)) out.push(keep[i++]!);
    else out.push(add[j++]!);
  }
  return out;
}

function labelText(labels: readonly Label[]): string {
  let s = '';
  for (const l of labels) s += `${l.source}:${l.key}=${l.value};`;
  return s;
}

/** What a resolution of these rules reads besides the selector cache. */
function ruleDeps(selected: readonly SelectedRule[]): { named: boolean; services: boolean; policies: boolean } {
  const out = { named: false, services: false, policies: false };
  for (const { rule } of selected) {
    for (const section of [rule.ingress, rule.ingressDeny, rule.egress, rule.egressDeny]) {
      for (const pr of section) {
        if (pr.ports?.some((p) => typeof p.port === 'string')) out.named = true;
        for (const peer of pr.peers ?? []) {
          if (peer.kind === 'service') out.services = true;
          if (peer.kind === 'cidrGroup') out.policies = true;
        }
      }
    }
  }
  return out;
}

function selectsLabels(rules: readonly Rule[], labels: readonly Label[]): boolean {
  return rules.some((r) => !r.hostPolicy && r.endpointSelector !== null && selectorMatches(r.endpointSelector, labels));
}

export class PolicyEngine {
  #cache = new SelectorCache();
  #policies: readonly PolicyObject[] = [];
  #services: readonly ServiceInput[] = [];
  #servicesKey = '[]';
  #servicesStamp = 0;
  #memos = new Map<number | string, Memo & { labels: readonly Label[] }>();

  /** Identities the engine knows (reserved included). */
  get identities(): readonly Identity[] {
    return this.#cache.ids;
  }

  /**
   * The policies in force, in order. Endpoints selected by a policy that was added or removed
   * (a changed file's policies are new objects) are resolved again on their next `resolve`.
   */
  setPolicies(policies: readonly PolicyObject[]): void {
    const before = this.#policies;
    this.#policies = policies;
    if (before.length === policies.length && before.every((p, i) => p === policies[i])) return;
    const prev = new Set(before);
    const next = new Set(policies);
    const changed: PolicyObject[] = [];
    for (const p of policies) if (!prev.has(p)) changed.push(p);
    for (const p of before) if (!next.has(p)) changed.push(p);
    if (changed.length === 0) {
      // Same policies in another order: the order of every endpoint's rules may differ.
      this.#memos.clear();
      return;
    }
    const rules = changed.flatMap((p) => p.rules);
    for (const [key, memo] of this.#memos) {
      if (memo.usesPolicies || selectsLabels(rules, memo.labels)) this.#memos.delete(key);
    }
  }

  setServices(services: readonly ServiceInput[]): void {
    const key = JSON.stringify(services);
    if (key === this.#servicesKey) return;
    this.#services = services;
    this.#servicesKey = key;
    this.#servicesStamp++;
  }

  /**
   * Every identity the datapath may see (reserved ones are added when missing), each id once.
   * Costs the difference: each added or removed identity is matched against the cached selectors only.
   */
  setIdentities(identities: readonly Identity[]): number {
    // A given identity replaces the reserved one of its id. No copy of the list: at 10k
    // identities building a map of them cost more than the change itself.
    let overridden: Set<number> | null = null;
    for (const i of identities) if (RESERVED_IDS.has(i.id)) (overridden ??= new Set()).add(i.id);
    const reserved = overridden ? RESERVED.filter((r) => !overridden.has(r.id)) : RESERVED;
    return this.#cache.setIdentities(reserved, identities);
  }

  /** One identity added or changed (an endpoint of another node, a learned address): costs the cached selectors it matches. */
  upsertIdentity(identity: Identity): void {
    this.#cache.upsert(identity);
  }

  /** One identity gone. Reserved identities stay. */
  removeIdentity(id: number): void {
    if (RESERVED_IDS.has(id)) return;
    this.#cache.delete(id);
  }

  /** The map state of one endpoint (`key`: its id), recomputed only when something it depends on changed. */
  resolve(key: number | string, endpoint: EndpointInput): EngineResolution {
    const inputKey = `${labelText(endpoint.labels)}|${JSON.stringify(endpoint.namedPorts ?? {})}`;
    const memo = this.#memos.get(key);
    if (memo && memo.inputKey === inputKey && this.#current(memo)) return { policy: memo.policy, changed: false };
    const same = memo !== undefined && memo.inputKey === inputKey;
    const selected = same ? memo.selected : selectingRules(this.#policies, endpoint.labels);
    const deps = ruleDeps(selected);
    const clock = this.#cache.clock;
    // Only identities changed since (the rules and whatever else it reads are as they were): an
    // identity's entries depend on its own contributions and the wildcard's alone, so only the
    // changed identities' entries are computed and spliced in.
    const partial = same && this.#onlyIdentitiesChanged(memo) ? this.#cache.changedSince(memo.clock) : null;
    const view: IdentityView = partial && partial.size <= PARTIAL_MAX ? this.#restricted(partial) : this.#cache;
    const recording = new Map<string, number>();
    this.#cache.recording = recording;
    let policy: EndpointPolicy;
    try {
      const ingress = resolveDirection(selected, 'ingress', endpoint, view, this.#services, this.#policies);
      const egress = resolveDirection(selected, 'egress', endpoint, view, this.#services, this.#policies);
      policy =
        view === this.#cache
          ? { ingress, egress }
          : {
              ingress: { enforced: ingress.enforced, entries: spliceEntries(memo!.policy.ingress.entries, ingress.entries, partial!) },
              egress: { enforced: egress.enforced, entries: spliceEntries(memo!.policy.egress.entries, egress.entries, partial!) },
            };
    } finally {
      this.#cache.recording = null;
    }
    this.#memos.set(key, {
      labels: endpoint.labels,
      inputKey,
      selected,
      policy,
      deps: recording,
      namedStamp: deps.named ? this.#cache.namedStamp : -1,
      servicesStamp: deps.services ? this.#servicesStamp : -1,
      usesPolicies: deps.policies,
      clock,
    });
    return { policy, changed: true };
  }

  /** The cache seen through the identities in `ids` only. */
  #restricted(ids: ReadonlySet<number>): IdentityView {
    const cache = this.#cache;
    return {
      get ids() {
        return cache.ids.filter((i) => ids.has(i.id));
      },
      allNamed: () => cache.allNamed(),
      namedOf: (id) => cache.namedOf(id),
      select: (s) => {
        const all = cache.select(s);
        const out = new Set<number>();
        for (const id of ids) if (all.has(id)) out.add(id);
        return out;
      },
    };
  }

  #onlyIdentitiesChanged(m: Memo): boolean {
    return (m.namedStamp === -1 || m.namedStamp === this.#cache.namedStamp) && (m.servicesStamp === -1 || m.servicesStamp === this.#servicesStamp);
  }

  /** Drops what the engine kept for an endpoint that is gone. */
  forget(key: number | string): void {
    this.#memos.delete(key);
  }

  #current(m: Memo): boolean {
    if (m.namedStamp !== -1 && m.namedStamp !== this.#cache.namedStamp) return false;
    if (m.servicesStamp !== -1 && m.servicesStamp !== this.#servicesStamp) return false;
    for (const [k, stamp] of m.deps) if (this.#cache.stamp(k) !== stamp) return false;
    return true;
  }
}

