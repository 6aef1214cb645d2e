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
 * Labels of the identity for a CIDR prefix (or a bare address): `cidr:<p>` for every prefix that
 * contains it, `reserved:world` and `reserved:world-ipv4`/`-ipv6`. Throws RangeError on a malformed prefix.
 */
export function cidrIdentityLabels(prefix: string): Label[] {
  const p = parsePrefix(prefix.includes('/') ? prefix : `${prefix}/${prefix.includes(':') ? 128 : 32}`);
  if (!p) throw new RangeError(`invalid CIDR prefix ${JSON.stringify(prefix)}`);
  const out: Label[] = containingPrefixes(p).map((q) => ({ source: 'cidr', key: cidrLabelKey(q), value: '' }));
  out.push(...reserved('world', p.family === 4 ? 'world-ipv4' : 'world-ipv6'));
  return out;
}
