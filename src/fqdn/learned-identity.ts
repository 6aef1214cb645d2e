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

/** A dotted-quad IPv4 address as an unsigned 32-bit number; NaN for anything else. */
export function ipv4Number(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) return NaN;
  let n = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3) return NaN;
    const o = Number(p);
    if (!Number.isInteger(o) || o < 0 || o > 255) return NaN;
    n = n * 256 + o;
  }
  return n;
}

/**
 * IPv4 prefixes (`a.b.c.d/n`; IPv6 and malformed ones are left out: the ipcache is IPv4-only) by
 * length, longest first: which one holds an address, in one map lookup per length present.
 */
export class Ipv4PrefixIndex {
  readonly #levels: { mask: number; byBase: Map<number, string> }[];
  /** The prefixes indexed, sorted and joined: equal for the same set. */
  readonly key: string;
  /** The prefixes indexed, as given. */
  readonly prefixes: readonly string[];

  constructor(prefixes: Iterable<string>) {
    const byBits = new Map<number, { mask: number; byBase: Map<number, string> }>();
    const kept: string[] = [];
    for (const prefix of prefixes) {
      const slash = prefix.indexOf('/');
      const base = ipv4Number(slash < 0 ? prefix : prefix.slice(0, slash));
      const bits = slash < 0 ? 32 : Number(prefix.slice(slash + 1));
      if (Number.isNaN(base) || !Number.isInteger(bits) || bits < 0 || bits > 32) continue;
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      let level = byBits.get(bits);
      if (!level) byBits.set(bits, (level = { mask, byBase: new Map() }));
      level.byBase.set((base & mask) >>> 0, prefix);
      kept.push(prefix);
    }
    this.#levels = [...byBits].sort((a, b) => b[0] - a[0]).map(([, l]) => l);
    this.prefixes = kept;
    this.key = [...kept].sort().join(',');
  }

  /** The longest prefix holding `ip` (dotted quad), or null. */
  longest(ip: string): string | null {
    const n = ipv4Number(ip);
    if (Number.isNaN(n)) return null;
    for (const l of this.#levels) {
      const prefix = l.byBase.get((n & l.mask) >>> 0);
      if (prefix !== undefined) return prefix;
    }
    return null;
  }
}
