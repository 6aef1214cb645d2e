import { isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** Reply flag: flows whose direction is unknown (`is_reply` absent) never match, as in Hubble. */
export function replyFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.reply)) return [];
  const wanted = [...spec.reply];
  return [(flow) => flow.is_reply !== undefined && wanted.includes(flow.is_reply)];
}
