/**
 * `.ci/run`'s closing line tells the truth (issue 7, item 5): real vitest runs of deliberately
 * broken test files — written to a temporary directory outside the repository, run by their own
 * vitest config — then scripts/ci-summary.mjs on the JSON report they produced.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const VITEST = join(REPO, 'node_modules', 'vitest', 'vitest.mjs');
const SUMMARY = join(REPO, 'scripts', 'ci-summary.mjs');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The environment of a fresh process: without the variables that tell vitest it runs inside vitest. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'TEST' && k !== 'NODE_ENV'));
}

/** Runs vitest on `files` (name → source; globals on, no imports needed), then the summariser on its report. */
function runFixtures(files: Record<string, string>): { vitestStatus: number | null; summaryStatus: number | null; lines: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'membrane-ci-summary-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'vitest.config.mjs'), "export default { test: { globals: true, include: ['*.test.js'] } };\n");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const report = join(dir, 'report.json');
  const v = spawnSync(process.execPath, [VITEST, 'run', '--root', dir, '--config', join(dir, 'vitest.config.mjs'), '--reporter=json', `--outputFile.json=${report}`], {
    cwd: dir,
    encoding: 'utf8',
    env: cleanEnv(),
    timeout: 60_000,
  });
  const s = spawnSync(process.execPath, [SUMMARY, report], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  return { vitestStatus: v.status, summaryStatus: s.status, lines: s.stdout.split('\n').filter(Boolean) };
}

describe('ci summary line (issue-7 tests that tell the truth)', () => {
  it('a test file that throws on import is a failure, not "1 passed, 0 failed"', () => {
    const r = runFixtures({
      'fine.test.js': "it('fine', () => {});\n",
      'broken.test.js': "throw new Error('boom on import');\nit('never', () => {});\n",
    });
    expect(r.vitestStatus).not.toBe(0);
    expect(r.lines.at(-1)).toBe('1 passed, 1 failed');
    expect(r.lines).toContain('FAILED SUITE broken.test.js: boom on import');
    expect(r.summaryStatus).toBe(1);
  });

  it('tests under a failing beforeAll count as not run, and the hook as a failure', () => {
    const r = runFixtures({
      'fine.test.js': "it('fine', () => {});\n",
      'hook.test.js': "describe('d', () => {\n  beforeAll(() => { throw new Error('hook boom'); });\n  it('x', () => {});\n  it('y', () => {});\n});\n",
    });
    expect(r.vitestStatus).not.toBe(0);
    expect(r.lines.at(-1)).toBe('1 passed, 1 failed, 2 not run');
    expect(r.summaryStatus).toBe(1);
  });

  it('a failing afterAll is a failure even though every test passed', () => {
    const r = runFixtures({ 'after.test.js': "afterAll(() => { throw new Error('after boom'); });\nit('p', () => {});\n" });
    expect(r.vitestStatus).not.toBe(0);
    expect(r.lines.at(-1)).toBe('1 passed, 1 failed');
    expect(r.lines).toContain('FAILED SUITE after.test.js: after boom');
  });

  it('failed, skipped and todo tests are counted as vitest counts them', () => {
    const r = runFixtures({
      'mixed.test.js': "it('bad', () => { expect(1).toBe(2); });\nit('good', () => {});\nit.skip('later', () => {});\nit.todo('someday');\n",
    });
    expect(r.vitestStatus).not.toBe(0);
    expect(r.lines).toEqual(['1 passed, 1 failed, 2 skipped']);
    expect(r.summaryStatus).toBe(1);
  });

  it('a green run says 0 failed and exits 0', () => {
    const r = runFixtures({ 'a.test.js': "it('a', () => {});\nit('b', () => {});\n" });
    expect(r.vitestStatus).toBe(0);
    expect(r.lines).toEqual(['2 passed, 0 failed']);
    expect(r.summaryStatus).toBe(0);
  });

  it('no report at all (vitest never ran) is a failure', () => {
    const s = spawnSync(process.execPath, [SUMMARY, join(tmpdir(), 'membrane-no-such-report.json')], { encoding: 'utf8' });
    expect(s.status).toBe(1);
    expect(s.stdout.trim().split('\n').at(-1)).toBe('0 passed, 1 failed');
  });
});
