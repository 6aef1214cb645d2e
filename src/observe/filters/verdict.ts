import { VERDICTS, type Verdict } from '../../codes/index.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--verdict FORWARDED|DROPPED|ERROR|AUDIT|REDIRECTED|TRACED|TRANSLATED`: exact match. */
export function verdictFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.verdict)) return [];
  for (const v of spec.verdict) {
    if (!(VERDICTS as readonly string[]).includes(v)) throw filterError('verdict', `unknown verdict ${JSON.stringify(v)}`);
  }
  const wanted = new Set<Verdict>(spec.verdict);
  return [(flow) => wanted.has(flow.verdict)];
}
