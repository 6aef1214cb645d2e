/**
 * Rules → map state for one endpoint.
 *
 *   policies ──select(endpoint labels)──► rules for this endpoint, per direction
 *     └─ each peer rule: peers → identities (or the wildcard), ports → (proto, port range)
 *          └─ contributions {allow|deny, proto, lo..hi, l7, ref} per identity
 *               └─ truth(identity, proto, port): deny > allow(+merged L7 → redirect)
 *                    └─ entries: identity-0 entries for the wildcard truth, then per-identity
 *                       entries wherever the lookup order of lookup.ts would not already give
 *                       that identity's truth (derived entries), so one lookup is always right.
 */
import type { Label } from '../api/labels.js';
import { LABEL_KEY } from '../api/labels.js';
import { expandCidrGroupPeer } from '../api/cidr-group.js';
import { fqdnSelectorKey, toFQDN } from '../api/fqdn.js';
import { selectorMatches } from '../api/selector.js';
import type { Direction, L7Spec, Peer, PeerRule, PolicyObject, PortSpec, Rule, Selector } from '../api/types.js';
import { PROTO } from '../api/types.js';
import type { Identity, NamedPort } from './identity.js';
import { reservedIdentities } from './identity.js';
import { lookupPolicy } from './lookup.js';
import { arrayView, namedPortMap, type IdentityView, type NamedPorts } from './selector-cache.js';
import type { DirectionPolicy, DropReason, EndpointPolicy, HttpRule, L7Rules, MapEntry, MapVerdict, RuleRef } from './types.js';
import { DROP_REASON } from './types.js';

export interface EndpointInput {
  readonly labels: readonly Label[];
  readonly namedPorts?: Readonly<Record<string, NamedPort>>;
}

export interface ServiceInput {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The pod selector; null for services without a selector. */
  readonly selector: Readonly<Record<string, string>> | null;
}

export interface ResolveInput {
  readonly policies: readonly PolicyObject[];
  readonly endpoint: EndpointInput;
  /** Every identity the datapath may see; reserved identities are added when missing. */
  readonly identities: readonly Identity[];
  readonly services?: readonly ServiceInput[];
}

/** A rule of a policy that selects the endpoint. */
export interface SelectedRule {
  readonly policy: PolicyObject;
  readonly rule: Rule;
}

/** Rules of `policies` whose endpointSelector selects `labels` (host policies never do). */
export function selectingRules(policies: readonly PolicyObject[], labels: readonly Label[]): SelectedRule[] {
  const out: SelectedRule[] = [];
  for (const policy of policies) {
    for (const rule of policy.rules) {
      if (rule.hostPolicy || rule.endpointSelector === null) continue;
      if (selectorMatches(rule.endpointSelector, labels)) out.push({ policy, rule });
    }
  }
  return out;
}

/** Whether the direction is in default-deny for these rules. */
export function isEnforced(rules: readonly SelectedRule[], dir: Direction): boolean {
  return rules.some(({ rule }) => (dir === 'ingress' ? rule.hasIngress && rule.defaultDenyIngress : rule.hasEgress && rule.defaultDenyEgress));
}

interface Contribution {
  readonly deny: boolean;
  /** An allow that needs mutual authentication, which Membrane lacks: dropped with AUTH_REQUIRED. */
  readonly auth: boolean;
  /** 0 = every protocol (L3-only). */
  readonly proto: number;
  readonly lo: number;
  readonly hi: number;
  readonly l7: L7Spec | null;
  readonly ref: RuleRef;
  /** Unique per contribution object: identities with the same contributions share their entries. */
  readonly seq: number;
  /** TIER.admin … TIER.fallback; every CNP/CCNP/NetworkPolicy rule is TIER.normal. */
  readonly tier: number;
  /** Within the tier, lower first (ClusterNetworkPolicy `priority + i/100`; 0 otherwise). */
  readonly priority: number;
  /** A ClusterNetworkPolicy `Pass`: the next tier decides what it matches. */
  readonly pass: boolean;
}

/**
 * Tiers in evaluation order (Cilium pkg/policy/types/policyentry.go `Admin`, `Normal`,
 * `Baseline`, then the rules Cilium synthesizes after every tier, pkg/policy/repository.go).
 */
const TIER = { admin: 0, normal: 1, baseline: 2, fallback: 3 } as const;

/**
 * How the tiers of one endpoint direction combine (see `truthAt`): `normalFinal` = a developer-tier
 * rule (CNP/CCNP/NetworkPolicy) puts the direction into default deny, so that tier decides
 * everything that reaches it and the Baseline tier is never consulted for this endpoint.
 */
interface TierContext {
  readonly normalFinal: boolean;
}

let contributionSeq = 0;

/** A truth value at one point of the key space. */
interface Truth {
  readonly verdict: MapVerdict;
  readonly l7: L7Rules | undefined;
  /** For 'deny': POLICY_DENY, or AUTH_REQUIRED for what only auth-requiring rules allow. */
  readonly reason?: DropReason;
  readonly refs: readonly RuleRef[];
}

const TRANSPORTS = [PROTO.TCP, PROTO.UDP, PROTO.SCTP] as const;

function protoNumbers(p: PortSpec['protocol']): number[] {
  switch (p) {
    case 'TCP':
      return [PROTO.TCP];
    case 'UDP':
      return [PROTO.UDP];
    case 'SCTP':
      return [PROTO.SCTP];
    case 'ICMP':
      return [PROTO.ICMP];
    case 'ICMPv6':
      return [PROTO.ICMPv6];
    case 'VRRP':
      return [PROTO.VRRP];
    case 'IGMP':
      return [PROTO.IGMP];
    case 'ANY':
      return [...TRANSPORTS];
  }
}

/** Concrete (proto, lo, hi) ranges of a port spec; named ports resolve through `named`. */
export function portRanges(ps: PortSpec, named: ReadonlyMap<string, readonly NamedPort[]>): { proto: number; lo: number; hi: number }[] {
  if (typeof ps.port === 'string') {
    const hits = named.get(ps.port) ?? [];
    const want = protoNumbers(ps.protocol);
    return hits.filter((np) => want.includes(np.protocol)).map((np) => ({ proto: np.protocol, lo: np.port, hi: np.port }));
  }
  const protos = protoNumbers(ps.protocol);
  // VRRP and IGMP have no ports: the whole protocol.
  if (ps.protocol === 'VRRP' || ps.protocol === 'IGMP') return protos.map((proto) => ({ proto, lo: 0, hi: 65535 }));
  let lo = ps.port;
  let hi = ps.port;
  if (ps.endPort !== undefined && ps.endPort >= ps.port) hi = ps.endPort;
  else if (ps.port === 0) hi = 65535;
  return protos.map((proto) => ({ proto, lo, hi }));
}

function serviceSelectors(peer: Peer & { kind: 'service' }, services: readonly ServiceInput[]): Selector[] {
  const out: Selector[] = [];
  for (const svc of services) {
    if (peer.namespace !== undefined && svc.namespace !== peer.namespace) continue;
    if (peer.serviceName !== undefined && svc.name !== peer.serviceName) continue;
    if (peer.serviceSelector !== undefined) {
      const svcLabels: Label[] = Object.entries(svc.labels).map(([k, v]) => ({ source: 'k8s', key: k, value: v }));
      if (!selectorMatches(peer.serviceSelector, svcLabels)) continue;
    }
    if (svc.selector === null) continue;
    out.push({
      requirements: [
        ...Object.entries(svc.selector).map(([k, v]) => ({ source: 'k8s', key: k, operator: 'In' as const, values: [v] })),
        { source: 'k8s', key: LABEL_KEY.podNamespace, operator: 'In' as const, values: [svc.namespace] },
      ],
    });
  }
  return out;
}

/**
 * Identities a peer selects; 'all' for the wildcard. `policies` supplies the CiliumCIDRGroups
 * that `cidrGroupRef`/`cidrGroupSelector` peers name.
 */
export function peerIdentities(
  peer: Peer,
  identities: readonly Identity[] | IdentityView,
  services: readonly ServiceInput[],
  policies: readonly PolicyObject[] = [],
): 'all' | Set<number> {
  const view = viewOf(identities);
  const out = new Set<number>();
  switch (peer.kind) {
    case 'none':
      return out;
    case 'cidrGroup': {
      for (const p of expandCidrGroupPeer(peer, policies)) {
        const sel = peerIdentities(p, view, services);
        if (sel === 'all') return 'all';
        for (const id of sel) out.add(id);
      }
      return out;
    }
    case 'selector': {
      if (peer.anyOf.some((s) => s.requirements.length === 0)) return 'all';
      for (const s of peer.anyOf) for (const id of view.select(s)) out.add(id);
      return out;
    }
    case 'service': {
      for (const s of serviceSelectors(peer, services)) for (const id of view.select(s)) out.add(id);
      return out;
    }
    case 'fqdn': {
      // The `fqdn:` label the FQDN subsystem gives the addresses this selector admits.
      for (const id of view.select(fqdnSelector(peer.labelKey))) out.add(id);
      return out;
    }
  }
}

const fqdnSelectors = new Map<string, Selector>();

function fqdnSelector(labelKey: string): Selector {
  let s = fqdnSelectors.get(labelKey);
  if (!s) {
    if (fqdnSelectors.size >= 65536) fqdnSelectors.clear();
    fqdnSelectors.set(labelKey, (s = { requirements: [{ source: 'fqdn', key: labelKey, operator: 'Exists', values: [] }] }));
  }
  return s;
}

function viewOf(identities: readonly Identity[] | IdentityView): IdentityView {
  return Array.isArray(identities) ? arrayView(identities as readonly Identity[]) : (identities as IdentityView);
}

function l7Equal(a: L7Rules | undefined, b: L7Rules | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

function truthEqual(a: Truth | null, b: Truth | null): boolean {
  if (a === null || b === null) return a === b;
  return a.verdict === b.verdict && a.reason === b.reason && l7Equal(a.l7, b.l7);
}

function httpRule(r: NonNullable<L7Spec & { kind: 'http' }>['rules'][number]): HttpRule {
  return {
    ...(r.method !== undefined ? { method: r.method } : {}),
    ...(r.path !== undefined ? { path: r.path } : {}),
    ...(r.host !== undefined ? { host: r.host } : {}),
    ...(r.headers !== undefined ? { headers: r.headers.map((h) => ({ ...h })) } : {}),
    ...(r.headerMatches !== undefined ? { headerMatches: r.headerMatches.map((h) => ({ ...h })) } : {}),
  };
}

function dedupe<T>(xs: readonly T[]): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const x of xs) {
    const k = JSON.stringify(x);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(x);
    }
  }
  return out;
}

/**
 * Merges the allow contributions at one point. L7 rules of every rule with L7 on this port are
 * OR-ed; an allow without L7 (L3-only or L4-only) makes the merged rules allow everything, but
 * the port is still redirected (Cilium folds the L4 allow into the L7 redirect).
 */
function mergeAllows(allows: readonly Contribution[]): Truth {
  const refs = allows.map((c) => c.ref);
  const withL7 = allows.filter((c) => c.l7 !== null);
  if (withL7.length === 0) return { verdict: 'allow', l7: undefined, refs };
  const allowAll = allows.some((c) => c.l7 === null);
  const first = withL7[0]!.l7!;
  if (first.kind === 'dns') {
    const patterns: string[] = [];
    let all = allowAll;
    for (const c of withL7) {
      if (c.l7!.kind !== 'dns') continue;
      if (c.l7!.rules.length === 0) all = true;
      for (const r of c.l7!.rules) {
        if (r.matchName !== undefined) patterns.push(fqdnSelectorKey({ matchName: r.matchName }));
        if (r.matchPattern !== undefined) patterns.push(fqdnSelectorKey({ matchPattern: r.matchPattern }));
      }
    }
    return { verdict: 'redirect', l7: { kind: 'dns', patterns: dedupe(patterns), allowAll: all }, refs };
  }
  // Only serverNames rules: the TLS passthrough proxy checks the ClientHello's SNI against the
  // union of their names.
  if (withL7.every((c) => c.l7!.kind === 'tls')) {
    const names: string[] = [];
    for (const c of withL7) if (c.l7!.kind === 'tls') names.push(...c.l7!.serverNames);
    return { verdict: 'redirect', l7: { kind: 'tls', serverNames: dedupe(names), allowAll }, refs };
  }
  // HTTP (and unsupported L7 protocols, which allow nothing at L7 unless an L4 allow covers them).
  // serverNames rules merged with HTTP rules (from other rules on this peer and port) allow no
  // HTTP request: Cilium merges the TLS parser into the HTTP one, and a plain HTTP request has no
  // SNI to match, while TLS cannot be parsed as HTTP without termination (pkg/policy/l4.go
  // rejects SNI with L7 rules without terminatingTLS).
  const rules: HttpRule[] = [];
  let all = allowAll;
  for (const c of withL7) {
    const l7 = c.l7!;
    if (l7.kind === 'http') {
      if (l7.rules.length === 0) all = true;
      rules.push(...l7.rules.map(httpRule));
    }
  }
  return { verdict: 'redirect', l7: { kind: 'http', rules: dedupe(rules), allowAll: all }, refs };
}

/** The verdict of contributions of one tier and priority level: deny > allow (merged L7) > pass. */
function decideLevel(hits: readonly Contribution[]): Truth | 'pass' {
  const denies = hits.filter((c) => c.deny);
  if (denies.length > 0) return { verdict: 'deny', l7: undefined, reason: DROP_REASON.POLICY_DENY, refs: denies.map((c) => c.ref) };
  const allows = hits.filter((c) => !c.pass);
  if (allows.length === 0) return 'pass';
  // Cilium: when any rule allowing this key requires authentication, the entry requires it. With
  // no authentication to offer, the traffic is dropped as Cilium drops it before a handshake.
  const auth = allows.filter((c) => c.auth);
  if (auth.length > 0) return { verdict: 'deny', l7: undefined, reason: DROP_REASON.AUTH_REQUIRED, refs: auth.map((c) => c.ref) };
  return mergeAllows(allows);
}

/**
 * The truth at one point. Without ClusterNetworkPolicy rules: deny > auth > allow (merged L7).
 * With them, the first tier with a matching rule decides, as Cilium's precedence ordering does
 * (pkg/policy/rules.go `computeTierPriorities`/`resolveL4Policy`: rules sorted by tier, then
 * priority; lower is evaluated first; deny > allow at one priority level):
 *   Admin: the lowest priority level among the matching rules decides; `Pass` there skips the
 *     rest of the Admin tier (Cilium reserves the priorities right after a pass for the lower
 *     tiers' entries, so they outrank the remaining Admin rules);
 *   Normal (CNP/CCNP/NetworkPolicy, all priority 0): any match decides, as without tiers, L7
 *     included; no match with the direction in default deny is final (`normalFinal`): the
 *     NetworkPolicy tier "always makes a final decision for selected pods"
 *     (network-policy-api apis/v1alpha2 `Tier`);
 *   Baseline: as Admin, when the Normal tier did not decide;
 *   fallback: the wildcard rules Cilium synthesizes for the direction (allow-any when only
 *     non-default-deny rules select it, deny-any when it is in default deny and has a Pass).
 * null = no rule matches here (the datapath's miss: default deny when enforced, else allow).
 */
function truthAt(contribs: readonly Contribution[], proto: number | null, port: number, ctx: TierContext): Truth | null {
  const hits = contribs.filter((c) => c.proto === 0 || (proto !== null && c.proto === proto && c.lo <= port && port <= c.hi));
  if (hits.length === 0) return null;
  if (hits.every((c) => c.tier === TIER.normal)) return decideLevel(hits) as Truth;
  for (const tier of [TIER.admin, TIER.normal, TIER.baseline, TIER.fallback]) {
    if (tier === TIER.baseline && ctx.normalFinal) continue;
    const inTier = hits.filter((c) => c.tier === tier);
    if (inTier.length === 0) continue;
    const first = Math.min(...inTier.map((c) => c.priority));
    const verdict = decideLevel(inTier.filter((c) => c.priority === first));
    if (verdict !== 'pass') return verdict;
  }
  return null;
}

/** Splits [lo, hi] into aligned prefixes (port, prefix length), the canonical minimal cover. */
export function rangeToPrefixes(lo: number, hi: number): { port: number; prefixLen: number }[] {
  const out: { port: number; prefixLen: number }[] = [];
  let cur = lo;
  while (cur <= hi) {
    let size = 1;
    let len = 16;
    while (len > 0) {
      const next = size * 2;
      if (cur % next !== 0 || cur + next - 1 > hi) break;
      size = next;
      len--;
    }
    out.push({ port: cur, prefixLen: len });
    cur += size;
  }
  return out;
}

function entry(identity: number, proto: number, port: number, prefixLen: number, t: Truth): MapEntry {
  return {
    identity,
    protocol: proto,
    port: proto === 0 ? 0 : port,
    portPrefixLen: proto === 0 ? 0 : prefixLen,
    verdict: t.verdict,
    ...(t.l7 !== undefined ? { l7: t.l7 } : {}),
    ...(t.verdict === 'deny' ? { dropReason: t.reason ?? DROP_REASON.POLICY_DENY } : {}),
    derivedFrom: t.refs,
  };
}

interface Segment {
  readonly lo: number;
  readonly hi: number;
}

function segmentsFor(contribs: readonly Contribution[], proto: number): Segment[] {
  const cuts = new Set<number>([0, 65536]);
  for (const c of contribs) {
    if (c.proto !== proto) continue;
    cuts.add(c.lo);
    cuts.add(c.hi + 1);
  }
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Segment[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) out.push({ lo: sorted[i]!, hi: sorted[i + 1]! - 1 });
  return out;
}

/** Emits entries for runs of consecutive segments with equal truth (and equal group key). */
function emitRuns(
  identity: number,
  proto: number,
  segs: readonly Segment[],
  pick: (i: number) => { truth: Truth; group: number } | null,
  out: MapEntry[],
): void {
  let i = 0;
  while (i < segs.length) {
    const cur = pick(i);
    if (!cur) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < segs.length) {
      const nx = pick(j + 1);
      if (!nx || nx.group !== cur.group || !truthEqual(nx.truth, cur.truth)) break;
      j++;
    }
    for (const p of rangeToPrefixes(segs[i]!.lo, segs[j]!.hi)) out.push(entry(identity, proto, p.port, p.prefixLen, cur.truth));
    i = j + 1;
  }
}

/** The RuleRef of a rule Cilium synthesizes for a direction (its `derived-from` label). */
function synthesizedRef(dir: Direction, what: 'allow-any' | 'deny-any'): RuleRef {
  return { policy: `reserved:io.cilium.policy.derived-from=${what}-${dir}`, namespace: undefined, kind: 'ClusterNetworkPolicy', direction: dir, index: 0 };
}

/** Resolves one direction. Exported for trace and tests. */
export function resolveDirection(
  selected: readonly SelectedRule[],
  dir: Direction,
  endpoint: EndpointInput,
  identities: readonly Identity[] | IdentityView,
  services: readonly ServiceInput[],
  policies: readonly PolicyObject[] = [],
): DirectionPolicy {
  const normalFinal = isEnforced(selected, dir);
  const view = viewOf(identities);
  const endpointNamed = namedPortMap(endpoint.namedPorts);

  const wildcard: Contribution[] = [];
  const perId = new Map<number, Contribution[]>();

  const contributions = (pr: PeerRule, deny: boolean, ref: RuleRef, named: NamedPorts): Contribution[] => {
    const list: Contribution[] = [];
    const auth = !deny && pr.authMode !== undefined;
    const tier = pr.tier === 'admin' ? TIER.admin : pr.tier === 'baseline' ? TIER.baseline : TIER.normal;
    const rank = { tier, priority: pr.priority ?? 0, pass: pr.pass === true };
    if (pr.ports === null) list.push({ deny, auth, proto: 0, lo: 0, hi: 65535, l7: null, ref, seq: contributionSeq++, ...rank });
    else for (const ps of pr.ports) for (const r of portRanges(ps, named)) list.push({ deny, auth, proto: r.proto, lo: r.lo, hi: r.hi, l7: deny ? null : ps.l7, ref, seq: contributionSeq++, ...rank });
    return list;
  };
  const addTo = (target: number, list: readonly Contribution[]): void => {
    const cur = perId.get(target);
    if (cur) cur.push(...list);
    else perId.set(target, [...list]);
  };

  let tiered = false;
  let hasPass = false;
  for (const { policy, rule } of selected) {
    if (policy.kind === 'ClusterNetworkPolicy' && (dir === 'ingress' ? rule.hasIngress : rule.hasEgress)) tiered = true;
    for (const deny of [false, true]) {
      const section = dir === 'ingress' ? (deny ? rule.ingressDeny : rule.ingress) : deny ? rule.egressDeny : rule.egress;
      for (const pr of section) {
        if (pr.pass) hasPass = true;
        const action =
          policy.kind === 'ClusterNetworkPolicy'
            ? { action: deny ? ('Deny' as const) : pr.pass ? ('Pass' as const) : ('Accept' as const), ...(pr.ruleName !== undefined ? { ruleName: pr.ruleName } : {}) }
            : {};
        const ref: RuleRef = { policy: policy.name, namespace: policy.namespace, kind: policy.kind, direction: dir, index: pr.index, ...(deny ? { deny: true } : {}), specIndex: rule.specIndex, ...action };
        if (pr.peers === null) {
          wildcard.push(...contributions(pr, deny, ref, dir === 'ingress' ? endpointNamed : view.allNamed()));
          continue;
        }
        let targets: 'all' | Set<number> = new Set();
        for (const peer of pr.peers) {
          const sel = peerIdentities(peer, view, services, policies);
          if (sel === 'all') {
            targets = 'all';
            break;
          }
          for (const id of sel) targets.add(id);
        }
        if (targets === 'all') {
          wildcard.push(...contributions(pr, deny, ref, dir === 'ingress' ? endpointNamed : view.allNamed()));
          continue;
        }
        // Egress named ports resolve per peer; anything else is the same for every target.
        const perTarget = dir === 'egress' && pr.ports !== null && pr.ports.some((ps) => typeof ps.port === 'string');
        const shared = perTarget ? null : contributions(pr, deny, ref, endpointNamed);
        for (const id of [...targets].sort((a, b) => a - b)) addTo(id, shared ?? contributions(pr, deny, ref, view.namedOf(id)));
      }
    }
  }
  const ctx: TierContext = { normalFinal };
  if (tiered) {
    // The wildcard rule Cilium synthesizes after every tier (pkg/policy/repository.go
    // `computePolicyEnforcementAndRules`): allow-any when no rule puts the direction into
    // default deny (a ClusterNetworkPolicy never does), deny-any when it is in default deny and a
    // Pass could fall through every tier. It gives a passed flow an explicit verdict.
    const fallback = (deny: boolean, what: 'allow-any' | 'deny-any'): Contribution => ({
      deny, auth: false, proto: 0, lo: 0, hi: 65535, l7: null, ref: synthesizedRef(dir, what), seq: contributionSeq++, tier: TIER.fallback, priority: 0, pass: false,
    });
    if (!normalFinal) wildcard.push(fallback(false, 'allow-any'));
    else if (hasPass) wildcard.push(fallback(true, 'deny-any'));
  }
  // A direction some ClusterNetworkPolicy rule selects is enforced, as in Cilium (its allow-any
  // entry keeps everything else allowed).
  const enforced = normalFinal || tiered;
  const first = mapEntries(wildcard, perId, enforced, ctx, view, false);
  // Tiers can make a peer's allow outrank a rule for every peer (an Admin Accept over a wildcard
  // Deny or L7 rule below it). The lookup order of the datapath (lookup.ts) lets an identity-0
  // deny or redirect win over any identity's allow, so such a policy is written without
  // identity-0 entries: every known identity gets its own, unknown ones miss (dropped: enforced).
  if (!tiered || oneLookupHolds(first, wildcard, perId, ctx)) return first;
  return mapEntries(wildcard, perId, true, ctx, view, true);
}

/** Whether one lookup in `dp` gives every identity with own contributions its truth at every point. */
function oneLookupHolds(dp: DirectionPolicy, wildcard: readonly Contribution[], perId: ReadonlyMap<number, readonly Contribution[]>, ctx: TierContext): boolean {
  for (const [id, own] of perId) {
    const all = [...wildcard, ...own];
    const protos = new Set<number>();
    for (const c of all) if (c.proto !== 0) protos.add(c.proto);
    // A protocol no rule names: only the protocol-0 entries answer it.
    const unnamed = [PROTO.TCP, PROTO.UDP, PROTO.SCTP, PROTO.ICMP, PROTO.ICMPv6, 253].find((p) => !protos.has(p))!;
    const points: [number, number][] = [[unnamed, 0]];
    for (const p of protos) for (const seg of segmentsFor(all, p)) points.push([p, seg.lo]);
    for (const [p, port] of points) {
      const desired = truthAt(all, protos.has(p) ? p : null, port, ctx);
      const got = lookupPolicy(dp, id, p, port);
      const gotTruth: Truth | null = got.entry
        ? { verdict: got.entry.verdict, l7: got.entry.l7, ...(got.entry.dropReason !== undefined ? { reason: got.entry.dropReason } : {}), refs: got.entry.derivedFrom }
        : null;
      if (!truthEqual(gotTruth, desired)) return false;
    }
  }
  return true;
}

/**
 * Contributions → map entries. `pinned`: no identity-0 entries; every identity of `view` gets its
 * own (see resolveDirection).
 */
function mapEntries(
  wildcard: readonly Contribution[],
  perIdIn: ReadonlyMap<number, readonly Contribution[]>,
  enforced: boolean,
  ctx: TierContext,
  view: IdentityView,
  pinned: boolean,
): DirectionPolicy {
  const perId = new Map<number, readonly Contribution[]>(perIdIn);
  if (pinned) for (const i of view.ids) if (i.id !== 0 && !perId.has(i.id)) perId.set(i.id, []);

  // Protocols with port-specific contributions anywhere.
  const protos = new Set<number>();
  for (const c of wildcard) if (c.proto !== 0) protos.add(c.proto);
  for (const list of perId.values()) for (const c of list) if (c.proto !== 0) protos.add(c.proto);
  const protoList = [...protos].sort((a, b) => a - b);
  // The wildcard's own cuts: within one of its segments its truth is constant.
  const segsByProto = new Map(protoList.map((p) => [p, segmentsFor(wildcard, p)]));

  const entries: MapEntry[] = [];
  // Identity 0: the wildcard truth.
  const w0 = pinned ? null : truthAt(wildcard, null, 0, ctx);
  if (w0) entries.push(entry(0, 0, 0, 0, w0));
  if (!pinned) {
    for (const p of protoList) {
      const segs = segsByProto.get(p)!;
      const truths = segs.map((s) => truthAt(wildcard, p, s.lo, ctx));
      // Group ids: runs of equal wildcard truth (so identity runs never cross a wildcard run).
      const groups: number[] = [];
      let g = 0;
      truths.forEach((t, i) => {
        if (i > 0 && !truthEqual(t, truths[i - 1]!)) g++;
        groups.push(g);
      });
      emitRuns(0, p, segs, (i) => {
        const t = truths[i]!;
        if (t === null || truthEqual(t, w0)) return null;
        return { truth: t, group: groups[i]! };
      }, entries);
    }
  }
  const wildcardEntries = entries.slice();

  // Each identity selected by a non-wildcard rule. Its segments are cut by its own and the
  // wildcard contributions only: within one, its truth, the wildcard's and what the lookup finds
  // are constant, so runs (and entries) are what the segments of every contribution would give,
  // at the cost of this identity's rules rather than the endpoint's.
  // Identities with the same contributions get the same entries but for the identity: computed
  // once (for the first of them), copied for the others.
  const byContributions = new Map<string, { id: number; entries: readonly MapEntry[] }>();
  for (const [id, own] of [...perId.entries()].sort((a, b) => a[0] - b[0])) {
    const sig = own.map((c) => c.seq).join(',');
    const same = byContributions.get(sig);
    if (same) {
      for (const e of same.entries) entries.push({ ...e, identity: id });
      continue;
    }
    const all = [...wildcard, ...own];
    const idEntries: MapEntry[] = [];
    const t0 = truthAt(all, null, 0, ctx);
    if (t0 && !truthEqual(t0, w0)) idEntries.push(entry(id, 0, 0, 0, t0));
    // Entries of one protocol never match a lookup of another: one base serves every protocol.
    const base: DirectionPolicy = { enforced, entries: [...wildcardEntries, ...idEntries] };
    for (const p of protoList) {
      const segs = segmentsFor(all, p);
      const wt = segs.map((seg) => (pinned ? null : truthAt(wildcard, p, seg.lo, ctx)));
      const groups: number[] = [];
      let g = 0;
      wt.forEach((t, i) => {
        if (i > 0 && !truthEqual(t, wt[i - 1]!)) g++;
        groups.push(g);
      });
      emitRuns(id, p, segs, (i) => {
        const desired = truthAt(all, p, segs[i]!.lo, ctx);
        if (desired === null) return null;
        const got = lookupPolicy(base, id, p, segs[i]!.lo);
        const gotTruth: Truth | null = got.entry
          ? { verdict: got.entry.verdict, l7: got.entry.l7, ...(got.entry.dropReason !== undefined ? { reason: got.entry.dropReason } : {}), refs: got.entry.derivedFrom }
          : null;
        const wildcardHere = wt[i]! !== null && !truthEqual(wt[i]!, w0);
        const needed = !truthEqual(gotTruth, desired) || (wildcardHere && !truthEqual(desired, wt[i]!));
        return needed ? { truth: desired, group: groups[i]! } : null;
      }, idEntries);
    }
    byContributions.set(sig, { id, entries: idEntries });
    entries.push(...idEntries);
  }
  return { enforced, entries };
}

export function resolveEndpointPolicy(input: ResolveInput): EndpointPolicy {
  const identities = withReserved(input.identities);
  const selected = selectingRules(input.policies, input.endpoint.labels);
  const services = input.services ?? [];
  return {
    ingress: resolveDirection(selected, 'ingress', input.endpoint, identities, services, input.policies),
    egress: resolveDirection(selected, 'egress', input.endpoint, identities, services, input.policies),
  };
}

const withReservedMemo = new WeakMap<readonly Identity[], Identity[]>();

/**
 * The reserved identities, then `identities` (which may replace them by id), once per array: the
 * agent resolves every endpoint against the same array, which then shares one IdentityView.
 */
function withReserved(identities: readonly Identity[]): Identity[] {
  let out = withReservedMemo.get(identities);
  if (!out) {
    const byId = new Map<number, Identity>();
    for (const r of reservedIdentities()) byId.set(r.id, r);
    for (const i of identities) byId.set(i.id, i);
    out = [...byId.values()];
    withReservedMemo.set(identities, out);
  }
  return out;
}

export { toFQDN };
