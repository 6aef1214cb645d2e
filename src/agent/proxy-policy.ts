/**
 * The L7 decision for one request on a redirected connection: the source endpoint's egress
 * rules (when it is local and its entry for this peer redirects) and the destination
 * endpoint's ingress rules (likewise) must both allow it. Anything unexpected denies.
 */
import { evaluateHttp, lookupPolicy, type DirectionPolicy, type HttpRequestInfo, type RuleRef } from '../policy/index.js';
import type { Endpoint } from './endpoints.js';

export interface HttpDecision {
  readonly allowed: boolean;
  readonly reason: string;
  readonly policies: string[];
}

const TCP = 6;

function judge(
  dir: DirectionPolicy,
  side: 'egress' | 'ingress',
  peerIdentity: number,
  port: number,
  req: HttpRequestInfo,
): { allowed: boolean; reason: string; policies: string[] } {
  const r = lookupPolicy(dir, peerIdentity, TCP, port);
  const policies = (r.entry?.derivedFrom ?? []).map((d: RuleRef) => (d.namespace ? `${d.namespace}/${d.policy}` : d.policy));
  if (r.verdict === 'deny' || r.verdict === 'default-deny') {
    return { allowed: false, reason: `${side} L3/L4 policy denies the connection`, policies };
  }
  if (r.verdict !== 'redirect') return { allowed: true, reason: `${side} allows all of L7`, policies };
  const l7 = r.entry?.l7;
  if (!l7 || l7.kind !== 'http') return { allowed: false, reason: `${side} redirect without HTTP rules`, policies };
  const verdict = evaluateHttp(l7, req);
  return verdict.allowed
    ? { allowed: true, reason: `${side} HTTP rule ${verdict.matchedRule ?? '*'} matched`, policies }
    : { allowed: false, reason: `no ${side} HTTP rule matched`, policies };
}

export function decideHttp(
  src: Endpoint | undefined,
  dst: Endpoint | undefined,
  srcIdentity: number,
  dstIdentity: number,
  port: number,
  req: HttpRequestInfo,
): HttpDecision {
  const policies: string[] = [];
  const reasons: string[] = [];
  if (src?.policy) {
    const r = judge(src.policy.egress, 'egress', dstIdentity, port, req);
    policies.push(...r.policies);
    reasons.push(r.reason);
    if (!r.allowed) return { allowed: false, reason: r.reason, policies };
  }
  if (dst?.policy) {
    const r = judge(dst.policy.ingress, 'ingress', srcIdentity, port, req);
    policies.push(...r.policies);
    reasons.push(r.reason);
    if (!r.allowed) return { allowed: false, reason: r.reason, policies };
  }
  if (!src?.policy && !dst?.policy) return { allowed: false, reason: 'no policy state for either side', policies };
  return { allowed: true, reason: reasons.join('; '), policies: [...new Set(policies)] };
}
