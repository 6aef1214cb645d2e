/**
 * `toPorts[].serverNames`: the TLS SNI values a port rule allows (Cilium `pkg/policy/api/l4.go`
 * `ServerName`, enforced by cilium/proxy's SNI check on the ClientHello).
 *
 * Wildcards are those of toFQDNs `matchPattern` since Cilium fixed cilium/cilium#43597 (PR #43674,
 * cilium/proxy #1698): `*` is zero or more of [-a-zA-Z0-9_] within one label, anywhere in it; a
 * leading `**.` stands for one or more labels; a pattern of stars alone matches every name. So one
 * matcher serves both (./fqdn.ts), on RE2, linear in the name's length. Names compare
 * case-insensitively, a trailing dot ignored.
 *
 * Validation (cilium/proxy #1748, synced with the CRD): dot-separated labels of [-a-zA-Z0-9_*],
 * an optional trailing dot, no run of `*` longer than one except a whole `**` label, which marks
 * "one or more labels" and is meaningful only first. Cilium's sanitiser rejects an empty name with
 * "Empty server name is not allowed".
 */
import { MAX_FQDN_LENGTH, patternRegex, toFQDN } from './fqdn.js';

/** The CRD's base pattern for one server name (the k8s type in cilium/cilium). */
export const SERVER_NAME_PATTERN = '^([-a-zA-Z0-9_*]+[.]?)+$';
const LABEL = /^[-a-zA-Z0-9_*]+$/;
/** Characters an SNI host_name may have to be matched at all (a DNS name, RFC 6066 §3). */
const SNI_CHARS = /^[-a-zA-Z0-9_.]+$/;

/**
 * Cilium's checks of one `serverNames[]` entry: `null` when valid, else the message. Messages:
 * `Empty server name is not allowed` (Cilium's text), `invalid serverName "…": must match …`
 * (the CRD pattern), and the `**` rule.
 */
export function validateServerName(s: string): string | null {
  if (s === '') return 'Empty server name is not allowed';
  if (s.length > MAX_FQDN_LENGTH) return `invalid serverName ${JSON.stringify(s)}: must be at most ${MAX_FQDN_LENGTH} characters`;
  const body = s.endsWith('.') ? s.slice(0, -1) : s;
  const labels = body.split('.');
  if (body === '' || labels.some((l) => !LABEL.test(l))) return `invalid serverName ${JSON.stringify(s)}: must match ${SERVER_NAME_PATTERN}`;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!l.includes('**')) continue;
    if (l !== '**') return `invalid serverName ${JSON.stringify(s)}: consecutive wildcards are only allowed as a whole "**" label`;
    if (i > 0) return `invalid serverName ${JSON.stringify(s)}: "**" (one or more labels) may only be the first label`;
  }
  return null;
}

/**
 * Whether the SNI a client sent is allowed by one `serverNames` entry (already validated). A
 * host_name with characters no DNS name has, or longer than a DNS name, matches nothing.
 */
export function serverNameMatches(pattern: string, sni: string): boolean {
  if (sni.length === 0 || sni.length > MAX_FQDN_LENGTH || !SNI_CHARS.test(sni)) return false;
  return patternRegex(pattern).test(toFQDN(sni));
}
