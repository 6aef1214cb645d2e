/** IP text in one canonical form, so the same address is one key in every map. */
import { isIP } from 'node:net';

/**
 * `1.2.3.4` stays as is; IPv6 becomes its RFC 5952 text (lower case, longest zero run
 * compressed: `2001:DB8:0:0::1` → `2001:db8::1`). `null` for anything that is not an address
 * (zone ids included: an answer cannot carry one).
 */
export function canonicalIp(text: string): string | null {
  const v = isIP(text);
  if (v === 4) return text;
  if (v !== 6 || text.includes('%')) return null;
  // WHATWG URL serialises IPv6 hosts per RFC 5952.
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** Orders canonical IPs numerically, IPv4 before IPv6 (as Cilium's `ip.KeepUniqueIPs` sorts bytes). */
export function compareIps(a: string, b: string): number {
  const ka = ipSortKey(a);
  const kb = ipSortKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function ipSortKey(ip: string): string {
  if (!ip.includes(':')) return `4${ip.split('.').map((o) => o.padStart(3, '0')).join('')}`;
  const [head = '', tail] = ip.split('::', 2);
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `6${groups.map((g) => g.padStart(4, '0')).join('')}`;
}
