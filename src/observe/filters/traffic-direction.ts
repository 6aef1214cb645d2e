import { TRAFFIC_DIRECTIONS, type TrafficDirection } from '../flow.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--traffic-direction ingress|egress`. */
export function trafficDirectionFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.traffic_direction)) return [];
  for (const d of spec.traffic_direction) {
    if (!(TRAFFIC_DIRECTIONS as readonly string[]).includes(d)) {
      throw filterError('traffic-direction', `${JSON.stringify(d)}: expected INGRESS or EGRESS`);
    }
  }
  const wanted = new Set<TrafficDirection>(spec.traffic_direction);
  return [(flow) => wanted.has(flow.traffic_direction)];
}
