/**
 * The L7 decision: one pure function that says whether one request on a redirected flow is
 * allowed. The HTTP proxy, the DNS proxy and `policy trace` all call it, so trace can never tell a
 * user something the proxies will not do.
 *
 *   flow (identities, protocol, port, policy of each LOCAL endpoint) + request
 *     → egress of the source (if local)  : lookup(dst identity) → deny | allow | redirect → L7 rules
 *     → ingress of the destination (if local): lookup(src identity) → …
 *     → allowed iff every judged direction allows; no judged direction → denied (fail closed)
 *
 * Semantics (cilium/proxy `cilium/network_policy.cc`, Cilium `pkg/policy/l4.go`):
 * - A direction whose entry for this peer and port is not a redirect puts no L7 restriction on the
 *   request ("allows all of L7"): the kernel already admitted the connection.
 * - A redirect whose rules are empty allows every request: a port rule with no `http_rules`
 *   "matches any payload from anyone" (Cilium folds an L4-only allow into the L7 redirect).
 * - A request of another protocol than the port's L7 parser is denied: Cilium hands the flow to
 *   that parser's proxy (DNS rules → DNS proxy), which cannot parse it.
 * - HTTP rules are OR-ed, the fields of one rule AND-ed (./l7.ts); DNS patterns as toFQDNs.
 * - TLS (serverNames without termination): the ClientHello's SNI must match one of the names;
 *   no SNI matches none. An HTTP request on such a port is a parser mismatch (denied); a
 *   ClientHello on an HTTP-rule port never becomes a request: the HTTP proxy answers 400.
 */
import { evaluateDns, evaluateHttp, evaluateTls, type HttpRequestInfo } from './l7.js';
import { lookupPolicy } from './lookup.js';
import type { DirectionPolicy, EndpointPolicy, LookupResult, RuleRef } from './types.js';

/**
 * One request as the proxy parsed it. `path` is the normalised request-target, query included.
 * `tls`: a ClientHello, with its server_name (host_name) or null when it has none.
 */
export type L7Request =
  | ({ readonly kind: 'http' } & HttpRequestInfo)
  | { readonly kind: 'dns'; readonly qname: string }
  | { readonly kind: 'tls'; readonly sni: string | null };

/**
 * The flow a request travels on. A side's `policy` is present when that side is an endpoint of
 * this node: `null` means local but without computed policy yet (fail closed), `undefined` means
 * not local (its own node judges it).
 */
export interface L7Flow {
  readonly srcIdentity: number;
  readonly dstIdentity: number;
  /** IANA protocol number (6 = TCP, 17 = UDP). */
  readonly protocol: number;
  /** Destination port, host byte order. */
  readonly dport: number;
  readonly srcPolicy?: EndpointPolicy | null;
  readonly dstPolicy?: EndpointPolicy | null;
}

/** Why a direction decided as it did, for access logs, flows and trace. */
export type L7Reason =
  | 'l3l4-denied' // the L3/L4 entry denies the connection (deny rule or default deny)
  | 'not-redirected' // allowed at L3/L4 without L7 rules in this direction
  | 'allow-all' // redirected, but an L4-only rule (or an empty rule set) allows every request
  | 'rule-matched' // an HTTP rule, DNS pattern or server name matched
  | 'no-rule-matched' // redirected and no rule matched
  | 'parser-mismatch' // the port's L7 rules are for another protocol than this request
  | 'no-policy-state'; // the endpoint is local but its policy is not computed yet

export interface L7DirectionDecision {
  readonly direction: 'egress' | 'ingress';
  readonly allowed: boolean;
  readonly reason: L7Reason;
  /** The map lookup this direction's L7 verdict rests on (null without policy state). */
  readonly lookup: LookupResult | null;
  /** Index of the HTTP rule that matched, or the DNS pattern or server name; null if none (or allow-all). */
  readonly matched: number | string | null;
  /** Rules the entry was derived from (the policies that decided). */
  readonly derivedFrom: readonly RuleRef[];
  /** One line, for logs and trace. */
  readonly text: string;
}

export interface L7Decision {
  readonly allowed: boolean;
  /** The first denying direction's text, or the allowing directions' texts joined. */
  readonly reason: string;
  /** null when the source is not a local endpoint. */
  readonly egress: L7DirectionDecision | null;
  /** null when the destination is not a local endpoint. */
  readonly ingress: L7DirectionDecision | null;
  /** `namespace/name` of every policy that took part, deduplicated, in order. */
  readonly policies: readonly string[];
}

/** `HTTP GET /x`, `DNS query a.b.`, `TLS ClientHello with SNI a.b` / `TLS ClientHello without SNI`. */
export function requestText(req: L7Request): string {
  if (req.kind === 'http') return `HTTP ${req.method} ${req.path}`;
  if (req.kind === 'dns') return `DNS query ${req.qname}`;
  return req.sni === null ? 'TLS ClientHello without SNI' : `TLS ClientHello with SNI ${req.sni}`;
}

/** Judges one direction of the flow: `dir` is the subject endpoint's policy, `peer` the other side's identity. */
export function decideL7Direction(
  direction: 'egress' | 'ingress',
  dir: DirectionPolicy | null,
  peer: number,
  protocol: number,
  dport: number,
  req: L7Request,
): L7DirectionDecision {
  const base = { direction, matched: null };
  if (dir === null) {
    return { ...base, allowed: false, reason: 'no-policy-state', lookup: null, derivedFrom: [], text: `${direction}: the endpoint has no policy state yet` };
  }
  const lookup = lookupPolicy(dir, peer, protocol, dport);
  const derivedFrom = lookup.entry?.derivedFrom ?? [];
  const common = { ...base, lookup, derivedFrom };
  if (lookup.verdict === 'deny' || lookup.verdict === 'default-deny') {
    const why = lookup.verdict === 'deny' ? 'a deny rule' : 'default deny';
    return { ...common, allowed: false, reason: 'l3l4-denied', text: `${direction}: L3/L4 policy denies the connection (${why})` };
  }
  if (lookup.verdict !== 'redirect') {
    return { ...common, allowed: true, reason: 'not-redirected', text: `${direction}: allowed at L3/L4 without L7 rules` };
  }
  const l7 = lookup.entry?.l7;
  if (!l7) return { ...common, allowed: true, reason: 'allow-all', text: `${direction}: redirected without L7 rules, every request allowed` };
  if (l7.kind !== req.kind) {
    return {
      ...common,
      allowed: false,
      reason: 'parser-mismatch',
      text: `${direction}: the port's L7 rules are ${l7.kind.toUpperCase()}, a ${req.kind.toUpperCase()} request cannot be parsed by that proxy`,
    };
  }
  if (l7.kind === 'http' && req.kind === 'http') {
    const r = evaluateHttp(l7, req);
    if (!r.allowed) return { ...common, allowed: false, reason: 'no-rule-matched', text: `${direction}: ${requestText(req)} matches no HTTP rule` };
    return r.matchedRule === null
      ? { ...common, allowed: true, reason: 'allow-all', text: `${direction}: every HTTP request allowed on this port` }
      : { ...common, allowed: true, reason: 'rule-matched', matched: r.matchedRule, text: `${direction}: HTTP rule ${r.matchedRule} matched` };
  }
  if (l7.kind === 'dns' && req.kind === 'dns') {
    const r = evaluateDns(l7, req.qname);
    if (!r.allowed) return { ...common, allowed: false, reason: 'no-rule-matched', text: `${direction}: ${requestText(req)} matches no DNS rule` };
    return r.matchedPattern === null
      ? { ...common, allowed: true, reason: 'allow-all', text: `${direction}: every DNS name allowed on this port` }
      : { ...common, allowed: true, reason: 'rule-matched', matched: r.matchedPattern, text: `${direction}: DNS pattern ${r.matchedPattern} matched` };
  }
  if (l7.kind === 'tls' && req.kind === 'tls') {
    const r = evaluateTls(l7, req.sni);
    if (!r.allowed) return { ...common, allowed: false, reason: 'no-rule-matched', text: `${direction}: ${requestText(req)} matches no serverNames entry` };
    return r.matchedName === null
      ? { ...common, allowed: true, reason: 'allow-all', text: `${direction}: every TLS server name allowed on this port` }
      : { ...common, allowed: true, reason: 'rule-matched', matched: r.matchedName, text: `${direction}: server name ${r.matchedName} matched` };
  }
  /* c8 ignore next */
  return { ...common, allowed: false, reason: 'parser-mismatch', text: `${direction}: unknown L7 protocol` };
}

function refName(r: RuleRef): string {
  return r.namespace ? `${r.namespace}/${r.policy}` : r.policy;
}

/**
 * The verdict for one request: the source's egress (when the source is local) and the
 * destination's ingress (when the destination is local) must both allow it. Fails closed when
 * neither side is local, and when a local side has no policy state.
 */
export function decideL7(flow: L7Flow, req: L7Request): L7Decision {
  const egress =
    flow.srcPolicy === undefined ? null : decideL7Direction('egress', flow.srcPolicy?.egress ?? null, flow.dstIdentity, flow.protocol, flow.dport, req);
  const ingress =
    flow.dstPolicy === undefined ? null : decideL7Direction('ingress', flow.dstPolicy?.ingress ?? null, flow.srcIdentity, flow.protocol, flow.dport, req);
  const judged = [egress, ingress].filter((d): d is L7DirectionDecision => d !== null);
  const policies = [...new Set(judged.flatMap((d) => d.derivedFrom.map(refName)))];
  if (judged.length === 0) return { allowed: false, reason: 'no policy state for either side', egress, ingress, policies };
  const denied = judged.find((d) => !d.allowed);
  if (denied) return { allowed: false, reason: denied.text, egress, ingress, policies };
  return { allowed: true, reason: judged.map((d) => d.text).join('; '), egress, ingress, policies };
}
