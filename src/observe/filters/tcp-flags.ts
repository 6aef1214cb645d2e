import type { TCPFlags } from '../flow.js';
import { isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

const FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'] as const satisfies readonly (keyof TCPFlags)[];

/**
 * `--tcp-flags syn,ack`: a TCP flow whose flags include every flag one filter value sets (Hubble
 * `filters/tcp.go`: a subset match, so `syn` matches SYN and SYN-ACK). Flows without TCP flags never match.
 */
export function tcpFlagsFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.tcp_flags)) return [];
  const wanted = spec.tcp_flags.map((f) => FLAG_NAMES.filter((n) => f[n] === true));
  return [
    (flow) => {
      const l4 = flow.l4;
      const flags = l4 && 'TCP' in l4 ? l4.TCP.flags : undefined;
      if (!flags) return false;
      return wanted.some((names) => names.every((n) => flags[n] === true));
    },
  ];
}
