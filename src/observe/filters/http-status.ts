import { filterError, isSet } from './errors.js';
import { requireL7Compatible } from './http-common.js';
import type { FilterFunc, FilterSpec } from './types.js';

const FULL = /^[1-5][0-9]{2}$/;
const PREFIX = /^[1-5][0-9]?\+$/;

/** `--http-status 403` or a prefix `4+` / `40+`; only responses (code set) match. */
export function httpStatusFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.http_status_code)) return [];
  requireL7Compatible(spec, 'http-status');
  const full: string[] = [];
  const prefixes: string[] = [];
  for (const s of spec.http_status_code) {
    if (FULL.test(s)) full.push(s);
    else if (PREFIX.test(s)) prefixes.push(s.slice(0, -1));
    else throw filterError('http-status', `invalid status code prefix: ${JSON.stringify(s)}`);
  }
  return [
    (flow) => {
      const code = flow.l7?.http?.code;
      if (code === undefined || code === 0) return false;
      const text = String(code).padStart(3, '0');
      return full.includes(text) || prefixes.some((p) => text.startsWith(p));
    },
  ];
}
