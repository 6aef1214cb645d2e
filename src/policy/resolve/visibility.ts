/**
 * Proxy visibility as a post-pass over an endpoint's resolved map state: the flows the
 * annotation names go through the proxies (flows, spans, access logs) and no verdict changes.
 *
 *   resolved EndpointPolicy ──for each annotated (direction, protocol, port)──►
 *     per peer identity: what lookupPolicy answers at that port, before →  after
 *       allow / default allow   → redirect, allow-all L7 rules of the annotation's parser
 *       deny / default deny     → unchanged (the kernel still drops it)
 *       redirect (policy's L7)  → unchanged (its rules keep deciding, whatever their parser)
 *
 * Semantics of Cilium's `mapState.AddVisibilityKeys` (pkg/policy/mapstate.go, v1.14): only allow
 * keys that do not already redirect become redirects; deny keys stay; a port whose policy already
 * redirects to a proxy keeps that redirect and its rules, also when the parser differs (the
 * endpoint's `addVisibilityRedirects` skips a port that already has a redirect). With no policy in
 * the direction (not enforced), the allow-all default becomes an L4-only redirect on that port.
 *
 * How: an exact-port (/16) identity-0 redirect where the wildcard answer allowed, then an
 * exact-port entry for each peer identity whose lookup would otherwise differ from its wanted
 * answer (as resolve.ts adds derived entries), so the one lookup of lookup.ts (and bpf/lib/policy.h)
 * stays right. Every identity of the direction is then checked against its wanted answer; if one
 * differs, the direction is left as it was (fail safe: visibility never widens or narrows).
 *
 * Pure; the result is memoized per (resolved policy object, annotation), so a policy that did not
 * change yields the same object and unchanged entries stay the same objects (the agent diffs
 * entries by identity).
 */
import type { VisibilityPolicy, VisibilityPort } from '../api/visibility.js';
import { lookupPolicy } from './lookup.js';
import type { DirectionPolicy, EndpointPolicy, L7Rules, LookupResult, MapEntry } from './types.js';

const memo = new WeakMap<EndpointPolicy, { key: string; out: EndpointPolicy }>();

/**
 * The endpoint policy with the annotation's redirects added. `visibility` null or undefined (or
 * without ports) returns `policy` itself.
 */
export function applyVisibility(policy: EndpointPolicy, visibility: VisibilityPolicy | null | undefined): EndpointPolicy {
  if (!visibility || visibility.ports.length === 0) return policy;
  const hit = memo.get(policy);
  if (hit && hit.key === visibility.key) return hit.out;
  const ingress = applyDirection(policy.ingress, visibility.ports.filter((p) => p.direction === 'ingress'));
  const egress = applyDirection(policy.egress, visibility.ports.filter((p) => p.direction === 'egress'));
  const out = ingress === policy.ingress && egress === policy.egress ? policy : { ingress, egress };
  memo.set(policy, { key: visibility.key, out });
  return out;
}

/** Allow-all L7 rules of a parser (Cilium's generateL7AllowAllRules: DNS `matchPattern: "*"`; HTTP no rules). */
export function allowAllRules(parser: VisibilityPort['parser']): L7Rules {
  return parser === 'http' ? { kind: 'http', rules: [], allowAll: true } : { kind: 'dns', patterns: [], allowAll: true };
}

/** Applies the direction's annotated ports one at a time; exported for tests. */
export function applyDirection(dir: DirectionPolicy, ports: readonly VisibilityPort[]): DirectionPolicy {
  let cur = dir;
  for (const p of ports) {
    const next = applyPort(cur, p);
    if (next === null) return dir;
    cur = next;
  }
  return cur;
}

interface Wanted {
  readonly verdict: MapEntry['verdict'] | 'default-deny' | 'default-allow';
  readonly entry: MapEntry | null;
}

/** What a peer must get at the port once visibility applies, from what it gets now. */
function wanted(r: LookupResult, p: VisibilityPort, identity: number): Wanted {
  if (r.verdict === 'allow' || r.verdict === 'default-allow') {
    return { verdict: 'redirect', entry: exact(identity, p, { verdict: 'redirect', l7: allowAllRules(p.parser), derivedFrom: r.entry?.derivedFrom ?? [] }) };
  }
  return { verdict: r.verdict, entry: r.entry };
}

function exact(identity: number, p: VisibilityPort, e: Pick<MapEntry, 'verdict' | 'l7' | 'dropReason' | 'derivedFrom'>): MapEntry {
  return {
    identity,
    protocol: p.protocol,
    port: p.port,
    portPrefixLen: 16,
    verdict: e.verdict,
    ...(e.l7 !== undefined ? { l7: e.l7 } : {}),
    ...(e.dropReason !== undefined ? { dropReason: e.dropReason } : {}),
    derivedFrom: e.derivedFrom,
  };
}

/**
 * Whether a lookup gives what is wanted: same verdict, drop reason, L7 rules and the rules it
 * derives from (the policies access logs and flows name).
 */
function same(got: LookupResult, want: Wanted): boolean {
  if (got.verdict !== want.verdict) return false;
  const a = got.entry;
  const b = want.entry;
  if (a === null || b === null) return a === b;
  if (a === b) return true;
  return a.dropReason === b.dropReason && JSON.stringify(a.l7) === JSON.stringify(b.l7) && JSON.stringify(a.derivedFrom) === JSON.stringify(b.derivedFrom);
}

function isExactAt(e: MapEntry, identity: number, p: VisibilityPort): boolean {
  return e.identity === identity && e.protocol === p.protocol && e.port === p.port && e.portPrefixLen === 16;
}

/** One annotated port; null when the result would not keep every verdict (never expected). */
function applyPort(dir: DirectionPolicy, p: VisibilityPort): DirectionPolicy | null {
  const identities = new Set<number>();
  for (const e of dir.entries) if (e.identity !== 0) identities.add(e.identity);
  // Identity 0 stands for every peer without entries of its own.
  const want = new Map<number, Wanted>();
  want.set(0, wanted(lookupPolicy(dir, 0, p.protocol, p.port), p, 0));
  for (const id of identities) want.set(id, wanted(lookupPolicy(dir, id, p.protocol, p.port), p, id));

  const w0 = want.get(0)!;
  let entries: readonly MapEntry[] = dir.entries;
  if (!same(lookupPolicy(dir, 0, p.protocol, p.port), w0) && w0.entry) {
    entries = [...dir.entries.filter((e) => !isExactAt(e, 0, p)), w0.entry];
  }
  let step: DirectionPolicy = entries === dir.entries ? dir : { enforced: dir.enforced, entries };
  const own: MapEntry[] = [];
  const replaced = new Set<number>();
  for (const id of identities) {
    const w = want.get(id)!;
    if (same(lookupPolicy(step, id, p.protocol, p.port), w)) continue;
    // The peer's own answer at this port, pinned with an exact entry (longest prefix for it).
    if (!w.entry) return null;
    own.push(w.entry.identity === id && isExactAt(w.entry, id, p) ? w.entry : exact(id, p, w.entry));
    replaced.add(id);
  }
  if (own.length > 0) {
    step = { enforced: dir.enforced, entries: [...step.entries.filter((e) => !(replaced.has(e.identity) && isExactAt(e, e.identity, p))), ...own] };
  }
  for (const [id, w] of want) if (!same(lookupPolicy(step, id, p.protocol, p.port), w)) return null;
  return step;
}
