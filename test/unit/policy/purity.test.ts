/**
 * src/policy is pure: no Node APIs, no I/O, and of our modules it may import only src/errors,
 * the leaf code tables of src/codes (themselves pure: checked here too) and src/re2 (RE2 matching).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../src/policy', import.meta.url));
const codesRoot = fileURLToPath(new URL('../../../src/codes', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

describe('src/policy purity', () => {
  for (const f of files(root)) {
    it(relative(root, f), () => {
      const text = readFileSync(f, 'utf8');
      const specifiers = [...text.matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]!);
      for (const s of specifiers) {
        const target = s.startsWith('.') ? resolve(dirname(f), s) : s;
        const inside = s.startsWith('.') && !relative(root, target).startsWith('..');
        const errors = target === resolve(root, '../errors/index.js');
        const codes = target === resolve(root, '../codes/index.js');
        // The linear-time regex engine: pure functions of their inputs (its addon is loaded once).
        const re2 = target === resolve(root, '../re2/index.js');
        const ok = s === 'yaml' || inside || errors || codes || re2;
        expect([s, ok]).toEqual([s, true]);
      }
      expect(text).not.toMatch(/\bprocess\.|\bBuffer\b|\brequire\(|from 'node:/);
    });
  }
});

describe('src/codes purity (policy may import it)', () => {
  for (const f of files(codesRoot)) {
    it(relative(codesRoot, f), () => {
      const text = readFileSync(f, 'utf8');
      const outside = [...text.matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]!).filter((s) => !s.startsWith('./'));
      expect(outside).toEqual([]);
      expect(text).not.toMatch(/\bprocess\.|\bBuffer\b|\brequire\(|from 'node:/);
    });
  }
});
