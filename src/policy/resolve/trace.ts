/**
 * Offline trace: evaluates the source's egress policy and the destination's ingress policy the
 * way the datapath and the proxies would, and explains every step.
 *
 *   src/dst labels (or --src-cidr/--dst-cidr) → identities
 *     → resolveEndpointPolicy(src).egress  → lookupPolicy(dst identity, proto, dport)
 *     → resolveEndpointPolicy(dst).ingress → lookupPolicy(src identity, proto, dport)
 *     → redirect? evaluate HTTP / DNS rules / TLS serverNames of each redirecting direction
 *     → Final verdict
 */
import { formatLabel } from '../api/labels.js';
import type { Label } from '../api/labels.js';
import { parseIP } from '../api/cidr.js';
import { policyFqdnSelectors } from '../api/cidrs.js';
import { isAllStars, nameRegex, patternRegex, toFQDN } from '../api/fqdn.js';
import type { PolicyObject } from '../api/types.js';
import { PROTO } from '../api/types.js';
import { cidrIdentityLabels, RESERVED_IDENTITY, reservedIdentities } from './identity.js';
import type { Identity } from './identity.js';
import { TraceInputError, traceSide } from './trace-side.js';
import type { EntityPolicy, TraceEndpointInput } from './trace-side.js';
import { decideL7Direction, requestText, type L7DirectionDecision, type L7Request } from './decide.js';
import { normalizeRequestTarget, type NormalizedTarget } from './normalize-path.js';
import { lookupPolicy } from './lookup.js';
import { resolveDirection, resolveEndpointPolicy, selectingRules } from './resolve.js';
import type { SelectedRule } from './resolve.js';
import type { DirectionPolicy, L7Rules, LookupResult, RuleRef } from './types.js';
import { DROP_REASON } from './types.js';
import type { ServiceInput } from './resolve.js';

export interface TraceInput {
  policies: readonly PolicyObject[];
  /**
   * The source: a pod (labels, namespace, namespace labels, named ports) or an entity (a
   * `reserved:` label); see TraceEndpointInput. Optional when `srcCidr` is given.
   */
  src?: TraceEndpointInput;
  /** The destination, as `src`. Its `namedPorts` resolve named ports of both directions' rules. */
  dst?: TraceEndpointInput;
  dport?: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP' | 'ICMP';
  srcCidr?: string;
  dstCidr?: string;
  /**
   * With `dstCidr` (one address): the destination was learned from an allowed DNS lookup of this
   * name (or names), so it carries the fqdn labels of every toFQDNs selector that matches one.
   */
  dstFqdn?: string | readonly string[];
  http?: { method: string; path: string; host?: string; headers?: Record<string, string> };
  dnsName?: string;
  /** Cilium `http-normalize-path` (default true): the HTTP path is judged normalised, as the proxy does. */
  normalizePath?: boolean;
  /** The ClientHello's SNI for serverNames rules; `null` = a ClientHello without SNI. */
  tlsSni?: string | null;
  /** Services for toServices rules (optional). */
  services?: readonly ServiceInput[];
  /**
   * Agent-backed traces: the identity (id and labels) the running agent's ipcache gives the
   * `srcCidr`/`dstCidr` address — a CIDR or FQDN identity, or `reserved:world` for an address
   * no policy prefix or name holds — so the trace judges and names what flows and the kernel show.
   * Offline traces leave it out: the address gets the `cidr:` labels of every prefix holding it
   * and a stand-in number. Not used with `dstFqdn` (a what-if: the address as if learned).
   */
  cidrIdentity?: { src?: TraceIdentity; dst?: TraceIdentity };
  /**
   * Agent-backed traces of a pod's address: the identity number the agent gave that pod (its
   * labels are `src`/`dst`), printed and judged instead of a stand-in, so the trace names what
   * `endpoint list` and the flows show. Offline traces leave it out.
   */
  endpointIdentity?: { src?: number; dst?: number };
}

export interface TraceDirection {
  /** false when that side is outside the cluster (no endpoint, no policy). */
  evaluated: boolean;
  enforced: boolean;
  /** The map lookup: allow | deny | redirect | default-deny | default-allow | not-evaluated. */
  verdict: LookupResult['verdict'] | 'not-evaluated';
  /** The result after L7 (when redirected and a request was given). */
  l7: { kind: 'http' | 'dns' | 'tls'; evaluated: boolean; allowed: boolean | null; matched: number | string | null } | null;
  allowed: boolean;
  dropReason: null | 'POLICY_DENIED' | 'POLICY_DENY' | 'AUTH_REQUIRED';
  peerIdentity: number;
  matched: { policy: string; namespace: string | undefined; rule: number; deny: boolean }[];
}

export interface TraceResult {
  verdict: 'allowed' | 'denied';
  redirect: 'http' | 'dns' | 'tls' | null;
  dropReason: null | 'POLICY_DENIED' | 'POLICY_DENY' | 'AUTH_REQUIRED';
  egress: TraceDirection;
  ingress: TraceDirection;
  matched: { policy: string; namespace: string | undefined; direction: 'ingress' | 'egress'; rule: number }[];
  lines: string[];
}

const PROTO_NUM = { TCP: PROTO.TCP, UDP: PROTO.UDP, SCTP: PROTO.SCTP, ICMP: PROTO.ICMP } as const;
/** First id handed to a traced pod identity (cluster-local identities start at 256). */
const FIRST_TRACE_ID = 256;
/** A stand-in id no allocator hands out (the top of the 32-bit space), for the rare collision below. */
const STANDIN_SPARE = 0xffff_fffe;
/** Identity used for a traced CIDR (local-scope identities start at 1<<24). */
const TRACE_CIDR_ID = 1 << 24;

interface Side {
  readonly identity: Identity;
  /** Whose policy applies to this side: a pod's (endpoint), host policies, or none (outside). */
  readonly policy: EntityPolicy;
  /** 'cidr' and reserved identities keep their id whatever the other side is. */
  readonly kind: 'endpoint' | 'entity' | 'cidr';
  readonly describe: string;
}

/** An identity as the agent holds it (`TraceInput.cidrIdentity`). */
export interface TraceIdentity {
  readonly id: number;
  readonly labels: readonly Label[];
}

/** A given agent identity when it is well-formed, else undefined. */
function agentCidrIdentity(x: TraceIdentity | undefined): TraceIdentity | undefined {
  return x !== undefined && Number.isInteger(x.id) && x.id > 0 && x.id < 2 ** 32 && x.labels.length > 0 ? x : undefined;
}

function isGiven(ep: TraceEndpointInput | undefined): boolean {
  return ep !== undefined && (Object.keys(ep.labels ?? {}).length > 0 || ep.entity !== undefined);
}

/** Throws TraceInputError on a malformed CIDR, on labels and a CIDR together, or on neither. */
function side(which: 'src' | 'dst', input: TraceInput, nextId: number): Side {
  const cidr = which === 'src' ? input.srcCidr : input.dstCidr;
  const ep = which === 'src' ? input.src : input.dst;
  if (cidr !== undefined) {
    if (isGiven(ep)) throw new TraceInputError(which, 'cidr', `${which}: give labels or a CIDR, not both`);
    const ip = parseIP(cidr.includes('/') ? cidr.slice(0, cidr.indexOf('/')) : cidr);
    if (!ip) throw new TraceInputError(which, 'cidr', `invalid IP address ${JSON.stringify(cidr)}`);
    const text = cidr.includes('/') ? cidr : `${cidr}/${ip.family === 4 ? 32 : 128}`;
    let labels: Label[];
    try {
      labels = cidrIdentityLabels(text);
    } catch (err) {
      throw new TraceInputError(which, 'cidr', (err as Error).message);
    }
    const given = which === 'dst' ? input.dstFqdn : undefined;
    const names = given === undefined ? [] : typeof given === 'string' ? [given] : [...given];
    const held = names.length === 0 && !cidr.includes('/') ? agentCidrIdentity(input.cidrIdentity?.[which]) : undefined;
    if (held) return { identity: { id: held.id, labels: [...held.labels] }, policy: 'none', kind: 'cidr', describe: `${cidr} (outside the cluster)` };
    if (names.length > 0) {
      if (cidr.includes('/') && !/\/(32|128)$/.test(cidr)) throw new TraceInputError(which, 'cidr', `--dst-fqdn needs one address in --dst-cidr, not the prefix ${cidr}`);
      // As if `fqdn` had resolved to this address through an allowed lookup: the FQDN subsystem
      // would give it the fqdn label of every toFQDNs selector matching the name.
      const keys = new Set(names.flatMap((n) => fqdnSelectorsMatching(input.policies, n)));
      labels = [...labels, ...[...keys].sort().map((key) => ({ source: 'fqdn', key, value: '' }))];
    }
    return {
      identity: { id: TRACE_CIDR_ID + (which === 'src' ? 1 : 2), labels },
      policy: 'none',
      kind: 'cidr',
      describe: names.length > 0 ? `${cidr} (outside the cluster, learned as ${names.map((n) => toFQDN(n.trim())).join(', ')})` : `${cidr} (outside the cluster)`,
    };
  }
  if (!isGiven(ep)) throw new TraceInputError(which, 'labels', `${which}: give its labels, an entity (reserved:host, …) or a CIDR`);
  const s = traceSide(which, ep!);
  if (s.kind === 'entity') {
    return { identity: { id: s.id, labels: s.labels }, policy: s.policy, kind: 'entity', describe: `${s.labels.map(formatLabel).join(',')} (identity ${s.id})` };
  }
  const shown = s.given.map((l) => (l.source === 'k8s' ? '' : `${l.source}:`) + (l.value === '' ? l.key : `${l.key}=${l.value}`));
  const held = input.endpointIdentity?.[which];
  const id = held !== undefined && Number.isInteger(held) && held > 0 && held < 2 ** 32 ? held : nextId;
  return {
    identity: { id, labels: s.labels, ...(Object.keys(s.namedPorts).length ? { namedPorts: s.namedPorts } : {}) },
    policy: 'endpoint',
    kind: 'endpoint',
    describe: `${s.namespace}/{${shown.join(',')}}`,
  };
}

/**
 * Named ports of the rules of `selected` in direction `dir` that the destination's named ports do
 * not define: such a port matches nothing, which may not be what the real pod would see.
 */
function unresolvedNamedPorts(selected: readonly SelectedRule[], dir: 'ingress' | 'egress', dst: Side): string[] {
  const known = new Set(Object.keys(dst.identity.namedPorts ?? {}).map((n) => n.toLowerCase()));
  const out: string[] = [];
  for (const { policy, rule } of selected) {
    for (const deny of [false, true]) {
      const section = dir === 'ingress' ? (deny ? rule.ingressDeny : rule.ingress) : deny ? rule.egressDeny : rule.egress;
      for (const pr of section) {
        for (const ps of pr.ports ?? []) {
          if (typeof ps.port !== 'string' || known.has(ps.port.toLowerCase())) continue;
          const ref = refText({ policy: policy.name, namespace: policy.namespace, kind: policy.kind, direction: dir, index: pr.index, ...(deny ? { deny: true } : {}), specIndex: rule.specIndex });
          out.push(`${ps.port} (${ref})`);
        }
      }
    }
  }
  return [...new Set(out)];
}

/** Host policies: rules with a nodeSelector. The trace knows no node labels, so each is taken to select the node. */
function hostRules(policies: readonly PolicyObject[]): SelectedRule[] {
  return policies.flatMap((policy) => policy.rules.filter((rule) => rule.hostPolicy).map((rule) => ({ policy, rule })));
}

function sameLabels(a: readonly Label[], b: readonly Label[]): boolean {
  return a.length === b.length && a.every((l, i) => formatLabel(l) === formatLabel(b[i]!));
}

function refText(r: RuleRef): string {
  const ns = r.namespace ? `${r.namespace}/` : '';
  if (r.action !== undefined) return `${r.kind} ${r.policy} ${r.direction}[${r.index}]${r.ruleName !== undefined ? ` "${r.ruleName}"` : ''} (${r.action})`;
  return `${r.kind} ${ns}${r.policy} ${r.direction}${r.deny ? 'Deny' : ''}[${r.index}]`;
}

/**
 * The request the user gave, in the port's protocol when several were given; another protocol's
 * request is judged too (the proxy denies it: parser mismatch). Without any, the step is not
 * evaluated.
 */
function traceRequest(input: TraceInput, kind: 'http' | 'dns' | 'tls', norm: NormalizedTarget | null): L7Request | null {
  const dns: L7Request | null = input.dnsName !== undefined ? { kind: 'dns', qname: input.dnsName } : null;
  // The path the proxy judges: normalised (the follow-up request's after a 307).
  const path = norm?.kind === 'forward' ? norm.target : norm?.kind === 'redirect' ? norm.location : (input.http?.path ?? '');
  const http: L7Request | null = input.http
    ? { kind: 'http', method: input.http.method, path, host: input.http.host ?? '', headers: input.http.headers ?? {} }
    : null;
  const tls: L7Request | null = input.tlsSni !== undefined ? { kind: 'tls', sni: input.tlsSni } : null;
  if (kind === 'tls') return tls ?? http ?? dns;
  return kind === 'dns' ? (dns ?? http ?? tls) : (http ?? dns ?? tls);
}

function l7Line(req: L7Request, d: L7DirectionDecision, rules: L7Rules | undefined): string {
  const what = requestText(req);
  switch (d.reason) {
    case 'rule-matched':
      if (req.kind === 'tls') return `${what} allowed by serverNames entry ${String(d.matched)}`;
      return req.kind === 'http' && rules?.kind === 'http' && typeof d.matched === 'number'
        ? `${what} allowed by HTTP rule ${d.matched} ${JSON.stringify(rules.rules[d.matched])}`
        : `${what} allowed by pattern ${String(d.matched)}`;
    case 'allow-all':
      return `${what} allowed (an L3/L4 rule allows all ${req.kind === 'http' ? 'HTTP' : req.kind === 'tls' ? 'server names' : 'names'} on this port)`;
    case 'no-rule-matched':
      if (req.kind === 'tls') return `${what} denied: no serverNames entry matches (connection reset)`;
      return req.kind === 'http' ? `${what} denied: no HTTP rule matches (403 Access denied)` : `${what} denied: no DNS rule matches (REFUSED)`;
    case 'parser-mismatch':
      return `${what} denied: this port's L7 rules are ${rules?.kind.toUpperCase() ?? 'of another protocol'}, so its proxy cannot parse the request`;
    default:
      return `${what} ${d.allowed ? 'allowed' : 'denied'}: ${d.text}`;
  }
}

/** The label keys of the toFQDNs selectors of `policies` that match `name` (the one matcher of api/fqdn.ts). */
function fqdnSelectorsMatching(policies: readonly PolicyObject[], name: string): string[] {
  const fqdn = toFQDN(name.trim());
  return policyFqdnSelectors(policies)
    .filter((s) => (s.matchName !== undefined ? nameRegex(s.matchName).test(fqdn) : s.matchPattern !== undefined && (isAllStars(s.matchPattern) || patternRegex(s.matchPattern).test(fqdn))))
    .map((s) => s.labelKey);
}

export function tracePolicy(input: TraceInput): TraceResult {
  // As the HTTP proxy's parse stage does, unless the trace says the agent runs without it.
  const norm = input.http && input.normalizePath !== false ? normalizeRequestTarget(input.http.path) : null;
  const lines: string[] = [];
  const protoName = input.protocol ?? 'TCP';
  const proto = PROTO_NUM[protoName];
  const dport = input.dport ?? (protoName === 'ICMP' ? 8 : 0);
  let src = side('src', input, FIRST_TRACE_ID);
  let dst = side('dst', input, FIRST_TRACE_ID + 1);
  // An agent identity (cidrIdentity) may carry any number: a stand-in that happens to equal it
  // while the labels differ moves out of the way, so the two sides stay two identities.
  if (src.identity.id === dst.identity.id && !sameLabels(src.identity.labels, dst.identity.labels)) {
    const given = (which: 'src' | 'dst'): boolean => agentCidrIdentity(input.cidrIdentity?.[which]) !== undefined || input.endpointIdentity?.[which] !== undefined;
    const free = (taken: number): number => (taken === STANDIN_SPARE ? STANDIN_SPARE - 1 : STANDIN_SPARE);
    if (given('src') && !given('dst')) dst = { ...dst, identity: { ...dst.identity, id: free(src.identity.id) } };
    else src = { ...src, identity: { ...src.identity, id: free(dst.identity.id) } };
  }
  if (src.kind === 'endpoint' && dst.kind === 'endpoint' && sameLabels(src.identity.labels, dst.identity.labels)) {
    // One identity: the pods share it, and so do their named ports (Cilium keys them by identity).
    const namedPorts = { ...(src.identity.namedPorts ?? {}), ...(dst.identity.namedPorts ?? {}) };
    dst = { ...dst, identity: { ...dst.identity, id: src.identity.id, ...(Object.keys(namedPorts).length ? { namedPorts } : {}) } };
  }
  const identities: Identity[] = src.identity.id === dst.identity.id ? [dst.identity] : [src.identity, dst.identity];
  lines.push(`Tracing ${protoName} ${protoName === 'ICMP' ? `type ${dport}` : `port ${input.dport ?? 'any'}`} from ${src.describe} to ${dst.describe}`);
  lines.push(`  source identity ${src.identity.id}: ${src.identity.labels.map(formatLabel).join(' ')}`);
  lines.push(`  destination identity ${dst.identity.id}: ${dst.identity.labels.map(formatLabel).join(' ')}`);

  const evalDir = (which: 'egress' | 'ingress', subject: Side, peer: Side): TraceDirection => {
    const title = which === 'egress' ? 'Egress (source policy)' : 'Ingress (destination policy)';
    const whose = which === 'egress' ? 'the source' : 'the destination';
    if (subject.policy === 'none') {
      lines.push(
        subject.kind === 'cidr'
          ? `${title}: not evaluated: ${whose} is outside the cluster`
          : `${title}: not evaluated: ${whose} is ${subject.identity.labels.map(formatLabel).join(',')}, which has no endpoint policy of its own`,
      );
      return { evaluated: false, enforced: false, verdict: 'not-evaluated', l7: null, allowed: true, dropReason: null, peerIdentity: peer.identity.id, matched: [] };
    }
    const endpoint = { labels: subject.identity.labels, ...(subject.identity.namedPorts ? { namedPorts: subject.identity.namedPorts } : {}) };
    const selected = subject.policy === 'host' ? hostRules(input.policies) : selectingRules(input.policies, subject.identity.labels);
    const names = [...new Set(selected.map((s) => `${s.policy.kind} ${s.policy.namespace ? `${s.policy.namespace}/` : ''}${s.policy.name}`))];
    let dp: DirectionPolicy;
    if (subject.policy === 'host') {
      // Cilium's host firewall: only host policies (nodeSelector) apply to reserved:host.
      const all = new Map<number, Identity>();
      for (const r of reservedIdentities()) all.set(r.id, r);
      for (const i of identities) all.set(i.id, i);
      dp = resolveDirection(selected, which, endpoint, [...all.values()], input.services ?? [], input.policies);
      lines.push(
        `${title}: ${names.length ? `host policies ${names.join(', ')} (each taken to select this node: the trace knows no node labels; Membrane does not enforce host policies yet)` : 'no host policy (nodeSelector) applies to the host'}; ${dp.enforced ? 'default deny' : 'default allow'}`,
      );
    } else {
      const pol = resolveEndpointPolicy({ policies: input.policies, endpoint, identities, ...(input.services ? { services: input.services } : {}) });
      dp = which === 'egress' ? pol.egress : pol.ingress;
      lines.push(`${title}: ${names.length ? `selected by ${names.join(', ')}` : 'no policy selects this endpoint'}; ${dp.enforced ? 'default deny' : 'default allow'}`);
    }
    const dstSide = which === 'ingress' ? subject : peer;
    if (dstSide.kind !== 'cidr') {
      const missing = unresolvedNamedPorts(selected, which, dstSide);
      if (missing.length) lines.push(`  note: named port ${missing.join(', ')} is not among the destination's named ports given to the trace, so it matches nothing here`);
    }
    const res = lookupPolicy(dp, peer.identity.id, proto, dport);
    const matched = (res.entry?.derivedFrom ?? []).map((r) => ({ policy: r.policy, namespace: r.namespace, rule: r.index, deny: r.deny === true }));
    let allowed = res.verdict === 'allow' || res.verdict === 'redirect' || res.verdict === 'default-allow';
    let dropReason: TraceDirection['dropReason'] = null;
    if (res.verdict === 'deny' && res.dropReason === DROP_REASON.AUTH_REQUIRED) {
      dropReason = 'AUTH_REQUIRED';
      lines.push(`  DENIED: ${(res.entry?.derivedFrom ?? []).map(refText).join(', ')} requires mutual authentication, which Membrane does not provide (AUTH_REQUIRED, 189)`);
    } else if (res.verdict === 'deny') {
      dropReason = 'POLICY_DENY';
      lines.push(`  DENIED by deny rule ${(res.entry?.derivedFrom ?? []).map(refText).join(', ')} (POLICY_DENY, 181)`);
    } else if (res.verdict === 'default-deny') {
      dropReason = 'POLICY_DENIED';
      lines.push('  DENIED: no rule allows it (default deny, POLICY_DENIED, 133)');
    } else if (res.verdict === 'default-allow') {
      lines.push('  ALLOWED: not in default deny for this direction');
    } else {
      lines.push(`  ${res.verdict === 'redirect' ? 'ALLOWED at L3/L4, redirected to the proxy' : 'ALLOWED'} by ${(res.entry?.derivedFrom ?? []).map(refText).join(', ')}`);
    }
    let l7: TraceDirection['l7'] = null;
    if (res.verdict === 'redirect') {
      const kind = res.entry?.l7?.kind ?? 'http';
      const req = traceRequest(input, kind, norm);
      if (req?.kind === 'http' && norm?.kind === 'reject') {
        // The proxy's parse stage answers before any rule is looked at.
        l7 = { kind, evaluated: true, allowed: false, matched: null };
        allowed = false;
        lines.push(`  HTTP ${req.method} ${input.http!.path} denied: the proxy answers 400 Bad Request (${norm.reason})`);
      } else if (req) {
        if (req.kind === 'http' && norm?.kind === 'forward' && norm.changed) lines.push(`  HTTP path ${input.http!.path} is judged and forwarded as ${norm.target} (normalised as the proxy does: Cilium http-normalize-path)`);
        if (req.kind === 'http' && norm?.kind === 'redirect') {
          lines.push(`  HTTP path ${input.http!.path} has an escaped slash: the proxy answers 307 to ${norm.location}; the client's next request, for ${norm.location}, is judged:`);
        }
        // The proxies' own decision for this direction: trace never says what they would not do.
        const d = decideL7Direction(which, dp, peer.identity.id, proto, dport, req);
        l7 = { kind, evaluated: true, allowed: d.allowed, matched: d.matched };
        allowed = d.allowed;
        lines.push(`  ${l7Line(req, d, res.entry?.l7)}`);
      } else {
        const rules = res.entry?.l7;
        l7 = { kind, evaluated: false, allowed: null, matched: null };
        lines.push(
          rules?.kind === 'dns'
            ? '  DNS rules apply; no name given, so they were not evaluated'
            : rules?.kind === 'tls'
              ? `  TLS serverNames apply (${rules.allowAll ? 'every server name allowed' : rules.serverNames.join(', ')}); no ClientHello given (--tls-sni), so they were not evaluated`
              : `  HTTP rules apply (${!rules || rules.allowAll ? 'all requests allowed' : `${rules.rules.length} rule(s)`}); no request given, so they were not evaluated`,
        );
      }
    }
    return { evaluated: true, enforced: dp.enforced, verdict: res.verdict, l7, allowed, dropReason, peerIdentity: peer.identity.id, matched };
  };

  const egress = evalDir('egress', src, dst);
  const ingress = evalDir('ingress', dst, src);
  const allowed = egress.allowed && ingress.allowed;
  const firstDeny = !egress.allowed ? egress : !ingress.allowed ? ingress : null;
  const redirect = egress.l7?.kind ?? ingress.l7?.kind ?? null;
  const matched = [
    ...egress.matched.map((m) => ({ policy: m.policy, namespace: m.namespace, direction: 'egress' as const, rule: m.rule })),
    ...ingress.matched.map((m) => ({ policy: m.policy, namespace: m.namespace, direction: 'ingress' as const, rule: m.rule })),
  ];
  lines.push(`Final verdict: ${allowed ? 'ALLOWED' : 'DENIED'}`);
  return { verdict: allowed ? 'allowed' : 'denied', redirect, dropReason: firstDeny?.dropReason ?? null, egress, ingress, matched, lines };
}

export { RESERVED_IDENTITY };
