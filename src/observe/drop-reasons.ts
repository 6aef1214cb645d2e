/**
 * Drop reasons: the numeric code the datapath reports, Hubble's `DropReason` enum name
 * (`drop_reason_desc`, what `--drop-reason-desc` takes), and the message Hubble prints as a drop
 * flow's type (Cilium `pkg/monitor/api/drop.go`).
 *
 * Mirrors: the numbers are shared with `bpf/` (the drop codes header) and `src/datapath/`; keep the
 * three in step. Retired numbers stay listed.
 */

const TABLE = [
  [130, 'INVALID_SOURCE_MAC', 'Invalid source mac'],
  [131, 'INVALID_DESTINATION_MAC', 'Invalid destination mac'],
  [132, 'INVALID_SOURCE_IP', 'Invalid source ip'],
  [133, 'POLICY_DENIED', 'Policy denied'],
  [134, 'INVALID_PACKET_DROPPED', 'Invalid packet'],
  [135, 'CT_TRUNCATED_OR_INVALID_HEADER', 'CT: Truncated or invalid header'],
  [136, 'CT_MISSING_TCP_ACK_FLAG', 'CT: Missing TCP ACK flag'],
  [137, 'CT_UNKNOWN_L4_PROTOCOL', 'CT: Unknown L4 protocol'],
  [138, 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET', "CT: Can't create entry from packet"],
  [139, 'UNSUPPORTED_L3_PROTOCOL', 'Unsupported L3 protocol'],
  [140, 'MISSED_TAIL_CALL', 'Missed tail call'],
  [141, 'ERROR_WRITING_TO_PACKET', 'Error writing to packet'],
  [142, 'UNKNOWN_L4_PROTOCOL', 'Unknown L4 protocol'],
  [143, 'UNKNOWN_ICMPV4_CODE', 'Unknown ICMPv4 code'],
  [144, 'UNKNOWN_ICMPV4_TYPE', 'Unknown ICMPv4 type'],
  [145, 'UNKNOWN_ICMPV6_CODE', 'Unknown ICMPv6 code'],
  [146, 'UNKNOWN_ICMPV6_TYPE', 'Unknown ICMPv6 type'],
  [147, 'ERROR_RETRIEVING_TUNNEL_KEY', 'Error retrieving tunnel key'],
  [148, 'ERROR_RETRIEVING_TUNNEL_OPTIONS', 'Error retrieving tunnel options'],
  [149, 'INVALID_GENEVE_OPTION', 'Invalid Geneve option'],
  [150, 'UNKNOWN_L3_TARGET_ADDRESS', 'Unknown L3 target address'],
  [151, 'STALE_OR_UNROUTABLE_IP', 'Stale or unroutable IP'],
  [152, 'NO_MATCHING_LOCAL_CONTAINER_FOUND', 'No matching local container found'],
  [153, 'ERROR_WHILE_CORRECTING_L3_CHECKSUM', 'Error while correcting L3 checksum'],
  [154, 'ERROR_WHILE_CORRECTING_L4_CHECKSUM', 'Error while correcting L4 checksum'],
  [155, 'CT_MAP_INSERTION_FAILED', 'CT: Map insertion failed'],
  [156, 'INVALID_IPV6_EXTENSION_HEADER', 'Invalid IPv6 extension header'],
  [157, 'IP_FRAGMENTATION_NOT_SUPPORTED', 'IP fragmentation not supported'],
  [158, 'SERVICE_BACKEND_NOT_FOUND', 'Service backend not found'],
  [160, 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT', 'No tunnel/encapsulation endpoint (datapath BUG!)'],
  [161, 'FAILED_TO_INSERT_INTO_PROXYMAP', 'Failed to insert into proxymap'],
  [162, 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON', 'Reached EDT rate-limiting drop horizon'],
  [163, 'UNKNOWN_CONNECTION_TRACKING_STATE', 'Unknown connection tracking state'],
  [164, 'LOCAL_HOST_IS_UNREACHABLE', 'Local host is unreachable'],
  [165, 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION', 'No configuration available to perform policy decision'],
  [166, 'UNSUPPORTED_L2_PROTOCOL', 'Unsupported L2 protocol'],
  [167, 'NO_MAPPING_FOR_NAT_MASQUERADE', 'No mapping for NAT masquerade'],
  [168, 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE', 'Unsupported protocol for NAT masquerade'],
  [169, 'FIB_LOOKUP_FAILED', 'FIB lookup failed'],
  [170, 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED', 'Encapsulation traffic is prohibited'],
  [171, 'INVALID_IDENTITY', 'Invalid identity'],
  [172, 'UNKNOWN_SENDER', 'Unknown sender'],
  [173, 'NAT_NOT_NEEDED', 'NAT not needed'],
  [174, 'IS_A_CLUSTERIP', 'Is a ClusterIP'],
  [175, 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', 'First logical datagram fragment not found'],
  [176, 'FORBIDDEN_ICMPV6_MESSAGE', 'Forbidden ICMPv6 message'],
  [177, 'DENIED_BY_LB_SRC_RANGE_CHECK', 'Denied by LB src range check'],
  [178, 'SOCKET_LOOKUP_FAILED', 'Socket lookup failed'],
  [179, 'SOCKET_ASSIGN_FAILED', 'Socket assign failed'],
  [180, 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL', 'Proxy redirection not supported for protocol'],
  [181, 'POLICY_DENY', 'Policy denied by denylist'],
  // Newer codes: enum names from flow.proto; Hubble's printed text was not verified, so the
  // printer falls back to the number, as Hubble does for codes it has no text for.
  [182, 'VLAN_FILTERED', null],
  [183, 'INVALID_VNI', null],
  [184, 'INVALID_TC_BUFFER', null],
  [185, 'NO_SID', null],
  [186, 'MISSING_SRV6_STATE', null],
  [187, 'NAT46', null],
  [188, 'NAT64', null],
  [189, 'AUTH_REQUIRED', null],
  [190, 'CT_NO_MAP_FOUND', null],
  [191, 'SNAT_NO_MAP_FOUND', null],
  [192, 'INVALID_CLUSTER_ID', null],
  [193, 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP', null],
  [194, 'NO_EGRESS_GATEWAY', null],
  [196, 'TTL_EXCEEDED', null],
  [197, 'NO_NODE_ID', null],
] as const;

type Row = (typeof TABLE)[number];
export type DropReasonName = Row[1];
export type DropReasonCode = Row[0];

/** The codes the demo and the policy engine rely on, by name. */
export const DROP_REASON = {
  INVALID_SOURCE_IP: 132,
  POLICY_DENIED: 133,
  INVALID_PACKET_DROPPED: 134,
  CT_TRUNCATED_OR_INVALID_HEADER: 135,
  CT_UNKNOWN_L4_PROTOCOL: 137,
  UNSUPPORTED_L3_PROTOCOL: 139,
  IP_FRAGMENTATION_NOT_SUPPORTED: 157,
  FORBIDDEN_ICMPV6_MESSAGE: 176,
  PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL: 180,
  POLICY_DENY: 181,
  AUTH_REQUIRED: 189,
} as const satisfies Partial<Record<DropReasonName, DropReasonCode>>;

const byCode = new Map<number, Row>(TABLE.map((r) => [r[0], r]));
const byName = new Map<string, Row>(TABLE.map((r) => [r[1], r]));

/** `133` → `'POLICY_DENIED'`; undefined for unknown codes. */
export function dropReasonName(code: number): DropReasonName | undefined {
  return byCode.get(code)?.[1];
}

/** `'POLICY_DENIED'` → `133`; undefined for unknown names. Case-sensitive, as Hubble's flag. */
export function dropReasonCode(name: string): DropReasonCode | undefined {
  return byName.get(name)?.[0];
}

/** The text Hubble prints for a drop: `133` → `'Policy denied'`; unknown codes print as the number. */
export function dropReasonMessage(code: number): string {
  if (code === 0) return 'Success';
  return byCode.get(code)?.[2] ?? String(code);
}

export function isDropReasonName(name: string): name is DropReasonName {
  return byName.has(name);
}

/** Every known reason, ascending by code. */
export function dropReasons(): ReadonlyArray<{ code: DropReasonCode; name: DropReasonName; message: string }> {
  return TABLE.map((r) => ({ code: r[0], name: r[1], message: r[2] ?? String(r[0]) }));
}
