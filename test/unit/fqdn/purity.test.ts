/**
 * src/fqdn is pure: no I/O, no timers besides the max-delay race of an answer, and of our modules
 * it imports only errors, codes, re2 and policy (through their index.js). `node:net` is allowed
 * for `isIP` alone (a pure parser); `pino` only as a type.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../src/fqdn', import.meta.url));
const files = readdirSync(root).filter((f) => f.endsWith('.ts')).map((f) => join(root, f));
const ALLOWED = new Set(['../errors/index.js', '../codes/index.js', '../re2/index.js', '../policy/index.js', 'lru-cache', 'node:net']);

describe('src/fqdn purity', () => {
  for (const f of files) {
    it(relative(root, f), () => {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/^import (type )?[^']*?from\s+'([^']+)'/gm)) {
        const [, typeOnly, s = ''] = m;
        const ok = s.startsWith('./') || ALLOWED.has(s) || (typeOnly !== undefined && s === 'pino');
        expect([s, ok]).toEqual([s, true]);
      }
      if (text.includes("'node:net'")) expect(text).toMatch(/^import \{ isIP \} from 'node:net';$/m);
      expect(text).not.toMatch(/\bprocess\.|\bBuffer\b|\brequire\(|\bsetInterval\(|\bDate\.now\(\)/);
    });
  }
});
