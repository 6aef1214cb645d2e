import { BlockList, isIP } from 'node:net';
import type { Flow } from '../flow.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

function byIPs(criterion: string, values: readonly string[], address: (f: Flow) => string | undefined): FilterFunc {
  const exact = new Set<string>();
  const cidrs = new BlockList();
  let anyCidr = false;
  for (const v of values) {
    const slash = v.indexOf('/');
    if (slash < 0) {
      if (isIP(v) === 0) throw filterError(criterion, `invalid IP address in filter: ${JSON.stringify(v)}`);
      exact.add(v);
      continue;
    }
    const net = v.slice(0, slash);
    const bits = v.slice(slash + 1);
    const family = isIP(net);
    const prefix = /^[0-9]{1,3}$/.test(bits) ? Number(bits) : -1;
    if (family === 0 || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
      throw filterError(criterion, `invalid CIDR in filter: ${JSON.stringify(v)}`);
    }
    cidrs.addSubnet(net, prefix, family === 4 ? 'ipv4' : 'ipv6');
    anyCidr = true;
  }
  return (flow) => {
    const ip = address(flow);
    if (!ip) return false;
    if (exact.has(ip)) return true;
    if (!anyCidr) return false;
    const family = isIP(ip);
    return family !== 0 && cidrs.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** `--from-ip` / `--to-ip` (and `--ip`): exact address or CIDR. */
export function ipFilters(spec: FilterSpec): FilterFunc[] {
  const fs: FilterFunc[] = [];
  if (isSet(spec.source_ip)) fs.push(byIPs('from-ip', spec.source_ip, (f) => f.IP?.source));
  if (isSet(spec.destination_ip)) fs.push(byIPs('to-ip', spec.destination_ip, (f) => f.IP?.destination));
  return fs;
}
