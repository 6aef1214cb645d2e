/**
 * Port and protocol parsing shared by the Cilium and Kubernetes policy kinds.
 */

/** IANA service name (Kubernetes named port): 1–15 of [a-z0-9-], a letter somewhere, no `--`, no edge `-`. */
export function isServiceName(s: string): boolean {
  if (s.length === 0 || s.length > 15) return false;
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(s)) return false;
  if (s.includes('--')) return false;
  return /[a-zA-Z]/.test(s);
}

/**
 * Parses an unsigned 16-bit number the way Go's `strconv.ParseUint(s, 0, 16)` does: decimal,
 * `0x` hex, `0o`/leading-0 octal, `0b` binary, underscores between digits only with a base prefix.
 */
export function parseGoUint16(s: string): { ok: true; value: number } | { ok: false; error: string } {
  const invalid = { ok: false as const, error: `strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid syntax` };
  let body = s;
  let base = 10;
  let prefixed = false;
  if (/^0[xX]/.test(body)) {
    base = 16;
    body = body.slice(2);
    prefixed = true;
  } else if (/^0[oO]/.test(body)) {
    base = 8;
    body = body.slice(2);
    prefixed = true;
  } else if (/^0[bB]/.test(body)) {
    base = 2;
    body = body.slice(2);
    prefixed = true;
  } else if (body.length > 1 && body[0] === '0') {
    base = 8;
    body = body.slice(1);
    prefixed = true;
  }
  if (body.includes('_')) {
    if (!prefixed && base === 10) {
      // Go allows underscores in base-0 decimal too, but only between digits.
    }
    if (!/^_?[0-9a-fA-F]+(_[0-9a-fA-F]+)*$/.test(body) || (!prefixed && body.startsWith('_'))) return invalid;
    body = body.replaceAll('_', '');
  }
  if (body === '') return invalid;
  const digits = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : base === 2 ? /^[01]+$/ : /^[0-9]+$/;
  if (!digits.test(body)) return invalid;
  const v = parseInt(body, base);
  if (!Number.isFinite(v) || v > 65535) return { ok: false, error: `strconv.ParseUint: parsing ${JSON.stringify(s)}: value out of range` };
  return { ok: true, value: v };
}

export const ICMP4_TYPES: Readonly<Record<string, number>> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

export const ICMP6_TYPES: Readonly<Record<string, number>> = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MulticastListenerQuery: 130,
  MulticastListenerReport: 131,
  MulticastListenerDone: 132,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  RedirectMessage: 137,
  RouterRenumbering: 138,
  ICMPNodeInformationQuery: 139,
  ICMPNodeInformationResponse: 140,
  InverseNeighborDiscoverySolicitation: 141,
  InverseNeighborDiscoveryAdvertisement: 142,
  HomeAgentAddressDiscoveryRequest: 144,
  HomeAgentAddressDiscoveryReply: 145,
  MobilePrefixSolicitation: 146,
  MobilePrefixAdvertisement: 147,
  DuplicateAddressRequestCodeSuffix: 157,
  DuplicateAddressConfirmationCodeSuffix: 158,
  ExtendedEchoRequest: 160,
  ExtendedEchoReply: 161,
};
