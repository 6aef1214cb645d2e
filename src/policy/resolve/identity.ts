/**
 * Security identities: numeric ids with label sets. Reserved identities 0–10 have fixed ids and
 * `reserved:` labels; CIDR identities carry a `cidr:` label for every containing prefix plus the
 * world labels of their family, so a CIDR rule on any containing prefix selects them.
 */
import type { Label } from '../api/labels.js';
import { cidrLabelKey, containingPrefixes, parsePrefix } from '../api/cidr.js';

export const RESERVED_IDENTITY = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
  kubeApiserver: 7,
  ingress: 8,
  worldIPv4: 9,
  worldIPv6: 10,
} as const;

export interface NamedPort {
  readonly port: number;
  /** IANA protocol number (6 TCP, 17 UDP, 132 SCTP). */
  readonly protocol: number;
}

export interface Identity {
  readonly id: number;
  readonly labels: readonly Label[];
  /** Named container ports of the endpoints with this identity (used to resolve egress named ports). */
  readonly namedPorts?: Readonly<Record<string, NamedPort>>;
}

function reserved(...names: string[]): Label[] {
  return names.map((n) => ({ source: 'reserved', key: n, value: '' }));
}

/** The reserved identities with the labels Cilium gives them. */
export function reservedIdentities(): Identity[] {
  return [
    { id: RESERVED_IDENTITY.unknown, labels: reserved('unknown') },
    { id: RESERVED_IDENTITY.host, labels: reserved('host') },
    { id: RESERVED_IDENTITY.world, labels: reserved('world') },
    { id: RESERVED_IDENTITY.unmanaged, labels: reserved('unmanaged') },
    { id: RESERVED_IDENTITY.health, labels: reserved('health') },
    { id: RESERVED_IDENTITY.init, labels: reserved('init') },
    { id: RESERVED_IDENTITY.remoteNode, labels: reserved('remote-node') },
    { id: RESERVED_IDENTITY.kubeApiserver, labels: reserved('kube-apiserver', 'remote-node') },
    { id: RESERVED_IDENTITY.ingress, labels: reserved('ingress') },
    { id: RESERVED_IDENTITY.worldIPv4, labels: reserved('world-ipv4') },
    { id: RESERVED_IDENTITY.worldIPv6, labels: reserved('world-ipv6') },
  ];
}

/**
 * The labels every address outside the cluster has whatever prefix it falls in: `reserved:world`
 * and `reserved:world-ipv4`/`-ipv6` (the tail of `cidrIdentityLabels`).
 */
export function worldLabels(family: 4 | 6): Label[] {
  return reserved('world', family === 4 ? 'world-ipv4' : 'world-ipv6');
}

/**
 * Labels of the identity for a CIDR prefix (or a bare address): `cidr:<p>` for every prefix that
 * contains it, `reserved:world` and `reserved:world-ipv4`/`-ipv6`. Throws RangeError on a malformed prefix.
 */
export function cidrIdentityLabels(prefix: string): Label[] {
  const v4 = ipv4HostLabels(prefix);
  if (v4) return v4;
  const p = parsePrefix(prefix.includes('/') ? prefix : `${prefix}/${prefix.includes(':') ? 128 : 32}`);
  if (!p) throw new RangeError(`invalid CIDR prefix ${JSON.stringify(prefix)}`);
  const out: Label[] = containingPrefixes(p).map((q) => ({ source: 'cidr', key: cidrLabelKey(q), value: '' }));
  out.push(...worldLabels(p.family));
  return out;
}

/** `0`…`255` as text, so an IPv4 prefix is written without number formatting. */
const OCTET = Array.from({ length: 256 }, (_, i) => String(i));

/**
 * The fast path of `cidrIdentityLabels` for a dotted-quad IPv4 address or `/32` (every address an
 * A answer teaches the FQDN path): its 33 containing prefixes from the integer address, masked per
 * length, instead of a bigint parse and format per prefix. Null for anything else (the general path
 * decides, with its errors). Same labels, same order.
 */
function ipv4HostLabels(prefix: string): Label[] | null {
  const slash = prefix.indexOf('/');
  if (slash >= 0 && prefix.slice(slash + 1) !== '32') return null;
  const text = slash >= 0 ? prefix.slice(0, slash) : prefix;
  let n = 0;
  let parts = 0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && text.charCodeAt(i) !== 46 /* . */) continue;
    const part = text.slice(start, i);
    // The strict spelling parsePrefix accepts: 1–3 digits, no leading zero, ≤ 255.
    if (part.length === 0 || part.length > 3 || (part.length > 1 && part.charCodeAt(0) === 48)) return null;
    let v = 0;
    for (let j = 0; j < part.length; j++) {
      const c = part.charCodeAt(j) - 48;
      if (c < 0 || c > 9) return null;
      v = v * 10 + c;
    }
    if (v > 255) return null;
    n = n * 256 + v;
    parts++;
    start = i + 1;
  }
  if (parts !== 4) return null;
  const out: Label[] = new Array<Label>(35);
  for (let len = 0; len <= 32; len++) {
    const a = len === 0 ? 0 : (n & (0xffffffff << (32 - len))) >>> 0;
    out[len] = { source: 'cidr', key: `${OCTET[a >>> 24]}.${OCTET[(a >>> 16) & 255]}.${OCTET[(a >>> 8) & 255]}.${OCTET[a & 255]}/${len}`, value: '' };
  }
  out[33] = { source: 'reserved', key: 'world', value: '' };
  out[34] = { source: 'reserved', key: 'world-ipv4', value: '' };
  return out;
}
