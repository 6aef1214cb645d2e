/**
 * h2load (Debian's nghttp2-client) as the HTTP/2 load: cleartext HTTP/2 with prior knowledge
 * (h2c, no upgrade), fixed clients × concurrent streams, for a duration; POST with the body in
 * `data` (h2load mmaps it: it cannot be empty). Parses h2load's summary lines:
 *
 *   finished in 3.00s, 12345.67 req/s, …
 *   requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
 *   status codes: N 2xx, N 3xx, N 4xx, N 5xx
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface H2Result {
  readonly rps: number;
  readonly done: number;
  readonly succeeded: number;
  /** Requests that failed, errored or timed out, and answers that were not 2xx. */
  readonly failed: number;
  readonly non2xx: number;
}

const running = new Set<ChildProcess>();

/** Kills every h2load this module started that is still running. */
export function stopH2load(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

/** Parses h2load's summary; throws when a line is missing (h2load failed to connect, say). */
export function parseH2load(out: string): H2Result {
  const fin = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!fin || !req || !codes) throw new Error(`h2load printed no summary: ${out.trim().slice(-500)}`);
  return {
    rps: Number(fin[1]),
    done: Number(req[3]),
    succeeded: Number(req[4]),
    failed: Number(req[5]) + Number(req[6]) + Number(req[7]),
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
  };
}

export interface H2Run {
  readonly netns: string;
  readonly url: string;
  readonly clients: number;
  /** Concurrent streams per client. */
  readonly streams: number;
  readonly seconds: number;
  /** File whose content is each request's body (POST). */
  readonly data: string;
}

export function h2load(o: H2Run): Promise<H2Result> {
  const args = ['netns', 'exec', o.netns, 'h2load', '-D', String(o.seconds), '-c', String(o.clients), '-m', String(o.streams), '-t', '1', '-d', o.data, o.url];
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', () => {
      running.delete(child);
      try {
        resolve(parseH2load(out));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}
