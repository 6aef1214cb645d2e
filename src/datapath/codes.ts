/**
 * Drop reasons: the mirror of bpf/lib/drop_reasons.h (a unit test compares the two).
 * Names are Hubble's DropReason names, so `membrane observe` reads like `hubble observe`.
 */
export const DROP_REASONS = {
  132: { name: 'INVALID_SOURCE_IP', text: 'Invalid source ip' },
  133: { name: 'POLICY_DENIED', text: 'Policy denied' },
  134: { name: 'INVALID_PACKET_DROPPED', text: 'Invalid packet' },
  135: { name: 'CT_TRUNCATED_OR_INVALID_HEADER', text: 'CT: Truncated or invalid header' },
  139: { name: 'UNKNOWN_L3_TARGET_ADDRESS', text: 'Unknown L3 protocol' },
  142: { name: 'UNKNOWN_L4_PROTOCOL', text: 'Unknown L4 protocol' },
  150: { name: 'UNKNOWN_TARGET', text: 'Unknown target' },
  157: { name: 'FRAGMENTATION_NEEDED', text: 'Fragmented packet not supported' },
  176: { name: 'PROXY_LOOKUP_FAILED', text: 'Proxy lookup failed' },
  180: { name: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL', text: 'Proxy redirection not supported for protocol' },
  181: { name: 'POLICY_DENY', text: 'Policy denied by denylist' },
} as const satisfies Record<number, { name: string; text: string }>;

/** The C macro name of each reason, for the mirror test. */
export const DROP_REASON_MACROS: Readonly<Record<string, number>> = {
  DROP_INVALID_SOURCE_IP: 132,
  DROP_POLICY_DENIED: 133,
  DROP_INVALID_PACKET: 134,
  DROP_CT_INVALID_HEADER: 135,
  DROP_UNKNOWN_L3: 139,
  DROP_UNKNOWN_L4: 142,
  DROP_UNKNOWN_TARGET: 150,
  DROP_FRAG_NOT_SUPPORTED: 157,
  DROP_PROXY_LOOKUP_FAILED: 176,
  DROP_PROXY_NOT_SUPPORTED: 180,
  DROP_POLICY_DENY: 181,
};

export type DropReasonCode = keyof typeof DROP_REASONS;

export function dropReasonName(code: number): string {
  return (DROP_REASONS as Record<number, { name: string }>)[code]?.name ?? `UNKNOWN_${code}`;
}

export function dropReasonText(code: number): string {
  return (DROP_REASONS as Record<number, { text: string }>)[code]?.text ?? `Unknown reason ${code}`;
}
