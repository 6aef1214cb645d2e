/**
 * Drop reasons: the one table. Each row is the code the datapath reports (`event_type.sub_type`
 * of a drop, the deprecated `drop_reason`), Cilium's C macro (`bpf/lib/drop_reasons.h`, where the
 * value is negated), Hubble's `DropReason` enum name (`api/v1/flow/flow.proto`, what
 * `drop_reason_desc` and `--drop-reason-desc` carry) and the text `hubble observe` prints as a
 * drop's type (Cilium `pkg/monitor/api/drop.go`, `DropReason()`).
 *
 * Mirrors: `bpf/lib/drop_reasons.h` defines the macros Membrane's programs use; a unit test checks
 * each of them against this table by name and number. Cilium retires a number by renaming its
 * macro `DROP_UNUSEDn` and never reuses it; so does this table.
 *
 * `name: null`: flow.proto has no enum value for the code (Hubble then leaves `drop_reason_desc`
 * unset). `text: null`: drop.go has no text for it (Hubble then prints the number).
 */

interface DropReasonRow {
  readonly code: number;
  readonly cName: `DROP_${string}`;
  readonly name: string | null;
  readonly text: string | null;
}

const ROWS = [
  { code: 130, cName: 'DROP_UNUSED1', name: 'INVALID_SOURCE_MAC', text: 'Invalid source mac' },
  { code: 131, cName: 'DROP_UNUSED2', name: 'INVALID_DESTINATION_MAC', text: 'Invalid destination mac' },
  { code: 132, cName: 'DROP_INVALID_SIP', name: 'INVALID_SOURCE_IP', text: 'Invalid source ip' },
  { code: 133, cName: 'DROP_POLICY', name: 'POLICY_DENIED', text: 'Policy denied' },
  { code: 134, cName: 'DROP_INVALID', name: 'INVALID_PACKET_DROPPED', text: 'Invalid packet' },
  { code: 135, cName: 'DROP_CT_INVALID_HDR', name: 'CT_TRUNCATED_OR_INVALID_HEADER', text: 'CT: Truncated or invalid header' },
  { code: 136, cName: 'DROP_FRAG_NEEDED', name: 'CT_MISSING_TCP_ACK_FLAG', text: 'Fragmentation needed' },
  { code: 137, cName: 'DROP_CT_UNKNOWN_PROTO', name: 'CT_UNKNOWN_L4_PROTOCOL', text: 'CT: Unknown L4 protocol' },
  { code: 138, cName: 'DROP_UNUSED4', name: 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET', text: "CT: Can't create entry from packet" },
  { code: 139, cName: 'DROP_UNKNOWN_L3', name: 'UNSUPPORTED_L3_PROTOCOL', text: 'Unsupported L3 protocol' },
  { code: 140, cName: 'DROP_MISSED_TAIL_CALL', name: 'MISSED_TAIL_CALL', text: 'Missed tail call' },
  { code: 141, cName: 'DROP_WRITE_ERROR', name: 'ERROR_WRITING_TO_PACKET', text: 'Error writing to packet' },
  { code: 142, cName: 'DROP_UNKNOWN_L4', name: 'UNKNOWN_L4_PROTOCOL', text: 'Unknown L4 protocol' },
  { code: 143, cName: 'DROP_UNKNOWN_ICMP4_CODE', name: 'UNKNOWN_ICMPV4_CODE', text: 'Unknown ICMPv4 code' },
  { code: 144, cName: 'DROP_UNKNOWN_ICMP4_TYPE', name: 'UNKNOWN_ICMPV4_TYPE', text: 'Unknown ICMPv4 type' },
  { code: 145, cName: 'DROP_UNKNOWN_ICMP6_CODE', name: 'UNKNOWN_ICMPV6_CODE', text: 'Unknown ICMPv6 code' },
  { code: 146, cName: 'DROP_UNKNOWN_ICMP6_TYPE', name: 'UNKNOWN_ICMPV6_TYPE', text: 'Unknown ICMPv6 type' },
  { code: 147, cName: 'DROP_NO_TUNNEL_KEY', name: 'ERROR_RETRIEVING_TUNNEL_KEY', text: 'Error retrieving tunnel key' },
  { code: 148, cName: 'DROP_UNUSED5', name: 'ERROR_RETRIEVING_TUNNEL_OPTIONS', text: 'Error retrieving tunnel options' },
  { code: 149, cName: 'DROP_UNUSED6', name: 'INVALID_GENEVE_OPTION', text: 'Invalid Geneve option' },
  { code: 150, cName: 'DROP_UNKNOWN_TARGET', name: 'UNKNOWN_L3_TARGET_ADDRESS', text: 'Unknown L3 target address' },
  { code: 151, cName: 'DROP_UNROUTABLE', name: 'STALE_OR_UNROUTABLE_IP', text: 'Stale or unroutable IP' },
  { code: 152, cName: 'DROP_UNUSED7', name: 'NO_MATCHING_LOCAL_CONTAINER_FOUND', text: 'No matching local container found' },
  { code: 153, cName: 'DROP_CSUM_L3', name: 'ERROR_WHILE_CORRECTING_L3_CHECKSUM', text: 'Error while correcting L3 checksum' },
  { code: 154, cName: 'DROP_CSUM_L4', name: 'ERROR_WHILE_CORRECTING_L4_CHECKSUM', text: 'Error while correcting L4 checksum' },
  { code: 155, cName: 'DROP_CT_CREATE_FAILED', name: 'CT_MAP_INSERTION_FAILED', text: 'CT: Map insertion failed' },
  { code: 156, cName: 'DROP_INVALID_EXTHDR', name: 'INVALID_IPV6_EXTENSION_HEADER', text: 'Invalid IPv6 extension header' },
  { code: 157, cName: 'DROP_FRAG_NOSUPPORT', name: 'IP_FRAGMENTATION_NOT_SUPPORTED', text: 'IP fragmentation not supported' },
  { code: 158, cName: 'DROP_NO_SERVICE', name: 'SERVICE_BACKEND_NOT_FOUND', text: 'Service backend not found' },
  { code: 159, cName: 'DROP_UNSUPP_SERVICE_PROTO', name: null, text: null },
  { code: 160, cName: 'DROP_NO_TUNNEL_ENDPOINT', name: 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT', text: 'No tunnel/encapsulation endpoint (datapath BUG!)' },
  { code: 161, cName: 'DROP_NAT_46X64_DISABLED', name: 'FAILED_TO_INSERT_INTO_PROXYMAP', text: 'NAT 46/64 not enabled' },
  { code: 162, cName: 'DROP_EDT_HORIZON', name: 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON', text: 'Reached EDT rate-limiting drop horizon' },
  { code: 163, cName: 'DROP_UNKNOWN_CT', name: 'UNKNOWN_CONNECTION_TRACKING_STATE', text: 'Unknown connection tracking state' },
  { code: 164, cName: 'DROP_HOST_UNREACHABLE', name: 'LOCAL_HOST_IS_UNREACHABLE', text: 'Local host is unreachable' },
  { code: 165, cName: 'DROP_NO_CONFIG', name: 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION', text: 'No configuration available to perform policy decision' },
  { code: 166, cName: 'DROP_UNSUPPORTED_L2', name: 'UNSUPPORTED_L2_PROTOCOL', text: 'Unsupported L2 protocol' },
  { code: 167, cName: 'DROP_NAT_NO_MAPPING', name: 'NO_MAPPING_FOR_NAT_MASQUERADE', text: 'No mapping for NAT masquerade' },
  { code: 168, cName: 'DROP_NAT_UNSUPP_PROTO', name: 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE', text: 'Unsupported protocol for NAT masquerade' },
  { code: 169, cName: 'DROP_NO_FIB', name: 'FIB_LOOKUP_FAILED', text: 'FIB lookup failed' },
  { code: 170, cName: 'DROP_ENCAP_PROHIBITED', name: 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED', text: 'Encapsulation traffic is prohibited' },
  { code: 171, cName: 'DROP_INVALID_IDENTITY', name: 'INVALID_IDENTITY', text: 'Invalid identity' },
  { code: 172, cName: 'DROP_UNKNOWN_SENDER', name: 'UNKNOWN_SENDER', text: 'Unknown sender' },
  { code: 173, cName: 'DROP_NAT_NOT_NEEDED', name: 'NAT_NOT_NEEDED', text: 'NAT not needed' },
  { code: 174, cName: 'DROP_IS_CLUSTER_IP', name: 'IS_A_CLUSTERIP', text: 'Is a ClusterIP' },
  { code: 175, cName: 'DROP_FRAG_NOT_FOUND', name: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', text: 'First logical datagram fragment not found' },
  { code: 176, cName: 'DROP_FORBIDDEN_ICMP6', name: 'FORBIDDEN_ICMPV6_MESSAGE', text: 'Forbidden ICMPv6 message' },
  { code: 177, cName: 'DROP_NOT_IN_SRC_RANGE', name: 'DENIED_BY_LB_SRC_RANGE_CHECK', text: 'Denied by LB src range check' },
  { code: 178, cName: 'DROP_PROXY_LOOKUP_FAILED', name: 'SOCKET_LOOKUP_FAILED', text: 'Socket lookup failed' },
  { code: 179, cName: 'DROP_PROXY_SET_FAILED', name: 'SOCKET_ASSIGN_FAILED', text: 'Socket assign failed' },
  { code: 180, cName: 'DROP_PROXY_UNKNOWN_PROTO', name: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL', text: 'Proxy redirection not supported for protocol' },
  { code: 181, cName: 'DROP_POLICY_DENY', name: 'POLICY_DENY', text: 'Policy denied by denylist' },
  { code: 182, cName: 'DROP_VLAN_FILTERED', name: 'VLAN_FILTERED', text: 'VLAN traffic disallowed by VLAN filter' },
  { code: 183, cName: 'DROP_INVALID_VNI', name: 'INVALID_VNI', text: 'Incorrect VNI from VTEP' },
  { code: 184, cName: 'DROP_INVALID_TC_BUFFER', name: 'INVALID_TC_BUFFER', text: 'Failed to update or lookup TC buffer' },
  { code: 185, cName: 'DROP_NO_SID', name: 'NO_SID', text: 'No SID was found for the IP address' },
  { code: 186, cName: 'DROP_UNUSED8', name: 'MISSING_SRV6_STATE', text: 'SRv6 state was removed during tail call' },
  { code: 187, cName: 'DROP_NAT46', name: 'NAT46', text: 'L3 translation from IPv4 to IPv6 failed (NAT46)' },
  { code: 188, cName: 'DROP_NAT64', name: 'NAT64', text: 'L3 translation from IPv6 to IPv4 failed (NAT64)' },
  { code: 189, cName: 'DROP_POLICY_AUTH_REQUIRED', name: 'AUTH_REQUIRED', text: 'Authentication required' },
  { code: 190, cName: 'DROP_CT_NO_MAP_FOUND', name: 'CT_NO_MAP_FOUND', text: 'No conntrack map found' },
  { code: 191, cName: 'DROP_SNAT_NO_MAP_FOUND', name: 'SNAT_NO_MAP_FOUND', text: 'No nat map found' },
  { code: 192, cName: 'DROP_INVALID_CLUSTER_ID', name: 'INVALID_CLUSTER_ID', text: 'Invalid ClusterID' },
  { code: 193, cName: 'DROP_DSR_ENCAP_UNSUPP_PROTO', name: 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP', text: 'Unsupported packet protocol for DSR encapsulation' },
  { code: 194, cName: 'DROP_NO_EGRESS_GATEWAY', name: 'NO_EGRESS_GATEWAY', text: 'No egress gateway found' },
  { code: 195, cName: 'DROP_UNENCRYPTED_TRAFFIC', name: null, text: 'Traffic is unencrypted' },
  { code: 196, cName: 'DROP_TTL_EXCEEDED', name: 'TTL_EXCEEDED', text: 'TTL exceeded' },
  { code: 197, cName: 'DROP_NO_NODE_ID', name: 'NO_NODE_ID', text: 'No node ID found' },
  { code: 198, cName: 'DROP_RATE_LIMITED', name: null, text: 'Rate limited' },
  { code: 199, cName: 'DROP_IGMP_HANDLED', name: null, text: null },
  { code: 200, cName: 'DROP_IGMP_SUBSCRIBED', name: null, text: null },
  { code: 201, cName: 'DROP_MULTICAST_HANDLED', name: null, text: null },
  { code: 202, cName: 'DROP_HOST_NOT_READY', name: 'DROP_HOST_NOT_READY', text: null },
  { code: 203, cName: 'DROP_EP_NOT_READY', name: 'DROP_EP_NOT_READY', text: null },
  { code: 204, cName: 'DROP_NO_EGRESS_IP', name: null, text: null },
  { code: 205, cName: 'DROP_PUNT_PROXY', name: null, text: null },
  { code: 206, cName: 'DROP_NO_DEVICE', name: null, text: null },
] as const satisfies readonly DropReasonRow[];

type Row = (typeof ROWS)[number];

/** Hubble's `DropReason` enum names, e.g. `'POLICY_DENIED'`. */
export type DropReasonName = Exclude<Row['name'], null>;
/** Every code Cilium defines, 130–206. */
export type DropReasonCode = Row['code'];
/** Cilium's C macro names, e.g. `'DROP_POLICY'`. */
export type DropReasonCName = Row['cName'];

/** One row of the table, as `dropReasons()` returns it. */
export interface DropReasonInfo {
  readonly code: DropReasonCode;
  readonly cName: DropReasonCName;
  readonly name: DropReasonName | null;
  readonly text: string | null;
}

/** Hubble name → code: `DROP_REASON.SOCKET_LOOKUP_FAILED === 178`. */
export const DROP_REASON = Object.freeze(
  Object.fromEntries(ROWS.flatMap((r) => (r.name === null ? [] : [[r.name, r.code]]))),
) as { readonly [R in Row as Exclude<R['name'], null>]: R['code'] };

const byCode = new Map<number, Row>(ROWS.map((r) => [r.code, r]));
const byName = new Map<string, Row>(ROWS.flatMap((r) => (r.name === null ? [] : [[r.name, r] as const])));

/** `133` → `'POLICY_DENIED'`; undefined for a code flow.proto does not name. */
export function dropReasonName(code: number): DropReasonName | undefined {
  return byCode.get(code)?.name ?? undefined;
}

/** `'POLICY_DENIED'` → `133`; undefined for unknown names. Case-sensitive, as Hubble's flag. */
export function dropReasonCode(name: string): DropReasonCode | undefined {
  return byName.get(name)?.code;
}

export function isDropReasonName(name: string): name is DropReasonName {
  return byName.has(name);
}

/**
 * The text `hubble observe` prints for a drop: `178` → `'Socket lookup failed'`, `0` →
 * `'Success'`; a code without text prints as its number (drop.go `DropReason`).
 */
export function dropReasonMessage(code: number): string {
  if (code === 0) return 'Success';
  return byCode.get(code)?.text ?? String(code);
}

/** Every row, ascending by code. */
export function dropReasons(): readonly DropReasonInfo[] {
  return ROWS;
}
