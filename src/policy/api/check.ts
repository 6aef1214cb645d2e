/**
 * Small helpers for walking untyped YAML values and collecting problems with exact field paths
 * (`spec.ingress[0].toPorts[0].ports[0].port`). Nothing here throws on bad input.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface Issue {
  readonly path: string;
  readonly message: string;
}

export class Checker {
  readonly issues: Issue[] = [];
  /** Accepted, but enforced differently from Cilium (fail-closed); never rejects the document. */
  readonly warnings: Issue[] = [];

  report(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  /** An object (not array, not null), or a problem. */
  object(v: unknown, path: string): JsonObject | undefined {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as JsonObject;
    this.report(path, `must be an object, got ${describe(v)}`);
    return undefined;
  }

  /** An array, or a problem. `null` counts as absent and yields []. */
  array(v: unknown, path: string): Json[] | undefined {
    if (Array.isArray(v)) return v as Json[];
    this.report(path, `must be a list, got ${describe(v)}`);
    return undefined;
  }

  string(v: unknown, path: string): string | undefined {
    if (typeof v === 'string') return v;
    this.report(path, `must be a string, got ${describe(v)}`);
    return undefined;
  }

  boolean(v: unknown, path: string): boolean | undefined {
    if (typeof v === 'boolean') return v;
    this.report(path, `must be a boolean, got ${describe(v)}`);
    return undefined;
  }

  integer(v: unknown, path: string): number | undefined {
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    this.report(path, `must be an integer, got ${describe(v)}`);
    return undefined;
  }

  /** Reports every key of `o` that is not in `allowed`, as the CRD's structural schema would. */
  fields(o: JsonObject, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.report(join(path, k), `unknown field "${k}"`);
    }
  }

  maxItems(a: readonly unknown[], path: string, max: number): void {
    if (a.length > max) this.report(path, `must have at most ${max} items, got ${a.length}`);
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** Present: the key exists and is not null (Kubernetes treats an explicit null as absent). */
export function has(o: JsonObject, k: string): boolean {
  return Object.hasOwn(o, k) && o[k] !== null && o[k] !== undefined;
}
