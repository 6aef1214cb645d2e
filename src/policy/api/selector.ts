/**
 * Label selectors (`matchLabels` + `matchExpressions`) as Cilium reads them: a key without a
 * `source:` prefix matches labels of any source; namespaced policies scope selectors to their
 * namespace unless the selector names it (see `scopePeerSelector`).
 */
import type { Label } from './labels.js';
import { LABEL_KEY } from './labels.js';
import { Checker, has, join } from './check.js';
import type { JsonObject } from './check.js';
import type { Requirement, Selector, SelectorOperator } from './types.js';

const VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** Splits a selector key into source and key: `k8s:app` → (k8s, app); `app` → (any, app). */
export function splitSelectorKey(k: string): { source: string; key: string } {
  const colon = k.indexOf(':');
  if (colon > 0) return { source: k.slice(0, colon), key: k.slice(colon + 1) };
  return { source: 'any', key: colon === 0 ? k.slice(1) : k };
}

export const EMPTY_SELECTOR: Selector = { requirements: [] };

export function selectorFromLabels(labels: Readonly<Record<string, string>>): Selector {
  return {
    requirements: Object.entries(labels).map(([k, v]) => ({ ...splitSelectorKey(k), operator: 'In' as const, values: [v] })),
  };
}

/** Parses an EndpointSelector-shaped object; problems go to `c`. */
export function parseSelector(c: Checker, v: unknown, path: string, extraFields: readonly string[] = []): Selector | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ['matchLabels', 'matchExpressions', ...extraFields]);
  const reqs: Requirement[] = [];
  let ok = true;
  if (has(o, 'matchLabels')) {
    const ml = c.object(o.matchLabels, join(path, 'matchLabels'));
    if (!ml) ok = false;
    else {
      for (const [k, val] of Object.entries(ml)) {
        const p = join(join(path, 'matchLabels'), k);
        if (k === '') {
          c.report(p, 'label key must not be empty');
          ok = false;
          continue;
        }
        const s = c.string(val, p);
        if (s === undefined) {
          ok = false;
          continue;
        }
        if (s.length > 63 || !VALUE_RE.test(s)) {
          c.report(p, `invalid label value ${JSON.stringify(s)}: at most 63 characters of [A-Za-z0-9-_.], starting and ending with an alphanumeric`);
          ok = false;
          continue;
        }
        reqs.push({ ...splitSelectorKey(k), operator: 'In', values: [s], fromMatchLabels: true });
      }
    }
  }
  if (has(o, 'matchExpressions')) {
    const mp = join(path, 'matchExpressions');
    const me = c.array(o.matchExpressions, mp);
    if (!me) ok = false;
    else {
      me.forEach((e, i) => {
        const ep = join(mp, i);
        const eo = c.object(e, ep);
        if (!eo) {
          ok = false;
          return;
        }
        c.fields(eo, ep, ['key', 'operator', 'values']);
        const key = has(eo, 'key') ? c.string(eo.key, join(ep, 'key')) : (c.report(join(ep, 'key'), 'required field is missing'), undefined);
        const op = has(eo, 'operator') ? c.string(eo.operator, join(ep, 'operator')) : (c.report(join(ep, 'operator'), 'required field is missing'), undefined);
        let values: string[] = [];
        if (has(eo, 'values')) {
          const arr = c.array(eo.values, join(ep, 'values'));
          if (!arr) ok = false;
          else
            values = arr.flatMap((x, j) => {
              const s = c.string(x, join(join(ep, 'values'), j));
              return s === undefined ? [] : [s];
            });
        }
        if (key === undefined || op === undefined) {
          ok = false;
          return;
        }
        if (key === '') {
          c.report(join(ep, 'key'), 'label key must not be empty');
          ok = false;
          return;
        }
        if (!OPERATORS.includes(op as SelectorOperator)) {
          c.report(join(ep, 'operator'), `unsupported operator ${JSON.stringify(op)}: must be one of In, NotIn, Exists, DoesNotExist`);
          ok = false;
          return;
        }
        const operator = op as SelectorOperator;
        if ((operator === 'In' || operator === 'NotIn') && values.length === 0) {
          c.report(join(ep, 'values'), `must be non-empty for operator ${operator}`);
          ok = false;
          return;
        }
        if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) {
          c.report(join(ep, 'values'), `must be empty for operator ${operator}`);
          ok = false;
          return;
        }
        reqs.push({ ...splitSelectorKey(key), operator, values });
      });
    }
  }
  return ok ? { requirements: reqs } : undefined;
}

function labelsFor(labels: readonly Label[], r: Requirement): Label[] {
  return labels.filter((l) => l.key === r.key && (r.source === 'any' || l.source === r.source));
}

export function requirementMatches(r: Requirement, labels: readonly Label[]): boolean {
  const ls = labelsFor(labels, r);
  switch (r.operator) {
    case 'In':
      return ls.some((l) => r.values.includes(l.value));
    case 'NotIn':
      return !ls.some((l) => r.values.includes(l.value));
    case 'Exists':
      return ls.length > 0;
    case 'DoesNotExist':
      return ls.length === 0;
  }
}

/** True if every requirement holds for `labels`. The empty selector selects everything. */
export function selectorMatches(s: Selector, labels: readonly Label[]): boolean {
  return s.requirements.every((r) => requirementMatches(r, labels));
}

export function selectorHasKey(s: Selector, source: string, key: string): boolean {
  return s.requirements.some((r) => r.key === key && (r.source === source || r.source === 'any'));
}

function isPodNamespaceKey(r: Requirement): boolean {
  return r.key === LABEL_KEY.podNamespace && (r.source === 'k8s' || r.source === 'any');
}

/**
 * Scopes a peer selector (fromEndpoints/toEndpoints) of a policy to its namespace, as Cilium does:
 * - selectors naming a `reserved:` label are left alone;
 * - selectors naming `io.kubernetes.pod.namespace` are left alone;
 * - clusterwide policies (namespace undefined) require the pod-namespace label to exist, so that
 *   they select Kubernetes pods only (unless the rule's subject selects `reserved:init`);
 * - namespaced policies add `io.kubernetes.pod.namespace=<ns>`, unless the selector uses namespace
 *   labels (`io.cilium.k8s.namespace.labels.*`).
 */
export function scopePeerSelector(s: Selector, namespace: string | undefined, subjectMatchesInit: boolean): Selector {
  if (s.requirements.some((r) => r.source === 'reserved')) return s;
  if (s.requirements.some(isPodNamespaceKey)) return s;
  if (namespace === undefined) {
    if (subjectMatchesInit) return s;
    return { requirements: [...s.requirements, { source: 'k8s', key: LABEL_KEY.podNamespace, operator: 'Exists', values: [] }] };
  }
  if (s.requirements.some((r) => (r.source === 'k8s' || r.source === 'any') && r.key.startsWith(LABEL_KEY.namespaceLabelPrefix))) return s;
  return { requirements: [...s.requirements, { source: 'k8s', key: LABEL_KEY.podNamespace, operator: 'In', values: [namespace] }] };
}

/**
 * Scopes a namespaced policy's endpointSelector: `k8s:io.kubernetes.pod.namespace=<ns>` is set,
 * replacing a matchLabels entry with that exact key; other requirements stay (AND).
 */
export function scopeSubjectSelector(s: Selector, namespace: string | undefined): Selector {
  if (namespace === undefined) return s;
  return {
    requirements: [
      // Only a matchLabels entry is replaced; a namespace requirement in matchExpressions stays and
      // is ANDed, so naming another namespace there selects nothing (as Cilium's
      // getEndpointSelector, which only overwrites MatchLabels).
      ...s.requirements.filter((r) => !(r.fromMatchLabels && r.source === 'k8s' && r.key === LABEL_KEY.podNamespace)),
      { source: 'k8s', key: LABEL_KEY.podNamespace, operator: 'In', values: [namespace] },
    ],
  };
}

export function formatSelector(s: Selector): string {
  if (s.requirements.length === 0) return '{}';
  return s.requirements
    .map((r) => {
      const k = `${r.source}:${r.key}`;
      switch (r.operator) {
        case 'In':
          return r.values.length === 1 ? `${k}=${r.values[0]}` : `${k} in (${r.values.join(',')})`;
        case 'NotIn':
          return `${k} notin (${r.values.join(',')})`;
        case 'Exists':
          return k;
        case 'DoesNotExist':
          return `!${k}`;
      }
    })
    .join(',');
}

export type { JsonObject };
