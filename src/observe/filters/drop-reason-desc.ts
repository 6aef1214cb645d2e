import { isDropReasonName } from '../../codes/index.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--drop-reason-desc POLICY_DENIED`: the enum name, exact and case-sensitive, as Hubble. */
export function dropReasonDescFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.drop_reason_desc)) return [];
  for (const name of spec.drop_reason_desc) {
    if (!isDropReasonName(name)) throw filterError('drop-reason-desc', `unknown drop reason ${JSON.stringify(name)}`);
  }
  const wanted = new Set<string>(spec.drop_reason_desc);
  return [(flow) => flow.drop_reason_desc !== undefined && wanted.has(flow.drop_reason_desc)];
}
