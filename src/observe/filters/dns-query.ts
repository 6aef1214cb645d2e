import { isSet } from './errors.js';
import { compileRegexes } from './http-common.js';
import type { FilterFunc, FilterSpec } from './types.js';

/**
 * FlowFilter `dns_query`: regexes searched (unanchored, as Go's MatchString) in a DNS flow's query
 * name as Hubble shows it (lower case, trailing dot). Hubble's `filterByDNSQueries`
 * (cilium/cilium `pkg/hubble/filters/dns.go`); a flow without a DNS record never matches.
 */
export function dnsQueryFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.dns_query)) return [];
  const res = compileRegexes('dns-query', spec.dns_query);
  return [
    (flow) => {
      const query = flow.l7?.dns?.query;
      return query !== undefined && res.some((re) => re.test(query));
    },
  ];
}
