import { isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--trace-id`: the W3C trace id the proxy saw in `traceparent`. */
export function traceIdFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.trace_id)) return [];
  const ids = new Set(spec.trace_id.map((id) => id.toLowerCase()));
  return [(flow) => flow.trace_context !== undefined && ids.has(flow.trace_context.parent.trace_id)];
}
