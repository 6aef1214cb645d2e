/**
 * Which toFQDNs selectors admit a DNS name. Built from `policyFqdnSelectors(policies)`; matchNames
 * are one map lookup, matchPatterns run on RE2 (linear in the name). Answers per name are
 * memoised (bounded), since the same names recur in every answer.
 *
 * Cilium keeps the same split (`pkg/fqdn/namemanager`: exact names, then regexes).
 */
import { LRUCache } from 'lru-cache';
import { patternRegex, toFQDN, type FqdnSelectorInfo } from '../policy/index.js';
import { MAX_NAME_LENGTH, normalizeName } from './match.js';

/** Distinct names whose answer is memoised. */
const MEMO_SIZE = 16_384;

export class SelectorIndex {
  /** The selectors, deduplicated by label key, sorted by it. */
  readonly selectors: readonly FqdnSelectorInfo[];
  private readonly exact = new Map<string, string[]>();
  private readonly patterns: ReadonlyArray<{ key: string; test(name: string): boolean }>;
  private readonly memo = new LRUCache<string, readonly string[]>({ max: MEMO_SIZE });

  constructor(selectors: readonly FqdnSelectorInfo[] = []) {
    const byKey = new Map<string, FqdnSelectorInfo>();
    for (const s of selectors) if (!byKey.has(s.labelKey)) byKey.set(s.labelKey, s);
    this.selectors = [...byKey.values()].sort((a, b) => (a.labelKey < b.labelKey ? -1 : a.labelKey > b.labelKey ? 1 : 0));
    const patterns: { key: string; test(name: string): boolean }[] = [];
    for (const s of this.selectors) {
      if (s.matchName !== undefined) {
        const n = toFQDN(s.matchName.trim());
        this.exact.set(n, [...(this.exact.get(n) ?? []), s.labelKey]);
      } else if (s.matchPattern !== undefined) {
        const m = patternRegex(s.matchPattern);
        patterns.push({ key: s.labelKey, test: (name) => m.test(name) });
      }
    }
    this.patterns = patterns;
  }

  get size(): number {
    return this.selectors.length;
  }

  /** Label keys of the selectors admitting `name` (any case, dot optional); sorted, distinct. */
  selectorsFor(name: string): readonly string[] {
    const n = normalizeName(name);
    if (n.length > MAX_NAME_LENGTH) return [];
    const hit = this.memo.get(n);
    if (hit) return hit;
    const keys = new Set(this.exact.get(n) ?? []);
    for (const p of this.patterns) if (p.test(n)) keys.add(p.key);
    const out = Object.freeze([...keys].sort());
    this.memo.set(n, out);
    return out;
  }
}
