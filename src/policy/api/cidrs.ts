/** Every CIDR prefix the policies mention, so the agent can allocate CIDR identities for them. */
import type { PolicyObject } from './types.js';

export function policyCidrs(policies: readonly PolicyObject[]): string[] {
  const out = new Set<string>();
  for (const p of policies) {
    for (const r of p.rules) {
      for (const sec of [r.ingress, r.ingressDeny, r.egress, r.egressDeny]) {
        for (const pr of sec) {
          for (const peer of pr.peers ?? []) {
            if (peer.kind === 'selector') for (const c of peer.cidrs ?? []) out.add(c);
          }
        }
      }
    }
  }
  return [...out].sort();
}
