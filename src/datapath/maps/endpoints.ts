/** membrane_endpoints (bpf/lib/endpoints.h): local endpoint by IPv4 address. */
import { defineStruct } from '../layout.js';

export const ENDPOINTS_MAP = 'membrane_endpoints';

export const ENDPOINT_FLAGS = { ingressEnforced: 0x01, egressEnforced: 0x02 } as const;

export const endpointKey = defineStruct('endpoint_key', {
  addr: 'be32',
});

export const endpointInfo = defineStruct('endpoint_info', {
  ifindex: 'u32',
  sec_identity: 'u32',
  endpoint_id: 'u16',
  flags: 'u8',
  reserved_0: 'u8',
  reserved_1: 'u32',
});
