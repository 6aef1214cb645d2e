import { ipVersionOf } from '../build.js';
import type { Flow } from '../flow.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec, IPVersionName } from './types.js';

const VERSIONS: readonly IPVersionName[] = ['IP_NOT_USED', 'IPv4', 'IPv6'];

function versionOf(flow: Flow): IPVersionName {
  if (!flow.IP) return 'IP_NOT_USED';
  return flow.IP.ipVersion ?? ipVersionOf(flow.IP.source);
}

/** `--ipv4` / `--ipv6` / `--ip-version`: the flow's IP version; `IP_NOT_USED` is a flow without an IP layer. */
export function ipVersionFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.ip_version)) return [];
  for (const v of spec.ip_version) {
    if (!VERSIONS.includes(v)) throw filterError('ip_version', `unknown IP version ${JSON.stringify(v)}, expected one of ${VERSIONS.join(', ')}`);
  }
  const wanted = new Set(spec.ip_version);
  return [(flow) => wanted.has(versionOf(flow))];
}
