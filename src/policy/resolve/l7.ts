/**
 * L7 rule evaluation used by the proxies.
 *
 * HTTP: `method`, `path` (the request-target, query included) and `host` are RE2 regexes matched
 * against the FULL string, in time linear in the input (src/re2); `headers` are exact ("Name: value") or presence ("Name") matches;
 * `headerMatches` with the default mismatch action must match, other mismatch actions only have
 * side effects. Fields of one rule are AND-ed, rules are OR-ed, `allowAll` allows everything.
 *
 * DNS: names are lower-cased FQDNs; each pattern is matched with the toFQDNs rules, except that an
 * all-stars pattern in a DNS L7 rule allows every name.
 *
 * TLS (serverNames): the ClientHello's SNI, any case, against each name with toFQDNs wildcards;
 * a ClientHello without SNI matches no name (cilium/proxy: "TLS must be present and one of the
 * provided SNIs must be indicated in the TLS handshake").
 */
import { fullMatcher } from '../../re2/index.js';
import { isAllStars, patternRegex, toFQDN } from '../api/fqdn.js';
import { serverNameMatches } from '../api/server-name.js';
import type { HttpRule, L7Rules } from './types.js';

export interface HttpRequestInfo {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

function headerValues(headers: HttpRequestInfo['headers'], name: string): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== want || v === undefined) continue;
    if (typeof v === 'string') out.push(v);
    else out.push(...v);
  }
  return out;
}

function regexMatches(re: string | undefined, value: string): boolean {
  if (re === undefined) return true;
  const r = fullMatcher(re);
  return r !== null && r.test(value);
}

/** Does one HTTP rule match the request? */
export function httpRuleMatches(rule: HttpRule, req: HttpRequestInfo): boolean {
  if (!regexMatches(rule.method, req.method)) return false;
  if (!regexMatches(rule.path, req.path)) return false;
  if (!regexMatches(rule.host, req.host)) return false;
  for (const h of rule.headers ?? []) {
    const vals = headerValues(req.headers, h.name);
    if (vals.length === 0) return false;
    if (h.value !== undefined && !vals.includes(h.value)) return false;
  }
  for (const hm of rule.headerMatches ?? []) {
    if (hm.mismatch !== undefined && hm.mismatch !== '') continue; // side effect only
    // Secret values are not available here: a value given with the secret is the fallback,
    // a secret alone never matches.
    if (hm.secret !== undefined && hm.value === undefined) return false;
    const vals = headerValues(req.headers, hm.name);
    if (vals.length === 0) return false;
    if (hm.value !== undefined && !vals.includes(hm.value)) return false;
  }
  return true;
}

export function evaluateHttp(rules: L7Rules & { kind: 'http' }, req: HttpRequestInfo): { allowed: boolean; matchedRule: number | null } {
  for (let i = 0; i < rules.rules.length; i++) {
    if (httpRuleMatches(rules.rules[i]!, req)) return { allowed: true, matchedRule: i };
  }
  return { allowed: rules.allowAll, matchedRule: null };
}

export function evaluateDns(rules: L7Rules & { kind: 'dns' }, qname: string): { allowed: boolean; matchedPattern: string | null } {
  const name = toFQDN(qname);
  for (const p of rules.patterns) {
    if (isAllStars(p)) return { allowed: true, matchedPattern: p };
    if (patternRegex(p).test(name)) return { allowed: true, matchedPattern: p };
  }
  return { allowed: rules.allowAll, matchedPattern: null };
}

export function evaluateTls(rules: L7Rules & { kind: 'tls' }, sni: string | null): { allowed: boolean; matchedName: string | null } {
  if (sni !== null) {
    for (const n of rules.serverNames) if (serverNameMatches(n, sni)) return { allowed: true, matchedName: n };
  }
  return { allowed: rules.allowAll, matchedName: null };
}
