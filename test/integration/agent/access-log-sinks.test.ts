/**
 * issue-11 access logs: the file also rotates by time (`--access-log-rotate-interval`), and
 * `--access-log stdout` sends the same JSON lines to the agent's standard output. Real files in a
 * temporary directory; stdout is a real pipe to a child process that shares it with a pino logger
 * of its own, as the agent's log does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { AccessLogFile, accessLogger } from '../../../src/agent/access-log.js';
import { CLI, REPO } from '../cli/run-cli.js';

const dirs: string[] = [];
const open: AccessLogFile[] = [];
afterEach(async () => {
  for (const f of open.splice(0)) await f.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'membrane-accesslog-'));
  dirs.push(d);
  return join(d, 'access.log');
}

function seqsOf(path: string): number[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { seq: number }).seq);
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited > ms) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('issue-11 access log rotated by time', () => {
  it('the live file rotates once it has been live for the interval, far below the size limit; an empty file is not rotated', async () => {
    const path = tempPath();
    const file = new AccessLogFile({ path, maxSizeBytes: 1 << 20, maxBackups: 3, flushIntervalMs: 5, rotateIntervalMs: 150 });
    open.push(file);
    const log = accessLogger(file);

    log.info({ type: 'http', seq: 0 }, 'http');
    await until(() => seqsOf(`${path}.1`).length === 1);
    expect([seqsOf(`${path}.1`), seqsOf(path)]).toEqual([[0], []]);

    log.info({ type: 'http', seq: 1 }, 'http');
    log.info({ type: 'http', seq: 2 }, 'http');
    // The rotation is counted once the new live file is open, a moment after the renames show.
    await until(() => seqsOf(`${path}.2`).length === 1 && file.stats().rotations === 2);
    expect([seqsOf(`${path}.2`), seqsOf(`${path}.1`), seqsOf(path)]).toEqual([[0], [1, 2], []]);

    // Nothing written for several intervals: the empty live file stays, no backup is pushed out.
    await sleep(600);
    expect(file.stats().rotations).toBe(2);
    expect(readdirSync(join(path, '..')).sort()).toEqual(['access.log', 'access.log.1', 'access.log.2']);
  });

  it('size and time together: a size rotation restarts the clock, and every line is kept once, in order', async () => {
    const path = tempPath();
    const file = new AccessLogFile({ path, maxSizeBytes: 512, maxBackups: 20, flushIntervalMs: 5, rotateIntervalMs: 200 });
    const log = accessLogger(file);
    for (let seq = 0; seq < 30; seq++) log.info({ type: 'http', seq, path: '/v1/request-landing' }, 'http');
    await until(() => file.stats().rotations >= 5);
    await file.close();
    const files = [...Array.from({ length: 20 }, (_, i) => `${path}.${20 - i}`), path];
    expect(files.flatMap(seqsOf)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(file.stats()).toMatchObject({ dropped: 0, failedRotations: 0 });
  });
});

describe('issue-11 access log to stdout', () => {
  it('`stdout`: every line reaches standard output whole and in order, beside another logger writing to the same pipe', async () => {
    // A child process: the access log on fd 1 and a pino logger of its own on fd 1 (the agent's
    // log), both busy at once; long lines make batches far larger than a pipe's atomic write.
    const script = `
      import { pino } from 'pino';
      import { AccessLogFile, accessLogger } from ${JSON.stringify(join(REPO, 'dist/agent/access-log.js'))};
      const file = new AccessLogFile({ path: 'stdout', maxSizeBytes: 1, maxBackups: 0, rotateIntervalMs: 10 });
      const access = accessLogger(file);
      const agent = pino({ base: null }, pino.destination({ dest: 1, sync: false }));
      for (let seq = 0; seq < 3000; seq++) {
        access.info({ type: 'http', seq, path: '/v1/' + 'x'.repeat(seq % 700) }, 'http');
        if (seq % 10 === 0) agent.info({ component: 'agent', n: seq }, 'agent line');
        if (seq % 500 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await file.close();
      console.error(JSON.stringify(file.stats()));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // A slow reader (a busy log collector): the pipe fills, writes block part-way, and both
    // writers wait on it at once, when only writes of whole lines up to PIPE_BUF stay unmixed.
    const slow = setInterval(() => {
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), 20);
    }, 25);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'close')) as [number];
    clearInterval(slow);
    expect(code, err).toBe(0);

    const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq?: number; component?: string; path?: string });
    expect(lines.filter((l) => l.seq !== undefined).map((l) => l.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(lines.filter((l) => l.component === 'agent')).toHaveLength(300);
    // stdout is never rotated: no size or age applies to it.
    expect(JSON.parse(err.trim().split('\n').at(-1) ?? '{}')).toMatchObject({ rotations: 0, dropped: 0, writeErrors: 0 });
  });

  it('bad --access-log-rotate-interval values are usage errors (exit 2) before the agent starts', () => {
    for (const value of ['-1', 'daily', '']) {
      const r = spawnSync(process.execPath, [CLI, '--api-socket', join(tmpdir(), 'membrane-accesslog-none.sock'), 'agent', '--access-log-rotate-interval', value], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(`${value} → ${r.status}`).toBe(`${value} → 2`);
      expect(r.stderr).toContain(`--access-log-rotate-interval ${value}`);
      expect(r.stderr).toContain('[MEMBRANE_ERR_CLI_USAGE]');
    }
  });
});
