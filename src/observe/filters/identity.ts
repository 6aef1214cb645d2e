import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

function check(criterion: string, ids: readonly number[]): Set<number> {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw filterError(criterion, `invalid identity ${id}`);
  }
  return new Set(ids);
}

/** `--from-identity` / `--to-identity`: numeric security identity (the flag builder resolves names). */
export function identityFilters(spec: FilterSpec): FilterFunc[] {
  const fs: FilterFunc[] = [];
  if (isSet(spec.source_identity)) {
    const ids = check('from-identity', spec.source_identity);
    fs.push((flow) => ids.has(flow.source.identity));
  }
  if (isSet(spec.destination_identity)) {
    const ids = check('to-identity', spec.destination_identity);
    fs.push((flow) => ids.has(flow.destination.identity));
  }
  return fs;
}
