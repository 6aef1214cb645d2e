/**
 * Stage 2, policy: the verdict for one query is the policy module's `decideL7` with
 * `{ kind: 'dns', qname }` — the same function the HTTP proxy and `policy trace --dns-name` call —
 * on the flow (source endpoint and identity, DNS server identity, port, protocol). Anything
 * unexpected (no policy state, an exception) denies.
 */

import { decideL7 } from '../policy/index.js';
import type { DnsProxyDeps, DnsTransport, HostPort } from './types.js';

export interface DnsDecision {
  allowed: boolean;
  reason: string;
  /** `namespace/name` of the policies that decided. */
  policies: string[];
  /** The DNS server's identity as the policy state knows it (for flows and the log). */
  dstIdentity: number;
}

export function evaluateQuery(
  l7Flow: DnsProxyDeps['l7Flow'],
  src: { ip: string; port: number; identity: number },
  dst: HostPort,
  protocol: DnsTransport,
  qname: string,
): DnsDecision {
  let dstIdentity = 0;
  try {
    const flow = l7Flow(src, dst, protocol);
    dstIdentity = flow.dstIdentity;
    const d = decideL7(flow, { kind: 'dns', qname });
    return { allowed: d.allowed, reason: d.reason, policies: [...d.policies], dstIdentity };
  } catch (err) {
    return { allowed: false, reason: `policy error: ${err instanceof Error ? err.message : String(err)}`, policies: [], dstIdentity };
  }
}
