/**
 * The error registry table (issue 7, item 4): one table of codes, and it tells the truth —
 * every code has a message, is raised somewhere in src/, is documented in src/errors/README.md
 * with that message and the HTTP status the agent API really sends; and every code src/ names
 * is in the registry (a typo'd code would otherwise reach a user as an unknown string).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, errorFromWire, errorToWire, membraneError, isMembraneError, type ErrorCode } from '../../../src/errors/index.js';
import { apiStatus } from '../../../src/agent/api-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');
const REGISTRY = join(SRC, 'errors', 'index.ts');
const CODE = /MEMBRANE_ERR_[A-Z0-9_]+/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(name) ? [path] : [];
  });
}

/** code → files of src/ (other than the registry) that name it. */
function usesInSrc(): Map<string, string[]> {
  const uses = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    if (file === REGISTRY) continue;
    for (const code of new Set(readFileSync(file, 'utf8').match(CODE) ?? [])) {
      uses.set(code, [...(uses.get(code) ?? []), relative(ROOT, file)]);
    }
  }
  return uses;
}

/** The README table: code → { message, http }. */
function documented(): Map<string, { message: string; http: string }> {
  const rows = new Map<string, { message: string; http: string }>();
  for (const line of readFileSync(join(SRC, 'errors', 'README.md'), 'utf8').split('\n')) {
    const m = /^\| `(MEMBRANE_ERR_[A-Z0-9_]+)` \| ([^|]+) \| ([^|]+) \|/.exec(line);
    if (m) rows.set(m[1] ?? '', { message: (m[2] ?? '').trim(), http: (m[3] ?? '').trim() });
  }
  return rows;
}

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('error registry (issue-7 one table of codes)', () => {
  it('every code has a non-empty message and follows MEMBRANE_ERR_<AREA>_<WHAT>', () => {
    for (const code of codes) {
      expect(code).toMatch(/^MEMBRANE_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/);
      expect(ERROR_CODES[code].trim().length, code).toBeGreaterThan(0);
    }
  });

  it('every code is raised somewhere in src/', () => {
    const uses = usesInSrc();
    expect(codes.filter((c) => !uses.has(c))).toEqual([]);
  });

  it('every code src/ names is in the registry', () => {
    const unknown = [...usesInSrc()].filter(([c]) => !(c in ERROR_CODES)).map(([c, files]) => `${c} (${files.join(', ')})`);
    expect(unknown).toEqual([]);
  });

  it('every code is documented in src/errors/README.md with its registry message, and nothing else is', () => {
    const docs = documented();
    for (const code of codes) {
      expect(docs.get(code)?.message, `${code} in src/errors/README.md`).toBe(ERROR_CODES[code]);
    }
    expect([...docs.keys()].filter((c) => !(c in ERROR_CODES))).toEqual([]);
  });

  it("the README's HTTP column is the status the agent API sends for that code", () => {
    for (const [code, row] of documented()) {
      if (row.http === '—' || !(code in ERROR_CODES)) continue;
      expect(`${code} ${apiStatus(membraneError(code as ErrorCode))}`).toBe(`${code} ${row.http}`);
    }
  });
});

describe('errors keep their code across the API (issue-7 CLI shows the agent code)', () => {
  it('a coded error survives the wire with its code, message and details', () => {
    const sent = membraneError('MEMBRANE_ERR_POLICY_NOT_FOUND', 'rule9', { details: { name: 'rule9' } });
    const wire = JSON.parse(JSON.stringify(errorToWire(sent))) as unknown;
    const got = errorFromWire(wire, { status: 404 });
    expect(isMembraneError(got, 'MEMBRANE_ERR_POLICY_NOT_FOUND')).toBe(true);
    expect(got.message).toBe('policy not found: rule9');
    expect(got.details).toEqual({ name: 'rule9', status: 404 });
  });

  it('a code this build does not know still reaches the user, inside MEMBRANE_ERR_AGENT_API', () => {
    const got = errorFromWire({ code: 'MEMBRANE_ERR_FROM_THE_FUTURE', message: 'new thing: x' }, { status: 409 });
    expect(got.code).toBe('MEMBRANE_ERR_AGENT_API');
    expect(got.message).toContain('[MEMBRANE_ERR_FROM_THE_FUTURE]');
    expect(got.details).toMatchObject({ code: 'MEMBRANE_ERR_FROM_THE_FUTURE', status: 409 });
  });

  it('a body that is not an error object becomes MEMBRANE_ERR_AGENT_API, not a crash', () => {
    for (const body of [null, 'text', 42, [], { code: 7 }]) expect(errorFromWire(body).code).toBe('MEMBRANE_ERR_AGENT_API');
  });
});
