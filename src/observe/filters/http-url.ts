import { isSet } from './errors.js';
import { compileRegexes, requireL7Compatible } from './http-common.js';
import type { FilterFunc, FilterSpec } from './types.js';

/** `--http-url REGEX`: searched in the whole URL. */
export function httpUrlFilters(spec: FilterSpec): FilterFunc[] {
  if (!isSet(spec.http_url)) return [];
  requireL7Compatible(spec, 'http-url');
  const res = compileRegexes('http-url', spec.http_url);
  return [
    (flow) => {
      const url = flow.l7?.http?.url;
      return url !== undefined && url !== '' && res.some((re) => re.test(url));
    },
  ];
}
