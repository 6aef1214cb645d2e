#!/usr/bin/env node
/**
 * The closing line of `.ci/run`, from vitest's JSON report: `N passed, N failed[, N skipped][, N not run]`.
 *
 * Vitest counts only tests, so a file that throws on import shows as no test at all, and the tests
 * under a failing `beforeAll` as skipped: "1 passed, 0 failed" for a broken run. Here a test file
 * that failed with no failing test in it (an import error, a hook that threw, an unhandled error)
 * counts as one failure, its skipped tests count as "not run" rather than skipped, and a run that
 * vitest calls unsuccessful never closes with "0 failed".
 *
 * Usage: node scripts/ci-summary.mjs REPORT.json   (prints one line per failed suite, then the
 * closing line; exits 1 when anything failed). `summarise(report)` is the same, for tests.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @param {{ numPassedTests: number, numFailedTests: number, numPendingTests: number, numTodoTests: number,
 *           success?: boolean,
 *           testResults?: { name: string, status: string, message?: string,
 *                           assertionResults?: { status: string }[] }[] }} report vitest's JSON report
 * @returns {{ passed: number, failed: number, skipped: number, notRun: number,
 *             failedSuites: { file: string, message: string }[], line: string }}
 */
export function summarise(report) {
  const files = report.testResults ?? [];
  const failedSuites = [];
  let notRun = 0;
  for (const f of files) {
    const tests = f.assertionResults ?? [];
    if (f.status !== 'failed' || tests.some((t) => t.status === 'failed')) continue;
    failedSuites.push({ file: f.name, message: (f.message ?? '').split('\n')[0] || 'failed outside any test (a hook, or an error in a describe block)' });
    notRun += tests.filter((t) => t.status === 'skipped' || t.status === 'pending').length;
  }
  const passed = report.numPassedTests ?? 0;
  let failed = (report.numFailedTests ?? 0) + failedSuites.length;
  // Unhandled errors fail the run without failing a file: the line must still say so.
  if (report.success === false && failed === 0) {
    failed = 1;
    failedSuites.push({ file: '(run)', message: 'vitest reported the run as failed (an unhandled error?)' });
  }
  const skipped = Math.max(0, (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0) - notRun);
  const line = `${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '') + (notRun ? `, ${notRun} not run` : '');
  return { passed, failed, skipped, notRun, failedSuites, line };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = process.argv[2];
  let summary;
  try {
    summary = summarise(JSON.parse(readFileSync(path ?? '', 'utf8')));
  } catch (err) {
    process.stdout.write(`no test report (${err instanceof Error ? err.message : String(err)})\n0 passed, 1 failed\n`);
    process.exit(1);
  }
  for (const s of summary.failedSuites) process.stdout.write(`FAILED SUITE ${s.file.startsWith('/') ? relative(process.cwd(), s.file) : s.file}: ${s.message}\n`);
  process.stdout.write(`${summary.line}\n`);
  process.exit(summary.failed > 0 ? 1 : 0);
}
