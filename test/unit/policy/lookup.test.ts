import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lookupPolicy } from '../../../src/policy/index.js';
import type { DropReason, MapEntry, MapVerdict } from '../../../src/policy/index.js';

interface Case {
  name: string;
  enforced: boolean;
  entries: { identity: number; protocol: number; port: number; portPrefixLen: number; verdict: MapVerdict; dropReason?: DropReason }[];
  probes: { identity: number; protocol: number; port: number; expect: string; entry?: number; reason?: number }[];
}

const table = JSON.parse(readFileSync(fileURLToPath(new URL('../../fixtures/policy/lookup-cases.json', import.meta.url)), 'utf8')) as { cases: Case[] };

describe('lookupPolicy: the shared datapath table', () => {
  for (const c of table.cases) {
    it(c.name, () => {
      const entries: MapEntry[] = c.entries.map((e) => ({ ...e, ...(e.verdict === 'deny' ? { dropReason: e.dropReason ?? (181 as const) } : {}), derivedFrom: [] }));
      for (const p of c.probes) {
        const r = lookupPolicy({ enforced: c.enforced, entries }, p.identity, p.protocol, p.port);
        expect({ probe: p, verdict: r.verdict }).toEqual({ probe: p, verdict: p.expect });
        expect(r.entry).toBe(p.entry === undefined ? null : entries[p.entry]);
        const reason = r.verdict === 'deny' ? (p.reason ?? 181) : r.verdict === 'default-deny' ? 133 : null;
        expect(r.dropReason).toBe(reason);
      }
    });
  }
});
