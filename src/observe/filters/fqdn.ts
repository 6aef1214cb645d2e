import { compileFullMatch } from '../../re2/index.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** Hubble's FQDN filter alphabet (`pkg/hubble/filters/fqdn.go`): what a pattern may contain. */
const VALID_PATTERN = /^[-a-zA-Z0-9_.*]+$/;

/**
 * `--fqdn` / `--from-fqdn` / `--to-fqdn` (FlowFilter `source_fqdn` / `destination_fqdn`): a flow
 * matches when one of its `source_names` / `destination_names` (the names its address was learned
 * through, from the DNS cache of the endpoint on the other side) matches one pattern. As Hubble's
 * `parseFQDNFilter`: lower-cased, trimmed, one trailing dot dropped, `.` literal, `*` any run of
 * `[-a-zA-Z0-9_.]`, anchored; other characters are a filter error. A flow without names never
 * matches. RE2, as every pattern Membrane matches against flow data.
 */
export function fqdnFilters(spec: FilterSpec): FilterFunc[] {
  const out: FilterFunc[] = [];
  if (isSet(spec.source_fqdn)) {
    const re = compile('from-fqdn', spec.source_fqdn);
    out.push((flow) => flow.source_names !== undefined && flow.source_names.some((n) => re.test(n)));
  }
  if (isSet(spec.destination_fqdn)) {
    const re = compile('to-fqdn', spec.destination_fqdn);
    out.push((flow) => flow.destination_names !== undefined && flow.destination_names.some((n) => re.test(n)));
  }
  return out;
}

function compile(criterion: string, patterns: readonly string[]): { test(s: string): boolean } {
  const bodies = patterns.map((raw) => {
    let p = raw.toLowerCase().trim();
    if (p.endsWith('.')) p = p.slice(0, -1);
    if (!VALID_PATTERN.test(p)) {
      throw filterError(criterion, `only alphanumeric ASCII characters, the hyphen "-", "." and "*" are allowed: ${JSON.stringify(raw)}`);
    }
    return p.replaceAll('.', '[.]').replaceAll('*', '[-a-zA-Z0-9_.]*');
  });
  const r = compileFullMatch(bodies.map((b) => `(?:${b})`).join('|'));
  if (!r.ok) throw filterError(criterion, r.error);
  return r.matcher;
}
