/**
 * toFQDNs and DNS L7 selectors: character set and length validation, and the anchored regex.
 * Facts: lower-cased, trailing dot; `*` = zero or more of [-a-zA-Z0-9_] never crossing a dot; a
 * leading `**.` = one or more labels; an all-stars pattern matches every well-formed FQDN.
 */

/** Longest matchName/matchPattern accepted (twin: src/fqdn's pattern compiler). */
export const MAX_FQDN_LENGTH = 255;

import { compileSearch, fullMatcher, type Re2Matcher } from '../../re2/index.js';

const NAME_CHARS = /^[-a-zA-Z0-9_.]+$/;
const PATTERN_CHARS = /^[-a-zA-Z0-9_.*]+$/;
// The CRD's OpenAPI patterns. Nested quantifiers: as JavaScript RegExps they backtrack
// exponentially on a name like "aaaa…a.." (10 s at 28 characters), so they run on RE2.
const CRD_NAME = crdPattern('^([-a-zA-Z0-9_]+[.]?)+$');
const CRD_PATTERN = crdPattern('^([-a-zA-Z0-9_*]+[.]?)+$');

function crdPattern(source: string): { source: string; test(s: string): boolean } {
  const r = compileSearch(source);
  if (!r.ok) throw new RangeError(r.error);
  return { source, test: (s) => r.matcher.test(s) };
}
const ALL_STARS = /^[*]+[.]?$/;

/** Lower-case and add a trailing dot unless present (an escaped `\.` does not count). */
export function toFQDN(s: string): string {
  const l = s.toLowerCase();
  if (l.endsWith('.') && !l.endsWith('\\.')) return l;
  return `${l}.`;
}

export function validateMatchName(s: string): string | null {
  const t = s.trim();
  if (t.length > MAX_FQDN_LENGTH) return `must be at most ${MAX_FQDN_LENGTH} characters`;
  if (!NAME_CHARS.test(t)) return `Invalid characters in MatchName: ${JSON.stringify(s)}. Only 0-9, a-z, A-Z and ., - and _ characters are allowed`;
  if (!CRD_NAME.test(s)) return `invalid matchName ${JSON.stringify(s)}: must match ${CRD_NAME.source}`;
  return null;
}

export function validateMatchPattern(s: string): string | null {
  const t = s.trim();
  // Cilium's text (pkg/fqdn/matchpattern prevalidate).
  if (t.length > MAX_FQDN_LENGTH) return `Invalid MatchPattern: ${JSON.stringify(s)}. Must be <= ${MAX_FQDN_LENGTH} characters long.`;
  if (!PATTERN_CHARS.test(t)) return `Invalid characters in MatchPattern: ${JSON.stringify(s)}. Only 0-9, a-z, A-Z and ., -, _ and * characters are allowed`;
  if (!CRD_PATTERN.test(s)) return `invalid matchPattern ${JSON.stringify(s)}: must match ${CRD_PATTERN.source}`;
  return null;
}

export function isAllStars(p: string): boolean {
  return ALL_STARS.test(p.trim());
}

const G = '[-a-zA-Z0-9_]';

/** The unanchored regex body for a matchPattern (after sanitising). */
export function patternRegexBody(pattern: string): string {
  const p = pattern.trim().toLowerCase();
  if (ALL_STARS.test(p)) return `(${G}+[.])+|[.]`;
  let s = toFQDN(p);
  let out = '';
  const lead = /^[*]{2,}[.]/.exec(s);
  if (lead) {
    out += `(${G}+([.]${G}+)*)[.]`;
    s = s.slice(lead[0].length);
  }
  for (let i = 0; i < s.length; ) {
    const ch = s[i]!;
    if (ch === '*') {
      while (s[i] === '*') i++;
      out += `${G}*`;
      continue;
    }
    out += ch === '.' ? '[.]' : ch.replace(/[-]/g, '\\-');
    i++;
  }
  return out;
}

/** The RE2 full-match matcher for a body this module built (always valid RE2 syntax). */
function matcherOf(body: string): Re2Matcher {
  const m = fullMatcher(body);
  if (!m) throw new RangeError(`FQDN pattern did not compile: ${body}`);
  return m;
}

/** Full-match matcher for a toFQDNs matchPattern (RE2: linear in the name's length). */
export function patternRegex(pattern: string): Re2Matcher {
  return matcherOf(patternRegexBody(pattern));
}

/** Full-match matcher for a matchName. */
export function nameRegex(name: string): Re2Matcher {
  const n = toFQDN(name.trim());
  return matcherOf(n.replace(/[.]/g, '[.]').replace(/[-]/g, '\\-'));
}

/** The label key the FQDN subsystem gives IPs selected by this selector (`fqdn:<key>`). */
export function fqdnSelectorKey(sel: { matchName?: string | undefined; matchPattern?: string | undefined }): string {
  if (sel.matchName !== undefined) return toFQDN(sel.matchName.trim());
  return isAllStars(sel.matchPattern ?? '') ? (sel.matchPattern ?? '*').trim() : toFQDN((sel.matchPattern ?? '').trim());
}
