import { flowPorts } from '../flow.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

function parsePorts(criterion: string, values: readonly string[]): Set<number> {
  const ports = new Set<number>();
  for (const v of values) {
    const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : -1;
    if (n < 0 || n > 65535) throw filterError(criterion, `invalid port ${JSON.stringify(v)}`);
    ports.add(n);
  }
  return ports;
}

/** `--from-port` / `--to-port` (and `--port`): TCP, UDP or SCTP port. */
export function portFilters(spec: FilterSpec): FilterFunc[] {
  const fs: FilterFunc[] = [];
  if (isSet(spec.source_port)) {
    const ports = parsePorts('from-port', spec.source_port);
    fs.push((flow) => {
      const p = flowPorts(flow);
      return p !== null && ports.has(p.source_port);
    });
  }
  if (isSet(spec.destination_port)) {
    const ports = parsePorts('to-port', spec.destination_port);
    fs.push((flow) => {
      const p = flowPorts(flow);
      return p !== null && ports.has(p.destination_port);
    });
  }
  return fs;
}
