/** skb->mark layout shared with bpf/lib/common.h. */
export const MARK_MAGIC_MASK = 0x0f00;
export const MARK_TO_PROXY = 0x0200;
export const MARK_FROM_PROXY = 0x0a00;
/** Routing table and rule preference that deliver MARK_TO_PROXY packets to local sockets. */
export const PROXY_ROUTE_TABLE = 2004;
export const PROXY_RULE_PREF = 9;

/** The SO_MARK a proxy's upstream socket carries: identity bits 0..15 in 16..31, bits 16..23 in 0..7. */
export function fromProxyMark(identity: number): number {
  if (!Number.isInteger(identity) || identity < 0 || identity > 0xffffff) {
    throw new RangeError(`identity ${identity} does not fit the 24 bits of the proxy mark`);
  }
  return (((identity & 0xffff) << 16) | MARK_FROM_PROXY | ((identity >>> 16) & 0xff)) >>> 0;
}

export function identityFromMark(mark: number): number {
  return ((mark >>> 16) | ((mark & 0xff) << 16)) >>> 0;
}
