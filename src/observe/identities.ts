/**
 * Reserved security identities (Cilium `pkg/identity/numericidentity.go`): the printer shows them
 * by name, `(world)`, and `--identity` accepts the names.
 */

export const RESERVED_IDENTITIES = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
  'world-ipv4': 9,
  'world-ipv6': 10,
} as const;
export type ReservedIdentityName = keyof typeof RESERVED_IDENTITIES;

const names = new Map<number, ReservedIdentityName>(
  (Object.entries(RESERVED_IDENTITIES) as Array<[ReservedIdentityName, number]>).map(([n, id]) => [id, n]),
);

/** `2` → `'world'`; undefined for identities that are not reserved (0 included). */
export function reservedIdentityName(id: number): ReservedIdentityName | undefined {
  return names.get(id);
}

/** A reserved name or a decimal number → the numeric identity; undefined if neither. */
export function parseIdentity(value: string): number | undefined {
  const reserved = (RESERVED_IDENTITIES as Record<string, number>)[value];
  if (reserved !== undefined) return reserved;
  if (!/^[0-9]{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 0xffffffff ? n : undefined;
}
