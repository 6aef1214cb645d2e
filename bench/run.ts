/**
 * The benchmark runner: `npm run bench [-- --quick] [-- --only http,dns] [-- --runs N]` (root:
 * network namespaces, BPF maps, Debian packages). Runs each benchmark module in order — http, dns,
 * datapath, policy-engine, those that exist — prints its tables, writes `bench/results.json` and
 * regenerates `bench/RESULTS.md` (see lib/report.ts). With `--only`, only the selected benchmarks'
 * rows and sections are replaced.
 *
 *   --quick     1 short run per variant: the whole run stays under 3 minutes (indicative figures)
 *   --only A,B  these benchmarks only; A:block one block of A (http:obs: the observability overhead)
 *   --runs N    repetitions per variant (default 3; 1 with --quick)
 *
 * Cleanups registered by a benchmark (namespaces, links, pins, processes by PID) run when it ends,
 * when it throws, and when the runner gets SIGINT/SIGTERM (then it exits 130/143); a second signal
 * during cleanup is ignored, a third exits at once.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensurePackages } from './lib/packages.js';
import { fmtDate, machine, mergeRows, section, textTable, versions, writeResultsMd, writeRows } from './lib/report.js';
import type { BenchContext, Benchmark, BenchResult } from './lib/types.js';

/** Repository root (dist-bench/bench/ → ../../). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ORDER = ['http', 'dns', 'datapath', 'policy-engine'] as const;
const RESULTS_JSON = join(ROOT, 'bench/results.json');
const RESULTS_MD = join(ROOT, 'bench/RESULTS.md');
/** Installed for every run: what the benchmarks' nodes and labs need (scripts/setup.sh has the rest). */
const BASE_PACKAGES = ['iproute2', 'procps', 'util-linux'];

interface Options {
  quick: boolean;
  only: string[] | null;
  runs: number | null;
  /** `--only name:block`: the blocks asked for per benchmark. */
  blocks: Map<string, string[]>;
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { quick: false, only: null, runs: null, blocks: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') o.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Error('--only needs a list of benchmarks, e.g. --only http,dns');
      // `name:block` runs one block of a benchmark (e.g. http:obs); the benchmark says which it has.
      const items = v.split(',').map((s) => s.trim()).filter(Boolean);
      o.only = [...new Set(items.map((s) => s.split(':')[0]!))];
      for (const s of items) if (s.includes(':')) o.blocks.set(s.split(':')[0]!, [...(o.blocks.get(s.split(':')[0]!) ?? []), s.slice(s.indexOf(':') + 1)]);
    } else if (a === '--runs') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--runs needs a positive integer, not ${argv[i]}`);
      o.runs = n;
    } else throw new Error(`unknown option ${a}; usage: run.js [--quick] [--only ${ORDER.join(',')}] [--runs N]`);
  }
  for (const n of o.only ?? []) {
    if (!(ORDER as readonly string[]).includes(n)) throw new Error(`unknown benchmark ${n}; there are: ${ORDER.join(', ')}`);
  }
  return o;
}

/** The benchmark modules present (source in bench/ and compiled beside this file), in ORDER. */
async function loadBenchmarks(only: readonly string[] | null): Promise<Benchmark[]> {
  const out: Benchmark[] = [];
  for (const name of ORDER) {
    if (only && !only.includes(name)) continue;
    const compiled = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
    if (!existsSync(join(ROOT, `bench/${name}.ts`)) || !existsSync(compiled)) {
      if (only) throw new Error(`benchmark ${name} is not in this checkout (bench/${name}.ts)`);
      continue;
    }
    const mod = (await import(pathToFileURL(compiled).href)) as { benchmark?: Benchmark };
    if (!mod.benchmark) throw new Error(`bench/${name}.ts exports no \`benchmark\``);
    out.push(mod.benchmark);
  }
  return out;
}

type Cleanup = () => void | Promise<void>;
/**
 * Registered cleanups, each wrapped so that every caller — the benchmark's own end and the signal
 * handler — awaits the one run of it: a second call never returns while the first is in progress.
 */
const cleanups: (() => Promise<void>)[] = [];

function once(fn: Cleanup): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => (done ??= Promise.resolve().then(fn));
}

/** Runs the registered cleanups, newest first; each one's failure is reported, not fatal. */
async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`bench: cleanup failed: ${(err as Error).message}\n`);
    }
  }
}

let signals = 0;
/** The cleanup a signal started; once set, the process exits when it ends, and only then. */
let signalled: Promise<never> | null = null;
function onSignal(sig: NodeJS.Signals): void {
  signals++;
  if (signals === 1) {
    process.stderr.write(`\nbench: ${sig}: cleaning up (namespaces, pins, processes)…\n`);
    signalled = runCleanups().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  } else if (signals >= 3) {
    process.stderr.write('bench: exiting without finishing cleanup\n');
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the benchmarks need root (network namespaces, BPF maps, Debian packages): sudo npm run bench');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A throw outside the awaited chain (a timer, an event handler) still cleans up before exiting.
  const fatal = (err: unknown): void => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
    void runCleanups().finally(() => exit(1));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  const benchmarks = await loadBenchmarks(opts.only);
  if (!benchmarks.length) throw new Error('no benchmark modules found');
  const t0 = Date.now();
  const log = (m: string): void => void process.stderr.write(`bench [${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${m}\n`);
  ensurePackages([...BASE_PACKAGES, ...benchmarks.flatMap((b) => b.packages ?? [])], log);

  const runs = opts.runs ?? (opts.quick ? 1 : 3);
  const started = new Date();
  const fresh = new Map<string, string>();
  const results: { name: string; result: BenchResult }[] = [];
  const failed: string[] = [];
  for (const b of benchmarks) {
    if (signalled) break; // interrupted: no further benchmark starts
    const mine: (() => Promise<void>)[] = [];
    const ctx: BenchContext = {
      quick: opts.quick,
      runs,
      ...(opts.blocks.has(b.name) ? { blocks: opts.blocks.get(b.name)! } : {}),
      log: (m) => log(`${b.name}: ${m}`),
      onCleanup: (fn) => {
        const run = once(fn);
        mine.push(run);
        cleanups.push(run);
      },
    };
    const began = Date.now();
    log(`${b.name}: ${b.title}${opts.quick ? ' (quick)' : ''}, ${runs} run(s) per variant`);
    try {
      const result = await b.run(ctx);
      results.push({ name: b.name, result });
      fresh.set(b.name, section(b.name, b.title, result, new Date(), opts.quick, runs));
      process.stdout.write('\n' + result.tables.map(textTable).join('\n\n') + '\n');
      for (const t of result.targets) process.stdout.write(`${t.met ? 'met   ' : 'MISSED'}  ${t.target}: ${t.figure}\n`);
      process.stdout.write('\n');
    } catch (err) {
      failed.push(b.name);
      log(signalled ? `${b.name}: interrupted` : `${b.name} failed: ${(err as Error).stack ?? String(err)}`);
    } finally {
      // This benchmark's cleanups, newest first, before the next one starts.
      log(`${b.name}: cleaning up`);
      for (const fn of mine.reverse()) {
        const i = cleanups.lastIndexOf(fn);
        if (i >= 0) cleanups.splice(i, 1);
        try {
          await fn();
        } catch (err) {
          log(`${b.name}: cleanup failed: ${(err as Error).message}`);
        }
      }
    }
    log(`${b.name}: ${((Date.now() - began) / 1000).toFixed(0)} s`);
  }

  if (signalled) await signalled; // interrupted: nothing is written, the cleanup exits
  if (results.length) {
    const replaced = new Set(results.map((r) => r.name));
    writeRows(RESULTS_JSON, mergeRows(RESULTS_JSON, replaced, results.flatMap((r) => r.result.rows)));
    const header = [
      '# Benchmark results',
      '',
      'Generated by `npm run bench` (bench/run.ts); do not edit by hand. Each benchmark section says when it was measured;',
      'a run with `--only` replaces only its own sections and rows (`bench/results.json`).',
      '',
      `Last run: ${fmtDate(started)}${opts.quick ? ' (`--quick`)' : ''}, ${runs} run(s) per variant, benchmarks: ${[...replaced].join(', ')}.`,
      '',
      '**Machine**',
      '',
      ...machine().map((m) => `- ${m}`),
      '',
      '**Versions**',
      '',
      ...versions().map((v) => `- ${v}`),
    ];
    writeResultsMd(RESULTS_MD, ORDER, fresh, header);
    log(`wrote ${RESULTS_JSON} and ${RESULTS_MD}`);
  }
  if (failed.length) throw new Error(`benchmark(s) failed: ${failed.join(', ')}`);
}

/** Exits with `code`, unless a signal's cleanup is under way: that one exits when it is done. */
async function exit(code: number): Promise<never> {
  if (signalled) await signalled;
  process.exit(code);
}

main().then(
  () => exit(0),
  async (err: unknown) => {
    await runCleanups();
    process.stderr.write(`bench: ${(err as Error).message ?? String(err)}\n`);
    await exit(1);
  },
);
