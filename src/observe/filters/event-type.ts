import { isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/**
 * `--type l7|drop|trace[:point]|policy-verdict|…`: the monitor event type, and the sub-type when
 * the filter asks for it. A type of 0 matches any type.
 */
export function eventTypeFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.event_type)) return [];
  const types = [...spec.event_type];
  return [
    (flow) =>
      types.some(
        (t) =>
          (t.type === 0 || t.type === flow.event_type.type) &&
          (t.match_sub_type !== true || (t.sub_type ?? 0) === (flow.event_type.sub_type ?? 0)),
      ),
  ];
}
