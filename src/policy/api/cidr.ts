/**
 * IP prefixes for CIDR rules: strict parsing (a prefix length is required), canonical text
 * (host bits cleared), containment, and the containing prefixes a CIDR identity is labelled with.
 */

export interface Prefix {
  readonly family: 4 | 6;
  /** Address with host bits cleared. */
  readonly addr: bigint;
  readonly len: number;
}

function parseIPv4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIPv6(s: string): bigint | null {
  if (s.length === 0 || s.length > 45) return null;
  let head = s;
  let tailV4: bigint | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    tailV4 = parseIPv4(s.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.split('::');
  if (dbl.length > 2) return null;
  const groupsOf = (x: string): string[] | null => (x === '' ? [] : x.split(':'));
  const left = groupsOf(dbl[0]!);
  const right = dbl.length === 2 ? groupsOf(dbl[1]!) : [];
  if (left === null || right === null) return null;
  const total = left.length + right.length;
  if (dbl.length === 1 && total !== 8) return null;
  if (dbl.length === 2 && total > 7) return null;
  const groups = [...left, ...new Array<string>(8 - total).fill('0'), ...right];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tailV4 !== null) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

export function parseIP(s: string): { family: 4 | 6; addr: bigint } | null {
  if (s.includes(':')) {
    const a = parseIPv6(s);
    return a === null ? null : { family: 6, addr: a };
  }
  const a = parseIPv4(s);
  return a === null ? null : { family: 4, addr: a };
}

function bits(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function mask(family: 4 | 6, len: number): bigint {
  const b = BigInt(bits(family));
  const all = (1n << b) - 1n;
  return len === 0 ? 0n : all ^ ((1n << (b - BigInt(len))) - 1n);
}

/** Parses `addr/len`. Returns null if malformed. Host bits are cleared (as Cilium masks them). */
export function parsePrefix(s: string): Prefix | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIP(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (ip === null || !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return null;
  const len = Number(lenText);
  if (len > bits(ip.family)) return null;
  return { family: ip.family, addr: ip.addr & mask(ip.family, len), len };
}

/** Parses an address or a prefix; a bare address is a full-length prefix. */
export function parseAddressOrPrefix(s: string): Prefix | null {
  if (s.includes('/')) return parsePrefix(s);
  const ip = parseIP(s);
  return ip === null ? null : { family: ip.family, addr: ip.addr, len: bits(ip.family) };
}

export function formatIP(family: 4 | 6, addr: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => String((addr >> sh) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr >> BigInt(i * 16)) & 0xffffn));
  // Compress the longest run of zero groups (length >= 2), as RFC 5952 says.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

export function formatPrefix(p: Prefix): string {
  return `${formatIP(p.family, p.addr)}/${p.len}`;
}

/** True if `outer` contains `inner` (same family, shorter or equal length, same leading bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.len > inner.len) return false;
  return (inner.addr & mask(outer.family, outer.len)) === outer.addr;
}

/** Every prefix that contains `p`, from /0 to p itself. */
export function containingPrefixes(p: Prefix): Prefix[] {
  const out: Prefix[] = [];
  for (let len = 0; len <= p.len; len++) {
    out.push({ family: p.family, addr: p.addr & mask(p.family, len), len });
  }
  return out;
}

/**
 * The key of a `cidr:` label for a prefix. IPv6 colons become dashes (and a leading or trailing
 * dash gets a `0`), as Cilium writes them, so that `source:key` stays unambiguous.
 */
export function cidrLabelKey(p: Prefix): string {
  if (p.family === 4) return formatPrefix(p);
  let ip = formatIP(6, p.addr).replaceAll(':', '-');
  if (ip.startsWith('-')) ip = `0${ip}`;
  if (ip.endsWith('-')) ip = `${ip}0`;
  return `${ip}/${p.len}`;
}
