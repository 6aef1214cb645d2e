import { EVENT_TYPE } from '../../codes/index.js';
import { compileSearch, type Re2Matcher } from '../../re2/index.js';
import { filterError } from './errors.js';
import type { FilterSpec } from './types.js';

/** HTTP criteria only make sense on L7 events: refuse a group whose type filter excludes them (as Hubble). */
export function requireL7Compatible(spec: FilterSpec, criterion: string): void {
  const types = spec.event_type;
  if (!types || types.length === 0) return;
  if (types.some((t) => t.type === EVENT_TYPE.ACCESS_LOG || t.type === 0)) return;
  throw filterError(criterion, "filtering by HTTP fields requires the event type filter to match 'l7' events");
}

/** Hubble compiles these with Go's regexp: RE2 here too, so a filter runs in time linear in the flow's field. */
export function compileRegexes(criterion: string, sources: readonly string[]): Re2Matcher[] {
  return sources.map((s) => {
    const r = compileSearch(s);
    if (!r.ok) throw filterError(criterion, `${JSON.stringify(s)}: ${r.error}`);
    return r.matcher;
  });
}

/** The path of an absolute URL as Hubble parses it; null when the URL does not parse. */
export function urlPath(url: string): string | null {
  try {
    return new URL(url).pathname;
  } catch {
    return null;
  }
}
