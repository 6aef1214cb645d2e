import { isSet } from './errors.js';
import { compileRegexes, requireL7Compatible, urlPath } from './http-common.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--http-path REGEX`: searched (unanchored, as Go's MatchString) in the URL's path. */
export function httpPathFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.http_path)) return [];
  requireL7Compatible(spec, 'http-path');
  const res = compileRegexes('http-path', spec.http_path);
  return [
    (flow) => {
      const url = flow.l7?.http?.url;
      if (!url) return false;
      const path = urlPath(url);
      return path !== null && res.some((re) => re.test(path));
    },
  ];
}
