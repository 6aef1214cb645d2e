/**
 * The contract between `bench/run.ts` (the runner: `npm run bench [-- --quick] [-- --only NAME]`)
 * and each benchmark module (`bench/http.ts`, `bench/dns.ts`, `bench/datapath.ts`,
 * `bench/policy-engine.ts`). A module exports `benchmark: Benchmark`; the runner calls it, prints
 * its tables, appends its rows to `bench/results.json` and regenerates `bench/RESULTS.md`.
 */

/** One measured figure over `runs` repetitions: the shape of a `bench/results.json` element. */
export interface BenchRow {
  /** The benchmark's name (`http`, `dns`, `datapath`, `policy-engine`). */
  readonly benchmark: string;
  /** What was measured: a path or peer and its setting, e.g. `membrane-l7 2000rps`, `haproxy saturated`. */
  readonly variant: string;
  /** e.g. `req_per_s`, `p99_ms`, `cpu_us_per_req`, `qps`, `resolve_ms`, `rss_mb`. */
  readonly metric: string;
  readonly unit: string;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** The individual runs, in the order measured. */
  readonly runs: readonly number[];
}

/** A printed table: the first column names the variant; ratios to each peer are ordinary columns. */
export interface BenchTable {
  readonly title: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** A target from the issue, with the figure that decides it and, when missed, what limits it. */
export interface BenchTarget {
  readonly target: string;
  readonly figure: string;
  readonly met: boolean;
  /** When not met: what limits it (from a profile or an observation), with numbers. */
  readonly limit?: string;
}

export interface BenchResult {
  readonly rows: readonly BenchRow[];
  readonly tables: readonly BenchTable[];
  readonly targets: readonly BenchTarget[];
  /** Free text for RESULTS.md: setup, versions of peers, caveats. */
  readonly notes?: readonly string[];
}

export interface BenchContext {
  /** `--quick`: fewer/shorter runs so the whole `npm run bench -- --quick` stays under 3 minutes. */
  readonly quick: boolean;
  /** Repetitions per variant (≥ 3 unless quick), interleaved across peers. */
  readonly runs: number;
  /** `--only name:block`: only these blocks of the benchmark (it throws on one it does not have); absent: all. */
  readonly blocks?: readonly string[];
  /** Progress lines to stderr. */
  log(message: string): void;
  /**
   * Registers a cleanup to run when the benchmark ends, fails or the runner is interrupted
   * (SIGINT/SIGTERM): namespaces, links, rules, pins, processes started (killed by PID).
   */
  onCleanup(fn: () => void | Promise<void>): void;
}

export interface Benchmark {
  readonly name: string;
  readonly title: string;
  /** Debian packages it runs (wrk, haproxy, …): the runner installs those missing before it starts. */
  readonly packages?: readonly string[];
  run(ctx: BenchContext): Promise<BenchResult>;
}

/** Median, min, max of a list of runs, as a row. */
export function row(benchmark: string, variant: string, metric: string, unit: string, runs: readonly number[]): BenchRow {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { benchmark, variant, metric, unit, median, min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN, runs: [...runs] };
}
