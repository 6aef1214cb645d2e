import { isSet } from './errors.js';
import { requireL7Compatible } from './http-common.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--http-method GET`: case-insensitive. */
export function httpMethodFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.http_method)) return [];
  requireL7Compatible(spec, 'http-method');
  const wanted = new Set(spec.http_method.map((m) => m.toUpperCase()));
  return [
    (flow) => {
      const method = flow.l7?.http?.method;
      return method !== undefined && method !== '' && wanted.has(method.toUpperCase());
    },
  ];
}
