import type { Flow, FlowEndpoint } from '../flow.js';
import { filterError, isSet } from './errors.js';
import { compileLabelSelector, parseLabel, type LabelSelector, type ParsedLabel } from './label-selector.js';
import type { FilterFunc, FilterSpec } from './types.js';

const parsedCache = new WeakMap<readonly string[], ParsedLabel[]>();

function labelsOf(ep: FlowEndpoint): ParsedLabel[] {
  let parsed = parsedCache.get(ep.labels);
  if (!parsed) {
    parsed = ep.labels.map(parseLabel);
    parsedCache.set(ep.labels, parsed);
  }
  return parsed;
}

function bySelectors(criterion: string, selectors: readonly string[], endpoint: (f: Flow) => FlowEndpoint): FilterFunc {
  const compiled: LabelSelector[] = selectors.map((s) => {
    try {
      return compileLabelSelector(s);
    } catch (err) {
      throw filterError(criterion, `${JSON.stringify(s)}: ${(err as Error).message}`);
    }
  });
  return (flow) => {
    const labels = labelsOf(endpoint(flow));
    return compiled.some((sel) => sel(labels));
  };
}

/** `--from-label` / `--to-label`: any selector selecting the endpoint's labels. */
export function labelFilters(spec: FilterSpec): FilterFunc[] {
  const fs: FilterFunc[] = [];
  if (isSet(spec.source_label)) fs.push(bySelectors('from-label', spec.source_label, (f) => f.source));
  if (isSet(spec.destination_label)) fs.push(bySelectors('to-label', spec.destination_label, (f) => f.destination));
  return fs;
}
