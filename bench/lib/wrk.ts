/**
 * wrk (Debian's, LuaJIT) as the HTTP load: at saturation (fixed connections, no pacing) or at a
 * fixed rate. wrk has no rate option: the fixed-rate script paces with wrk's `delay()` hook
 * against a per-thread schedule read from CLOCK_MONOTONIC through LuaJIT's ffi (each request
 * claims the next slot `1/rate` after the previous one; a connection waits for its slot), so the
 * achieved rate stays at the target while the path keeps up — the result carries the achieved rate
 * to verify it. Both scripts end with a `done()` that prints one JSON line of exact figures
 * (latency percentiles from wrk's own histogram, µs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  /** Completed requests per second. */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx/3xx answers. */
  readonly errors: number;
  readonly non2xx: number;
}

export interface WrkRequest {
  readonly method: string;
  readonly path: string;
  readonly body?: string;
}

const DONE = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"errors":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
`;

function requestLua(req: WrkRequest): string {
  return `wrk.method = ${JSON.stringify(req.method)}\nwrk.path = ${JSON.stringify(req.path)}\nwrk.body = ${JSON.stringify(req.body ?? '')}\n`;
}

const PACED = `
local ffi = require("ffi")
ffi.cdef[[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct bench_timespec *tp);
]]
local ts = ffi.new("struct bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1
local next_at = nil
function init(args)
  -- args[1]: this thread's rate, requests/s
  interval = 1000 / tonumber(args[1])
end
function delay()
  local now = now_ms()
  if next_at == nil or next_at < now - 50 then next_at = now end -- behind by > 50 ms: no burst to catch up
  next_at = next_at + interval
  local d = next_at - now
  if d <= 0 then return 0 end
  return math.floor(d + 0.5)
end
`;

/** Writes the two scripts for `req` into `dir`; returns their paths. */
export function wrkScripts(dir: string, req: WrkRequest): { saturate: string; paced: string } {
  const saturate = join(dir, 'wrk-saturate.lua');
  const paced = join(dir, 'wrk-paced.lua');
  writeFileSync(saturate, requestLua(req) + DONE);
  writeFileSync(paced, requestLua(req) + PACED + DONE);
  return { saturate, paced };
}

export interface WrkRun {
  /** Network namespace to run wrk in. */
  readonly netns: string;
  readonly url: string;
  readonly script: string;
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
  /** Fixed rate for the paced script (split evenly across threads). */
  readonly rate?: number;
}

/** wrk processes running now, so an interrupted benchmark can stop them (by PID). */
const running = new Set<ChildProcess>();

/** Kills every wrk this module started that is still running. */
export function stopWrk(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

/** Runs wrk once; rejects if it fails or prints no result. */
export function wrk(o: WrkRun): Promise<WrkResult> {
  const args = ['netns', 'exec', o.netns, 'wrk', '-t', String(o.threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '--timeout', '5s', '-s', o.script, o.url];
  if (o.rate !== undefined) args.push('--', String(o.rate / o.threads));
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      running.delete(child);
      const line = out.split('\n').find((l) => l.startsWith('WRK_RESULT '));
      if (code !== 0 || !line) {
        reject(new Error(`wrk ${o.url} failed (${code}): ${err.trim() || out.trim()}`));
        return;
      }
      const r = JSON.parse(line.slice('WRK_RESULT '.length)) as Record<string, number>;
      const seconds = r.duration_us! / 1e6;
      resolve({
        requests: r.requests!,
        seconds,
        rps: r.requests! / seconds,
        p50Ms: r.p50_us! / 1000,
        p99Ms: r.p99_us! / 1000,
        p999Ms: r.p999_us! / 1000,
        maxMs: r.max_us! / 1000,
        errors: r.errors!,
        non2xx: r.non2xx!,
      });
    });
  });
}
