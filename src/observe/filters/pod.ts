import type { Flow, FlowEndpoint } from '../flow.js';
import { filterError, isSet } from './errors.js';
import type { FilterFunc, FilterSpec } from './types.js';

/**
 * `[namespace/]name` → namespace and pod-name prefix. A bare name means namespace `default`;
 * `ns/` selects every pod in `ns` (Hubble `k8s.ParseNamespaceName`).
 */
export function parseNamespacedName(value: string): { namespace: string; prefix: string } {
  const slash = value.indexOf('/');
  if (slash >= 0) return { namespace: value.slice(0, slash), prefix: value.slice(slash + 1).split('/')[0] ?? '' };
  if (value === '') return { namespace: '', prefix: '' };
  return { namespace: 'default', prefix: value };
}

function byNamespacedName(criterion: string, values: readonly string[], endpoint: (f: Flow) => FlowEndpoint): FilterFunc {
  const wanted = values.map((v) => {
    const parsed = parseNamespacedName(v);
    if (parsed.namespace === '' && parsed.prefix === '') {
      throw filterError(criterion, `invalid filter, must be [namespace/][<name>], got ${JSON.stringify(v)}`);
    }
    return parsed;
  });
  return (flow) => {
    const ep = endpoint(flow);
    if (ep.namespace === '' && ep.pod_name === '') return false;
    return wanted.some((w) => w.namespace === ep.namespace && (w.prefix === '' || ep.pod_name.startsWith(w.prefix)));
  };
}

/** `--from-pod` / `--to-pod` (and `--pod`, which the flag builder splits into two groups). */
export function podFilters(spec: FilterSpec): FilterFunc[] {
  const fs: FilterFunc[] = [];
  if (isSet(spec.source_pod)) fs.push(byNamespacedName('from-pod', spec.source_pod, (f) => f.source));
  if (isSet(spec.destination_pod)) fs.push(byNamespacedName('to-pod', spec.destination_pod, (f) => f.destination));
  return fs;
}
