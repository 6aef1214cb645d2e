/**
 * Stage 3, policy: the verdict for one request is the policy module's `decideL7` (the function
 * `policy trace` and the DNS proxy also call) on the connection's current policy state. Anything
 * unexpected there (a missing state, an exception) denies the request rather than letting it through.
 */

import { decideL7, type DirectionPolicy, type L7Flow } from '../policy/index.js';
import type { ParsedRequest } from './parse.js';
import type { ConnectionInfo, FlowContext, L7ProxyDeps, PolicyDecision } from './types.js';

type Judged = Pick<ParsedRequest, 'method' | 'path' | 'host' | 'headers'>;

/** Reads the policy state through `l7Flow`, then judges; see `decide`. */
export function evaluatePolicy(l7Flow: L7ProxyDeps['l7Flow'], ctx: FlowContext, conn: ConnectionInfo, req: Judged): PolicyDecision {
  let flow: L7Flow;
  try {
    flow = l7Flow(ctx, conn);
  } catch (err) {
    return policyError(err);
  }
  return decide(flow, req);
}

/** The verdict on a policy state the caller already holds (the proxy keeps it per connection). */
export function decide(flow: L7Flow, req: Judged): PolicyDecision {
  try {
    const d = decideL7(flow, { kind: 'http', method: req.method, path: req.path, host: req.host, headers: req.headers });
    // decideL7 makes a new list per call: nobody else holds it, no copy needed.
    return { allowed: d.allowed, reason: d.reason, policies: d.policies as string[] };
  } catch (err) {
    return policyError(err);
  }
}

/**
 * Whether a verdict on this policy state can depend on request headers: some HTTP rule of the
 * source's egress or the destination's ingress has `headers` or `headerMatches`. When none has,
 * the verdict is a function of method, host and path alone (l7.ts `httpRuleMatches`).
 */
export function readsHeaders(flow: L7Flow): boolean {
  return directionReadsHeaders(flow.srcPolicy?.egress) || directionReadsHeaders(flow.dstPolicy?.ingress);
}

function directionReadsHeaders(dir: DirectionPolicy | undefined): boolean {
  if (dir === undefined) return false;
  for (const e of dir.entries) {
    if (e.l7?.kind !== 'http') continue;
    for (const r of e.l7.rules) if ((r.headers?.length ?? 0) > 0 || (r.headerMatches?.length ?? 0) > 0) return true;
  }
  return false;
}

/** The denial for a policy state that could not be read or judged (fail closed). */
export function policyError(err: unknown): PolicyDecision {
  return { allowed: false, reason: `policy error: ${err instanceof Error ? err.message : String(err)}` };
}
