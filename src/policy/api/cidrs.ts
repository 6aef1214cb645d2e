/** Every CIDR prefix the policies mention, so the agent can allocate CIDR identities for them. */
import { expandCidrGroupPeer } from './cidr-group.js';
import type { PolicyObject } from './types.js';

/** Includes the external CIDRs of the CiliumCIDRGroups that rules reference, with their excepts. */
export function policyCidrs(policies: readonly PolicyObject[]): string[] {
  const out = new Set<string>();
  for (const p of policies) {
    for (const r of p.rules) {
      for (const sec of [r.ingress, r.ingressDeny, r.egress, r.egressDeny]) {
        for (const pr of sec) {
          for (const peer of pr.peers ?? []) {
            const peers = peer.kind === 'cidrGroup' ? expandCidrGroupPeer(peer, policies) : [peer];
            for (const q of peers) if (q.kind === 'selector') for (const c of q.cidrs ?? []) out.add(c);
          }
        }
      }
    }
  }
  return [...out].sort();
}

export interface FqdnSelectorInfo {
  readonly matchName: string | undefined;
  readonly matchPattern: string | undefined;
  /** Key of the `fqdn:` label to give the IPs this selector admits. */
  readonly labelKey: string;
}

/** Every toFQDNs selector of the policies (deduplicated by label key), for the FQDN subsystem. */
export function policyFqdnSelectors(policies: readonly PolicyObject[]): FqdnSelectorInfo[] {
  const out = new Map<string, FqdnSelectorInfo>();
  for (const p of policies) {
    for (const r of p.rules) {
      for (const pr of r.egress) {
        for (const peer of pr.peers ?? []) {
          if (peer.kind === 'fqdn' && !out.has(peer.labelKey)) {
            out.set(peer.labelKey, { matchName: peer.matchName, matchPattern: peer.matchPattern, labelKey: peer.labelKey });
          }
        }
      }
    }
  }
  return [...out.values()].sort((a, b) => (a.labelKey < b.labelKey ? -1 : a.labelKey > b.labelKey ? 1 : 0));
}
