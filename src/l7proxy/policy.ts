/**
 * Stage 3, policy: the verdict for one request is the policy module's `decideL7` (the function
 * `policy trace` and the DNS proxy also call) on the connection's current policy state. Anything
 * unexpected there (a missing state, an exception) denies the request rather than letting it through.
 */

import { decideL7 } from '../policy/index.js';
import type { ParsedRequest } from './parse.js';
import type { ConnectionInfo, FlowContext, L7ProxyDeps, PolicyDecision } from './types.js';

export function evaluatePolicy(
  l7Flow: L7ProxyDeps['l7Flow'],
  ctx: FlowContext,
  conn: ConnectionInfo,
  req: Pick<ParsedRequest, 'method' | 'path' | 'host' | 'headers'>,
): PolicyDecision {
  try {
    const d = decideL7(l7Flow(ctx, conn), { kind: 'http', method: req.method, path: req.path, host: req.host, headers: req.headers });
    return { allowed: d.allowed, reason: d.reason, policies: [...d.policies] };
  } catch (err) {
    return { allowed: false, reason: `policy error: ${err instanceof Error ? err.message : String(err)}` };
  }
}
