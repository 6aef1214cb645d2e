import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

const L4 = ['tcp', 'udp', 'sctp', 'icmp', 'icmpv4', 'icmpv6'] as const;
const L7 = ['http', 'dns', 'kafka'] as const;

/** `--protocol tcp|udp|sctp|icmp|icmpv4|icmpv6|http|dns|kafka`, case-insensitive. */
export function protocolFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.protocol)) return [];
  const wanted = spec.protocol.map((p) => {
    const proto = p.toLowerCase();
    if (!(L4 as readonly string[]).includes(proto) && !(L7 as readonly string[]).includes(proto)) {
      throw filterError('protocol', `unknown protocol: ${JSON.stringify(p)}`);
    }
    return proto;
  });
  return [
    (flow) => {
      const l4 = flow.l4;
      const l7 = flow.l7;
      for (const p of wanted) {
        switch (p) {
          case 'tcp':
            if (l4 && 'TCP' in l4) return true;
            break;
          case 'udp':
            if (l4 && 'UDP' in l4) return true;
            break;
          case 'sctp':
            if (l4 && 'SCTP' in l4) return true;
            break;
          case 'icmp':
            if (l4 && ('ICMPv4' in l4 || 'ICMPv6' in l4)) return true;
            break;
          case 'icmpv4':
            if (l4 && 'ICMPv4' in l4) return true;
            break;
          case 'icmpv6':
            if (l4 && 'ICMPv6' in l4) return true;
            break;
          case 'http':
            if (l7?.http) return true;
            break;
          case 'dns':
            if (l7?.dns) return true;
            break;
          // kafka: no Kafka records in Membrane yet; accepted so Hubble command lines still parse.
        }
      }
      return false;
    },
  ];
}
