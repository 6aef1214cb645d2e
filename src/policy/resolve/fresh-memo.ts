/**
 * The policy entries of fresh peer identities (the addresses a DNS answer taught the FQDN path),
 * for one kind of endpoint, memoised by what the policies can see of each identity.
 *
 *   fresh identity ──► signature: its labels whose key a peer selector of the resolution names
 *     ├─ signature known: the remembered entries, stamped with this identity's id
 *     └─ unknown: resolveEndpointPolicy's resolution against the unknown identities (+ reserved),
 *        `finish`ed (proxy visibility), split per identity and remembered per signature
 *
 * Why a signature decides the entries: in `resolveDirection` a peer identity's entries follow from
 * the peer rules that select it and its named ports (learned addresses have none: an identity with
 * named ports is never memoised). Which rules select it is `IdentityView.select(selector)`, and a
 * selector matches on the labels whose key it names alone (`requirementMatches`). The selectors a
 * resolution evaluates depend on the policies, services and endpoint, not on the identities, so
 * one recording per kind gives the keys; two identities that agree on those labels are selected by
 * the same rules. A learned address's 33 `cidr:` labels thus count only where a toCIDR (or CIDR
 * group) selector names one of its prefixes, and its `fqdn:` labels only where a toFQDNs selector
 * names them: every address of `*.example.com` shares one resolution.
 *
 * Valid for one stamp (the regenerator's revision: policies, services and endpoints as of its last
 * pass): `begin` with another stamp forgets everything. Bounded: at most `maxSignatures` per kind
 * and `maxKinds` kinds (a full table is emptied, never grown).
 */
import type { Label } from '../api/labels.js';
import type { PolicyObject, Selector } from '../api/types.js';
import { reservedIdentities, type Identity } from './identity.js';
import { resolveDirection, selectingRules, type EndpointInput, type ServiceInput } from './resolve.js';
import { arrayView, type IdentityView } from './selector-cache.js';
import type { EndpointPolicy, MapEntry } from './types.js';

export interface FreshResolveInput {
  readonly policies: readonly PolicyObject[];
  readonly services: readonly ServiceInput[];
  readonly endpoint: EndpointInput;
  /** Applied to a resolution before its entries are taken (proxy visibility); per identity, as `applyVisibility` is. */
  readonly finish?: (policy: EndpointPolicy) => EndpointPolicy;
}

/** Entries of the fresh identities only (no wildcard or reserved identity entries), per direction. */
export interface FreshEntries {
  readonly ingress: readonly MapEntry[];
  readonly egress: readonly MapEntry[];
}

interface Template {
  /** The identity the entries were resolved for (its own entries are used as they are). */
  readonly id: number;
  readonly ingress: readonly MapEntry[];
  readonly egress: readonly MapEntry[];
}

interface KindMemo {
  /** Label keys the kind's selectors name; null until its first resolution, or when it cannot be told (never memoised). */
  keys: Set<string> | null;
  memoable: boolean;
  readonly templates: Map<string, Template>;
}

const EMPTY: FreshEntries = { ingress: [], egress: [] };

export class FreshIdentityMemo {
  readonly #maxSignatures: number;
  readonly #maxKinds: number;
  #stamp: number | null = null;
  #kinds = new Map<string, KindMemo>();
  /** Identities answered from a signature already known / resolved, since construction. */
  hits = 0;
  misses = 0;

  constructor(maxSignatures = 4096, maxKinds = 1024) {
    this.#maxSignatures = maxSignatures;
    this.#maxKinds = maxKinds;
  }

  /** Starts a batch under `stamp`: a stamp other than the last one forgets every kind. */
  begin(stamp: number): void {
    if (stamp !== this.#stamp) {
      this.#stamp = stamp;
      this.#kinds.clear();
    }
  }

  /**
   * The entries of `fresh` for an endpoint of `kind` (endpoints of one kind resolve alike: same
   * labels, named ports and `finish`): what `finish(resolveEndpointPolicy({identities: fresh}))`
   * holds for them, in `fresh` order.
   */
  resolve(kind: string, input: FreshResolveInput, fresh: readonly Identity[]): FreshEntries {
    if (fresh.length === 0) return EMPTY;
    let km = this.#kinds.get(kind);
    if (!km) {
      if (this.#kinds.size >= this.#maxKinds) this.#kinds.clear();
      km = { keys: null, memoable: true, templates: new Map() };
      this.#kinds.set(kind, km);
    }
    const ingress: MapEntry[] = [];
    const egress: MapEntry[] = [];
    let misses: Identity[] | null = null;
    for (const i of fresh) {
      const sig = km.keys !== null && km.memoable ? signature(i, km.keys) : null;
      const t = sig !== null ? km.templates.get(sig) : undefined;
      if (t === undefined) {
        (misses ??= []).push(i);
        continue;
      }
      this.hits++;
      stampInto(ingress, t.ingress, t.id, i.id);
      stampInto(egress, t.egress, t.id, i.id);
    }
    if (misses === null) return { ingress, egress };

    this.misses += misses.length;
    const { policy, keys, sawIds } = resolveRecording(input, misses);
    if (km.keys === null) km.keys = keys;
    // The resolution read the identities other than through selectors: their labels may count
    // beyond the recorded keys, so this kind is resolved every time.
    if (sawIds) km.memoable = false;
    // Named ports of one (never a learned address's) reach the wildcard's egress named ports, and
    // through them every identity's entries: such a batch teaches nothing.
    const teach = km.memoable && misses.every((i) => signature(i, keys) !== null);
    const own = new Map<number, { ingress: MapEntry[]; egress: MapEntry[] }>();
    for (const i of misses) own.set(i.id, { ingress: [], egress: [] });
    for (const e of policy.ingress.entries) own.get(e.identity)?.ingress.push(e);
    for (const e of policy.egress.entries) own.get(e.identity)?.egress.push(e);
    for (const i of misses) {
      const o = own.get(i.id)!;
      for (const e of o.ingress) ingress.push(e);
      for (const e of o.egress) egress.push(e);
      const sig = teach ? signature(i, km.keys) : null;
      if (sig === null || km.templates.has(sig)) continue;
      if (km.templates.size >= this.#maxSignatures) km.templates.clear();
      km.templates.set(sig, { id: i.id, ingress: o.ingress, egress: o.egress });
    }
    return { ingress, egress };
  }
}

/** The labels of `i` that selectors naming `keys` can see, as text; null when it has named ports (never memoised). */
function signature(i: Identity, keys: ReadonlySet<string>): string | null {
  if (i.namedPorts !== undefined && Object.keys(i.namedPorts).length > 0) return null;
  let sig = '';
  for (const l of i.labels as readonly Label[]) if (keys.has(l.key)) sig += `${l.source}:${l.key}=${l.value}\n`;
  return sig;
}

function stampInto(out: MapEntry[], entries: readonly MapEntry[], from: number, to: number): void {
  if (from === to) {
    for (const e of entries) out.push(e);
    return;
  }
  for (const e of entries) out.push({ ...e, identity: to });
}

/**
 * `resolveEndpointPolicy` (reserved identities, then `identities`) through a view that records the
 * label keys of every selector evaluated, and whether the identities were read around it.
 */
function resolveRecording(input: FreshResolveInput, identities: readonly Identity[]): { policy: EndpointPolicy; keys: Set<string>; sawIds: boolean } {
  const byId = new Map<number, Identity>();
  for (const r of reservedIdentities()) byId.set(r.id, r);
  for (const i of identities) byId.set(i.id, i);
  const base = arrayView([...byId.values()]);
  const keys = new Set<string>();
  let sawIds = false;
  const view: IdentityView = {
    get ids() {
      sawIds = true;
      return base.ids;
    },
    allNamed: () => base.allNamed(),
    namedOf: (id) => base.namedOf(id),
    select: (s: Selector) => {
      for (const r of s.requirements) keys.add(r.key);
      return base.select(s);
    },
  };
  const selected = selectingRules(input.policies, input.endpoint.labels);
  const resolved: EndpointPolicy = {
    ingress: resolveDirection(selected, 'ingress', input.endpoint, view, input.services, input.policies),
    egress: resolveDirection(selected, 'egress', input.endpoint, view, input.services, input.policies),
  };
  return { policy: input.finish ? input.finish(resolved) : resolved, keys, sawIds };
}
