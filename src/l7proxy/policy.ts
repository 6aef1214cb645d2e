/**
 * Stage 3, policy: asks the injected authoriser about one request. The authoriser is the policy
 * engine's HTTP rule evaluation for (source identity, destination identity, port, direction); an
 * exception there denies the request (fail closed) rather than letting it through.
 */

import type { ParsedRequest } from './parse.js';
import type { ConnectionInfo, FlowContext, L7ProxyDeps, PolicyDecision } from './types.js';

export function evaluatePolicy(
  authorize: L7ProxyDeps['authorizeHttp'],
  ctx: FlowContext,
  conn: ConnectionInfo,
  req: Pick<ParsedRequest, 'method' | 'path' | 'host' | 'headers'>,
): PolicyDecision {
  try {
    const decision = authorize(ctx, conn, { method: req.method, path: req.path, host: req.host, headers: req.headers });
    if (decision === null || typeof decision !== 'object' || typeof decision.allowed !== 'boolean') {
      return { allowed: false, reason: 'policy returned no decision' };
    }
    return decision;
  } catch (err) {
    return { allowed: false, reason: `policy error: ${err instanceof Error ? err.message : String(err)}` };
  }
}
