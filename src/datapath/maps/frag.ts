/**
 * membrane_frag4 (bpf/lib/frag.h): IPv4 fragment tracking, Cilium's cilium_ipv4_frag_datagrams.
 * A datagram's {daddr, saddr, IP id, protocol} → the L4 fields its first fragment carried, so
 * its later fragments are judged with the same ports. Written only by the programs; LRU.
 */
import { defineStruct } from '../layout.js';

export const FRAG_MAP = 'membrane_frag4';
/** Cilium's default --bpf-fragments-map-max. */
export const FRAG_MAP_ENTRIES = 8192;

export const fragKey = defineStruct('frag_key', {
  daddr: 'be32',
  saddr: 'be32',
  id: 'be16',
  protocol: 'u8',
  reserved_0: 'u8',
});

export const fragL4 = defineStruct('frag_l4', {
  sport: 'be16',
  dport: 'be16',
  icmp_type: 'u8',
  tcp_flags: 'u8',
  reserved_0: 'u16',
});
