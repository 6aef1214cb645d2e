import { compileFullMatch } from '../../re2/index.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--node-name`: exact name, or a pattern where `*` matches any run of characters but `/`. */
export function nodeNameFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.node_name)) return [];
  const patterns = spec.node_name.map((p) => {
    if (p === '') throw filterError('node-name', 'empty pattern');
    const body = p.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
    // RE2, as every pattern Membrane matches: `a*a*a*…b` never backtracks.
    const r = compileFullMatch(body);
    if (!r.ok) throw filterError('node-name', `${JSON.stringify(p)}: ${r.error}`);
    return r.matcher;
  });
  return [(flow) => patterns.some((re) => re.test(flow.node_name))];
}
