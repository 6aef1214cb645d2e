/** membrane_ipcache (bpf/lib/ipcache.h): IPv4 prefix → security identity. */
import { defineStruct } from '../layout.js';

export const IPCACHE_MAP = 'membrane_ipcache';

export const ipcacheKey = defineStruct('ipcache_key', {
  lpm_key: 'u32',
  addr: 'be32',
});

export const ipcacheValue = defineStruct('ipcache_value', {
  sec_identity: 'u32',
  reserved_0: 'u32',
});
