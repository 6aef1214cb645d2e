/**
 * membrane_policy (bpf/lib/policy.h): one LPM trie for every endpoint and direction.
 * The prefix covers identity + endpoint + direction (56 bits), then the protocol (8), then
 * 0..16 bits of the destination port.
 */
import { defineStruct } from '../layout.js';

export const POLICY_MAP = 'membrane_policy';
export const POLICY_PREFIX_FIXED = 56;
export const POLICY_PREFIX_PROTO = 64;
export const POLICY_FLAG_DENY = 0x01;

export const policyKey = defineStruct('policy_key', {
  lpm_key: 'u32',
  sec_identity: 'u32',
  endpoint_id: 'u16',
  egress: 'u8',
  protocol: 'u8',
  dport: 'be16',
  reserved_0: 'u16',
});

export const policyEntry = defineStruct('policy_entry', {
  proxy_port: 'be16',
  flags: 'u8',
  port_prefix_len: 'u8',
  deny_reason: 'u8',
  reserved_0: 'u8',
  reserved_1: 'u16',
});

export interface PolicyMapEntry {
  readonly endpointId: number;
  readonly egress: boolean;
  readonly identity: number;
  /** 0 = any protocol (the port must then be a wildcard too). */
  readonly protocol: number;
  readonly port: number;
  readonly portPrefixLen: number;
  readonly deny: boolean;
  /**
   * For deny entries: the drop reason the kernel reports (e.g. 189 AUTH_REQUIRED); absent or 0
   * means 181 POLICY_DENY. Must fit in a u8, as every Cilium drop reason does.
   */
  readonly dropReason?: number;
  /** Non-zero: redirect to the proxy listening on this port. */
  readonly proxyPort: number;
}

export function encodePolicyEntry(e: PolicyMapEntry): { key: Uint8Array; value: Uint8Array } {
  const lpm = e.protocol === 0 ? POLICY_PREFIX_FIXED : POLICY_PREFIX_PROTO + e.portPrefixLen;
  // Bits below the prefix must be zero, or two spellings of one entry would coexist.
  const portMask = e.portPrefixLen === 0 ? 0 : (0xffff << (16 - e.portPrefixLen)) & 0xffff;
  const key = policyKey.encode({
    lpm_key: lpm,
    sec_identity: e.identity,
    endpoint_id: e.endpointId,
    egress: e.egress ? 1 : 0,
    protocol: e.protocol,
    dport: e.protocol === 0 ? 0 : e.port & portMask,
    reserved_0: 0,
  });
  const value = policyEntry.encode({
    proxy_port: e.proxyPort,
    flags: e.deny ? POLICY_FLAG_DENY : 0,
    port_prefix_len: e.protocol === 0 ? 0 : e.portPrefixLen,
    deny_reason: e.deny ? (e.dropReason ?? 0) : 0,
    reserved_0: 0,
    reserved_1: 0,
  });
  return { key, value };
}
