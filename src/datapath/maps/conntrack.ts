/** membrane_ct4 (bpf/lib/conntrack.h): connection tracking entries, keyed with direction. */
import { defineStruct } from '../layout.js';

export const CT_MAP = 'membrane_ct4';
export const CT_DIRECTION = { egress: 0x01, ingress: 0x02 } as const;
export const CT_ENTRY_FLAGS = { closing: 0x01, proxy: 0x02, fromProxy: 0x04 } as const;

export const ctKey = defineStruct('ct_key', {
  saddr: 'be32',
  daddr: 'be32',
  sport: 'be16',
  dport: 'be16',
  protocol: 'u8',
  flags: 'u8',
  reserved_0: 'u16',
});

export const ctEntry = defineStruct('ct_entry', {
  packets: 'u64',
  bytes: 'u64',
  expires: 'u32',
  src_identity: 'u32',
  proxy_port: 'be16',
  flags: 'u8',
  /** Trace aggregation (bpf/lib/conntrack.h ct_report): TCP flags seen, a nibble per direction (tx low, rx high). */
  flags_seen: 'u8',
  /** Seconds since boot mod 2^16 of the last trace of each direction; 0: none yet. */
  last_tx_report: 'u16',
  last_rx_report: 'u16',
});
