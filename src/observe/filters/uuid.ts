import { isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--uuid`: exact flow id. */
export function uuidFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.uuid)) return [];
  const ids = new Set(spec.uuid);
  return [(flow) => ids.has(flow.uuid)];
}
