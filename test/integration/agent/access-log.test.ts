/**
 * The access log is bounded (issue 7, item 6: 215 MB after 436k requests): the file rotates by
 * size into FILE.1 … FILE.N, older files go, and no line is torn or reordered on the way.
 * Real files in a temporary directory, written through the same pino logger the proxy uses.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AccessLogFile, accessLogger } from '../../../src/agent/access-log.js';
import { CLI } from '../cli/run-cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'membrane-accesslog-'));
  dirs.push(d);
  return d;
}

/** Writes `n` access lines numbered from 0, like the proxy's, and closes the file. */
async function writeLines(file: AccessLogFile, n: number): Promise<void> {
  const log = accessLogger(file);
  for (let seq = 0; seq < n; seq++) log.info({ type: 'http', seq, path: `/v1/request-landing/${'x'.repeat(40)}` }, 'http');
  await file.close();
}

/** The sequence numbers in FILE.N … FILE.1, FILE (oldest first), each line parsed as JSON. */
function seqs(path: string, backups: number): number[] {
  const files = [...Array.from({ length: backups }, (_, i) => `${path}.${backups - i}`), path].filter((f) => existsSync(f));
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { seq: number }).seq),
  );
}

describe('access log rotation (issue-7 the access log is bounded)', () => {
  it('rotates past the size into FILE.1 … FILE.N and keeps no more than N old files', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    const file = new AccessLogFile({ path, maxSizeBytes: 4096, maxBackups: 2 });
    await writeLines(file, 500);
    expect(readdirSync(dir).sort()).toEqual(['access.log', 'access.log.1', 'access.log.2']);
    const line = readFileSync(path + '.1', 'utf8').split('\n')[0]?.length ?? 0;
    for (const f of ['access.log', 'access.log.1', 'access.log.2']) expect(statSync(join(dir, f)).size).toBeLessThan(4096 + line + 2);
    expect(file.stats().rotations).toBeGreaterThan(2);
    expect(file.stats().dropped).toBe(0);
  });

  it('the live file and the rotated ones are owner-only (0600), as Cilium\'s lumberjack writer: lines carry paths and headers', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    const file = new AccessLogFile({ path, maxSizeBytes: 4096, maxBackups: 2 });
    await writeLines(file, 200);
    for (const f of ['access.log', 'access.log.1']) expect((statSync(join(dir, f)).mode & 0o777).toString(8)).toBe('600');
  });

  it('what is kept is the newest lines, whole and in order, up to the last one written', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    await writeLines(new AccessLogFile({ path, maxSizeBytes: 4096, maxBackups: 3 }), 500);
    const kept = seqs(path, 3);
    expect(kept.at(-1)).toBe(499);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 500 - kept.length + i));
    expect(kept.length).toBeGreaterThan(50);
  });

  it('a file already over the limit from an earlier run is rotated before new lines', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    writeFileSync(path, `${JSON.stringify({ seq: -1 })}\n`.repeat(200));
    await writeLines(new AccessLogFile({ path, maxSizeBytes: 1024, maxBackups: 1 }), 3);
    expect(seqs(path, 0)).toEqual([0, 1, 2]);
    expect(readFileSync(`${path}.1`, 'utf8').startsWith('{"seq":-1}')).toBe(true);
  });

  it('with no backups the live file starts over and nothing else is left', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    await writeLines(new AccessLogFile({ path, maxSizeBytes: 2048, maxBackups: 0 }), 300);
    expect(readdirSync(dir)).toEqual(['access.log']);
    expect(statSync(path).size).toBeLessThan(2048 + 200);
  });

  it('issue-9 a line is never written on the caller\'s turn; it reaches the file within the flush interval, without close', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    const file = new AccessLogFile({ path, maxSizeBytes: 1 << 20, maxBackups: 1, flushIntervalMs: 20 });
    const log = accessLogger(file);
    for (let seq = 0; seq < 3; seq++) log.info({ type: 'http', seq }, 'http');
    expect(readFileSync(path, 'utf8')).toBe('');
    const deadline = Date.now() + 2000;
    while (seqs(path, 0).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(seqs(path, 0)).toEqual([0, 1, 2]);
    await file.close();
  });

  it('issue-9 past maxBufferBytes waiting, lines are dropped and counted; those kept are whole and in order', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    const file = new AccessLogFile({ path, maxSizeBytes: 1 << 20, maxBackups: 1, maxBufferBytes: 2048 });
    await writeLines(file, 200);
    const kept = seqs(path, 0);
    expect(file.stats().dropped).toBe(200 - kept.length);
    expect(file.stats().dropped).toBeGreaterThan(150);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => i));
  });

  /** `lines` written one by one to a rotated file (4 KiB, 3 backups): its path and the closed file. */
  async function lineByLine(lines: readonly string[]): Promise<[string, AccessLogFile]> {
    const path = join(tempDir(), 'access.log');
    const file = new AccessLogFile({ path, maxSizeBytes: 4096, maxBackups: 3 });
    for (const l of lines) file.write(l);
    await file.close();
    return [path, file];
  }

  it('issue-9 worker batch cost: batches written in one piece rotate between the same lines, every line whole and in order', async () => {
    // The same 500 lines, once line by line and once as a worker's batches of 37: the same files.
    const lines = Array.from({ length: 500 }, (_, seq) => `${JSON.stringify({ type: 'http', seq, path: `/v1/${'x'.repeat(40)}` })}\n`);
    const [byLine, one] = await lineByLine(lines);
    const byBatch = join(tempDir(), 'access.log');
    const batched = new AccessLogFile({ path: byBatch, maxSizeBytes: 4096, maxBackups: 3 });
    for (let i = 0; i < lines.length; i += 37) {
      const batch = lines.slice(i, i + 37);
      batched.writeLines(batch.join(''), batch.length);
    }
    await batched.close();
    for (const f of ['', '.1', '.2', '.3']) expect(readFileSync(byBatch + f, 'utf8')).toBe(readFileSync(byLine + f, 'utf8'));
    expect(seqs(byBatch, 3).at(-1)).toBe(499);
    expect([batched.stats().rotations, batched.stats().dropped]).toEqual([one.stats().rotations, 0]);

    // As a worker sends them: UTF-8 bytes (non-ASCII in a path included), mixed with lines the agent writes itself.
    const wide = lines.map((l, seq) => (seq % 5 === 0 ? l.replace('/v1/', '/v1/é€') : l));
    const [byLineWide] = await lineByLine(wide);
    const byBytes = join(tempDir(), 'access.log');
    const bytes = new AccessLogFile({ path: byBytes, maxSizeBytes: 4096, maxBackups: 3 });
    for (let i = 0; i < wide.length; i += 37) {
      const batch = wide.slice(i, i + 37);
      bytes.write(batch[0]!);
      bytes.writeLines(new TextEncoder().encode(batch.slice(1).join('')), batch.length - 1);
    }
    await bytes.close();
    for (const f of ['', '.1', '.2', '.3']) expect(readFileSync(byBytes + f, 'utf8')).toBe(readFileSync(byLineWide + f, 'utf8'));
    expect(seqs(byBytes, 3).at(-1)).toBe(499);
  });

  it('issue-9 worker batch cost: a batch past maxBufferBytes is dropped whole and its lines counted', async () => {
    const path = join(tempDir(), 'access.log');
    const file = new AccessLogFile({ path, maxSizeBytes: 1 << 20, maxBackups: 1, maxBufferBytes: 1024 });
    file.writeLines('{"seq":0}\n{"seq":1}\n', 2);
    file.writeLines(`${'{"seq":9}\n'.repeat(200)}`, 200);
    await file.close();
    expect(seqs(path, 0)).toEqual([0, 1]);
    expect(file.stats().dropped).toBe(200);
  });

  it('bad rotation and sampling flags are usage errors (exit 2) before the agent starts', () => {
    const bad = [
      ['--access-log-max-size-mb', '0'],
      ['--access-log-max-size-mb', 'lots'],
      ['--access-log-max-backups', '-1'],
      ['--access-log-max-backups', '1.5'],
      ['--access-log-sample-rate', '0'],
      ['--access-log-sample-rate', '1.5'],
      ['--access-log-sample-rate', 'half'],
    ];
    for (const args of bad) {
      const r = spawnSync(process.execPath, [CLI, '--api-socket', join(tmpdir(), 'membrane-accesslog-none.sock'), 'agent', ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(`${args.join(' ')} → ${r.status}`).toBe(`${args.join(' ')} → 2`);
      expect(r.stderr).toContain(`${args[0]} ${args[1]}`);
      expect(r.stderr).toContain('[MEMBRANE_ERR_CLI_USAGE]');
    }
  });
});
