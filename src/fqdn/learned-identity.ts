/**
 * What decides the identity of an IPv4 address learned through DNS, shared by the agent, which
 * allocates it (src/agent/regenerate.ts), and the proxy workers, which may give a new address an
 * identity the agent already holds (src/proxyworker/prelearn.ts): the longest IPv4 policy prefix
 * holding the address and the toFQDNs selector keys of its names. Both sides compute the same key
 * from the same inputs, so they cannot disagree on which identity an address joins.
 *
 * The labels themselves (cidr: labels of the prefix, or reserved:world, then one fqdn: label per
 * key) are the agent's `fqdnIdentityLabels`, as Cilium 1.16+ (CFP-28427) labels FQDN-selected IPs.
 */

/** The key of a learned address's label set: its containing policy prefix (or none) and its selector keys, sorted. */
export function fqdnLabelsKey(prefix: string | null, keys: readonly string[]): string {
  return `${prefix ?? ''}|${keys.join('|')}`;
}

/**
 * The same label set as the proxy workers key it (src/proxyworker/prelearn.ts): by the identity
 * the ipcache gives the address now (its longest prefix's, or `world` when none holds it) instead
 * of the prefix's text, so a worker reads the prefix part from the datapath itself, never from a
 * list the agent may have changed since it was sent.
 */
export function fqdnLearnKey(prefixIdentity: number, keys: readonly string[]): string {
  return `${prefixIdentity}|${keys.join('|')}`;
}
