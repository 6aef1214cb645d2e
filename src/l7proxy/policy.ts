/**
 * Stage 3, policy: the verdict for one request is the policy module's `decideL7` (the function
 * `policy trace` and the DNS proxy also call) on the connection's current policy state. Anything
 * unexpected there (a missing state, an exception) denies the request rather than letting it through.
 */

import { decideL7, type L7Flow } from '../policy/index.js';
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

/** The denial for a policy state that could not be read or judged (fail closed). */
export function policyError(err: unknown): PolicyDecision {
  return { allowed: false, reason: `policy error: ${err instanceof Error ? err.message : String(err)}` };
}
