/**
 * The one toFQDNs matcher, shared by the name manager, the DNS proxy, `policy trace` and
 * `membrane fqdn match`. It is the policy module's construction (src/policy/api/fqdn.ts, a port of
 * Cilium's `pkg/fqdn/matchpattern`), run on RE2, so every match is linear in the name's length.
 *
 * Names are compared as Cilium's DNS proxy compares them: lower-cased with a trailing dot
 * (`pkg/fqdn/dnsproxy/proxy.go` CheckAllowed: `strings.ToLower(dns.Fqdn(name))`).
 */
import { nameRegex, patternRegex, toFQDN, validateMatchPattern, type FqdnSelectorInfo } from '../policy/index.js';

/** A toFQDNs selector: exactly one of `matchName` / `matchPattern` is set. */
export type FqdnSelector = Pick<FqdnSelectorInfo, 'matchName' | 'matchPattern'>;

/**
 * Longest name (after normalisation) the subsystem learns or matches: a DNS name is at most 255
 * octets on the wire, so its text with the trailing dot is at most 254 characters. Longer input
 * cannot come from a well-formed answer and matches nothing.
 */
export const MAX_NAME_LENGTH = 254;

/** Lower-case with a trailing dot (Cilium's `dns.FQDN`): `API.GitHub.com` → `api.github.com.`. */
export function normalizeName(name: string): string {
  return toFQDN(name);
}

/**
 * Whether the selector admits the DNS name (any case, with or without the trailing dot). A
 * selector with neither field admits nothing; so does a name longer than {@link MAX_NAME_LENGTH}.
 */
export function selectorMatches(sel: FqdnSelector, name: string): boolean {
  const n = normalizeName(name);
  if (n.length > MAX_NAME_LENGTH) return false;
  if (sel.matchName !== undefined) return nameRegex(sel.matchName).test(n);
  if (sel.matchPattern !== undefined) return patternRegex(sel.matchPattern).test(n);
  return false;
}

/**
 * Cilium's validation of a matchPattern (`matchpattern.Validate` with the CRD pattern): `null` when
 * valid, else the error text Cilium gives, e.g. `Invalid characters in MatchPattern: "a b". Only
 * 0-9, a-z, A-Z and ., -, _ and * characters are allowed`. A matchName is a pattern without `*`.
 */
export function validatePattern(pattern: string): string | null {
  return validateMatchPattern(pattern);
}
