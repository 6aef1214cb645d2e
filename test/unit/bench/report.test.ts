/**
 * What `npm run bench` writes (bench/lib/report.ts) and how it reads h2load (bench/lib/h2load.ts):
 * a run of some benchmarks replaces only their rows and RESULTS.md sections; h2load's summary is
 * read into figures, and a run that printed none is an error rather than zeros.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseH2load } from '../../../bench/lib/h2load.js';
import { markdownTable, mergeRows, writeResultsMd, writeRows } from '../../../bench/lib/report.js';
import { row } from '../../../bench/lib/types.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'membrane-report-test-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('bench results.json', () => {
  it('a run with --only replaces that benchmark’s rows and keeps the others', () => {
    const file = join(tmp(), 'results.json');
    writeRows(file, [row('http', 'kernel saturated', 'req_per_s', 'req/s', [1, 2, 3]), row('dns', 'direct', 'qps', 'q/s', [9])]);
    const merged = mergeRows(file, new Set(['http']), [row('http', 'haproxy saturated', 'req_per_s', 'req/s', [5])]);
    expect(merged.map((r) => `${r.benchmark}/${r.variant}`)).toEqual(['dns/direct', 'http/haproxy saturated']);
  });

  it('a figure that could not be measured is written as null, not as invalid JSON', () => {
    const file = join(tmp(), 'results.json');
    writeRows(file, [row('http', 'kernel saturated', 'cpu_us_per_req', 'µs', [NaN])]);
    expect(JSON.parse(readFileSync(file, 'utf8'))[0].median).toBeNull();
  });
});

describe('bench RESULTS.md', () => {
  it('regenerating some sections keeps the others as they were, in benchmark order', () => {
    const file = join(tmp(), 'RESULTS.md');
    writeResultsMd(file, ['http', 'dns'], new Map([['http', 'old http\n'], ['dns', 'dns figures\n']]), ['# header 1']);
    writeResultsMd(file, ['http', 'dns'], new Map([['http', 'new http\n']]), ['# header 2']);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# header 2');
    expect(text).toContain('new http');
    expect(text).not.toContain('old http');
    expect(text.indexOf('new http')).toBeLessThan(text.indexOf('dns figures'));
  });

  it('a table cell with a pipe does not split the markdown column', () => {
    const md = markdownTable({ title: 't', header: ['a', 'b'], rows: [['x|y', '1']] });
    expect(md).toContain('| x\\|y | 1 |');
  });
});

describe('h2load summary', () => {
  it('reads rate, completed and failed requests and non-2xx answers', () => {
    const out = [
      'finished in 3.00s, 12345.67 req/s, 1.20MB/s',
      'requests: 37037 total, 37037 started, 37037 done, 37000 succeeded, 37 failed, 0 errored, 0 timeout',
      'status codes: 37000 2xx, 0 3xx, 37 4xx, 0 5xx',
    ].join('\n');
    expect(parseH2load(out)).toEqual({ rps: 12345.67, done: 37037, succeeded: 37000, failed: 37, non2xx: 37 });
  });

  it('an output without a summary (no connection) is an error', () => {
    expect(() => parseH2load('connect to 10.0.0.1:81 failed: Connection refused\n')).toThrow(/no summary/);
  });
});
