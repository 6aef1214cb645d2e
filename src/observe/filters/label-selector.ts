/**
 * Kubernetes label-selector syntax over Cilium labels (`source:key=value`).
 *
 *   selector    := requirement ( ',' requirement )*          (AND)
 *   requirement := key | '!' key | key ('='|'=='|'!=') value | key ('in'|'notin') '(' values ')'
 *   key         := [source ':'] name
 *
 * A key without a source matches a label from any source; `k8s:app` only a `k8s` label.
 */

export interface ParsedLabel {
  source: string;
  key: string;
  value: string;
}

type Op = 'exists' | 'notexists' | 'eq' | 'ne' | 'in' | 'notin';

interface Requirement {
  source: string | null;
  key: string;
  op: Op;
  values: string[];
}

export type LabelSelector = (labels: readonly ParsedLabel[]) => boolean;

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const SOURCE = /^[A-Za-z0-9][-A-Za-z0-9_.]*$/;

/** `k8s:class=deathstar` → {source k8s, key class, value deathstar}; no colon → source `unspec`. */
export function parseLabel(label: string): ParsedLabel {
  let source = 'unspec';
  let rest = label;
  const colon = label.indexOf(':');
  const eq = label.indexOf('=');
  if (colon > 0 && (eq < 0 || colon < eq)) {
    source = label.slice(0, colon);
    rest = label.slice(colon + 1);
  }
  const e = rest.indexOf('=');
  return e < 0 ? { source, key: rest, value: '' } : { source, key: rest.slice(0, e), value: rest.slice(e + 1) };
}

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new Error('unbalanced parentheses');
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new Error('unbalanced parentheses');
  parts.push(cur);
  return parts;
}

function parseKey(raw: string): { source: string | null; key: string } {
  const k = raw.trim();
  const colon = k.indexOf(':');
  const source = colon > 0 ? k.slice(0, colon) : null;
  const key = colon > 0 ? k.slice(colon + 1) : k;
  if (source !== null && !SOURCE.test(source)) throw new Error(`invalid label source ${JSON.stringify(source)}`);
  if (!NAME.test(key)) throw new Error(`invalid label key ${JSON.stringify(k)}`);
  return { source, key };
}

function parseValue(raw: string): string {
  const v = raw.trim();
  if (!VALUE.test(v)) throw new Error(`invalid label value ${JSON.stringify(v)}`);
  return v;
}

function parseRequirement(raw: string): Requirement {
  const r = raw.trim();
  if (r === '') throw new Error('empty requirement');
  const set = /^(.+?)\s+(in|notin)\s*\((.*)\)$/.exec(r);
  if (set) {
    const { source, key } = parseKey(set[1] as string);
    const values = (set[3] as string).split(',').map(parseValue);
    return { source, key, op: set[2] === 'in' ? 'in' : 'notin', values };
  }
  const cmp = /^([^!=]+?)\s*(==|!=|=)\s*(.*)$/.exec(r);
  if (cmp) {
    const { source, key } = parseKey(cmp[1] as string);
    return { source, key, op: cmp[2] === '!=' ? 'ne' : 'eq', values: [parseValue(cmp[3] as string)] };
  }
  if (r.startsWith('!')) return { ...parseKey(r.slice(1)), op: 'notexists', values: [] };
  return { ...parseKey(r), op: 'exists', values: [] };
}

function valuesOf(labels: readonly ParsedLabel[], req: Requirement): string[] {
  const out: string[] = [];
  for (const l of labels) {
    if (l.key === req.key && (req.source === null || req.source === 'any' || l.source === req.source)) out.push(l.value);
  }
  return out;
}

/** Compiles a selector; throws an Error with a plain message when the syntax is wrong. */
export function compileLabelSelector(selector: string): LabelSelector {
  const reqs = splitTopLevel(selector).map(parseRequirement);
  return (labels) =>
    reqs.every((req) => {
      const vals = valuesOf(labels, req);
      switch (req.op) {
        case 'exists':
          return vals.length > 0;
        case 'notexists':
          return vals.length === 0;
        case 'eq':
        case 'in':
          return vals.some((v) => req.values.includes(v));
        case 'ne':
        case 'notin':
          return vals.every((v) => !req.values.includes(v));
      }
    });
}
