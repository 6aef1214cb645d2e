/**
 * Counters and histograms for the per-flow path. prom-client builds, validates and hashes a label
 * object and looks it up in a string-keyed object on every increment (7 µs per proxied request for
 * the flow metrics, measured); here a flow finds its series through nested maps of label values
 * and adds to plain numbers. The registry reads them at scrape time through the same `get()`
 * contract prom-client's own metrics have, so the exposition is prom-client's.
 *
 * Bounded: pod traffic chooses some label values (methods, DNS query types), so past
 * MAX_SERIES_PER_METRIC distinct label sets, new ones are counted under one `_OTHER` series.
 *
 * Counted elsewhere, merged here (issue 11): a proxy worker counts its flows into its own
 * FastCounters/FastHistograms and `takeDelta()`s what changed since its last batch; the agent
 * `merge()`s that into its own. A taken series restarts at zero, so the worker's metrics hold only
 * what is not yet sent; series appear in the agent in the order the worker first counted them.
 */
import type { Metric, Registry } from 'prom-client';

/** What prom-client's Registry reads from a metric at scrape time (`get()`), as its own metrics give it. */
interface Rendered {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
}
interface Renderable {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Rendered;
}

export const MAX_SERIES_PER_METRIC = 2000;
export const OTHER = '_OTHER';
/** prom-client's (and Prometheus client_golang's) default histogram buckets, seconds. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A counter's series changed since the last take: its label values (`_OTHER` ones included), the amount added. */
export type CounterDelta = readonly (readonly [values: readonly string[], n: number])[];
/**
 * A histogram's series changed since the last take: label values, per-bucket counts added (one per
 * bucket, not cumulative, +Inf excluded: it is `count`), sum added (seconds) and count added.
 */
export type HistogramDelta = readonly (readonly [values: readonly string[], counts: readonly number[], sum: number, count: number])[];

/** One series: its label values and its numbers. */
interface Entry<T> {
  readonly values: readonly string[];
  leaf: T;
}

/** Label values → leaf, through nested maps; bounded (see above). */
class SeriesTable<T> {
  readonly leaves: Entry<T>[] = [];
  readonly #root = new Map<string, unknown>();
  /** Makes a leaf; it calls `mark` on its first count since the last `takeDirty()`. */
  readonly #make: (mark: () => void) => T;
  #other: T | null = null;
  /** Series counted since the last `takeDirty()`, in the order first counted, each once (≤ leaves). */
  #dirty: Entry<T>[] = [];

  constructor(make: (mark: () => void) => T) {
    this.#make = make;
  }

  get(values: readonly string[]): T {
    let map = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = map.get(values[i] as string) as Map<string, unknown> | undefined;
      if (next === undefined) {
        if (this.leaves.length >= MAX_SERIES_PER_METRIC) return this.#overflow(values.length);
        next = new Map();
        map.set(values[i] as string, next);
      }
      map = next;
    }
    let leaf = map.get(values[last] as string) as T | undefined;
    if (leaf === undefined) {
      if (this.leaves.length >= MAX_SERIES_PER_METRIC) return this.#overflow(values.length);
      leaf = this.#add([...values]);
      map.set(values[last] as string, leaf);
    }
    return leaf;
  }

  /** The series counted since the last call, in the order first counted; their leaves are then restarted by the caller. */
  takeDirty(): Entry<T>[] {
    const d = this.#dirty;
    this.#dirty = [];
    return d;
  }

  #add(values: readonly string[]): T {
    const entry: Entry<T> = { values, leaf: undefined as T };
    entry.leaf = this.#make(() => this.#dirty.push(entry));
    this.leaves.push(entry);
    return entry.leaf;
  }

  #overflow(n: number): T {
    this.#other ??= this.#add(new Array<string>(n).fill(OTHER));
    return this.#other;
  }
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) labels[names[i] as string] = values[i] as string;
  return labels;
}

export interface CounterSeries {
  inc(): void;
  /** Adds `n` (a worker's delta); `n` ≤ 0 or not finite adds nothing. */
  add(n: number): void;
}

interface CounterLeaf extends CounterSeries {
  value: number;
}

export class FastCounter {
  readonly #name: string;
  readonly #help: string;
  readonly #labelNames: readonly string[];
  readonly #table = new SeriesTable<CounterLeaf>((mark) => {
    const leaf: CounterLeaf = {
      value: 0,
      inc(): void {
        if (leaf.value++ === 0) mark();
      },
      add(n: number): void {
        if (!(n > 0) || n === Infinity) return;
        if (leaf.value === 0) mark();
        leaf.value += n;
      },
    };
    return leaf;
  });

  /** `registry` null: never scraped, only read through `takeDelta()` (a proxy worker's; no prom-client loaded). */
  constructor(registry: Registry | null, name: string, help: string, labelNames: readonly string[]) {
    this.#name = name;
    this.#help = help;
    this.#labelNames = labelNames;
    registry?.registerMetric(this.#metric() as unknown as Metric);
  }

  /** The series of these label values, in `labelNames` order. */
  labels(...values: string[]): CounterSeries {
    return this.#table.get(values);
  }

  /** What was counted since the last take (null: nothing); those series restart at zero. */
  takeDelta(): CounterDelta | null {
    const dirty = this.#table.takeDirty();
    if (dirty.length === 0) return null;
    const out: (readonly [readonly string[], number])[] = [];
    for (const { values, leaf } of dirty) {
      out.push([values, leaf.value]);
      leaf.value = 0;
    }
    return out;
  }

  /** Adds another counter's `takeDelta()` (same label names), series by series, within this one's series bound. */
  merge(delta: CounterDelta): void {
    for (const [values, n] of delta) {
      if (values.length === this.#labelNames.length) this.#table.get(values).add(n);
    }
  }

  #metric(): Renderable {
    return {
      name: this.#name,
      help: this.#help,
      type: 'counter',
      aggregator: 'sum',
      get: () => ({
        name: this.#name,
        help: this.#help,
        type: 'counter',
        aggregator: 'sum',
        values: this.#table.leaves.map(({ values, leaf }) => ({ labels: labelsOf(this.#labelNames, values), value: leaf.value })),
      }),
    };
  }
}

export interface HistogramSeries {
  observe(value: number): void;
  /**
   * Adds a worker's delta: `counts` per bucket (not cumulative, one per bucket), `sum` and `count`.
   * Ignored when `counts` does not have one number per bucket or `count` ≤ 0.
   */
  merge(counts: readonly number[], sum: number, count: number): void;
}

interface HistogramLeaf extends HistogramSeries {
  counts: Float64Array;
  sum: number;
  count: number;
}

export class FastHistogram {
  readonly #name: string;
  readonly #help: string;
  readonly #labelNames: readonly string[];
  readonly #buckets: readonly number[];
  readonly #table: SeriesTable<HistogramLeaf>;

  /** `registry` null: as FastCounter's. */
  constructor(registry: Registry | null, name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = DEFAULT_BUCKETS) {
    this.#name = name;
    this.#help = help;
    this.#labelNames = labelNames;
    this.#buckets = buckets;
    this.#table = new SeriesTable((mark) => {
      const leaf: HistogramLeaf = {
        counts: new Float64Array(buckets.length),
        sum: 0,
        count: 0,
        observe(v: number): void {
          if (!Number.isFinite(v)) return;
          if (leaf.count++ === 0) mark();
          leaf.sum += v;
          for (let i = 0; i < buckets.length; i++) {
            if (v <= (buckets[i] as number)) {
              leaf.counts[i]!++;
              return;
            }
          }
        },
        merge(counts: readonly number[], sum: number, count: number): void {
          if (!(count > 0) || counts.length !== buckets.length || !Number.isFinite(sum)) return;
          if (leaf.count === 0) mark();
          leaf.count += count;
          leaf.sum += sum;
          for (let i = 0; i < counts.length; i++) leaf.counts[i]! += counts[i] as number;
        },
      };
      return leaf;
    });
    registry?.registerMetric(this.#metric() as unknown as Metric);
  }

  labels(...values: string[]): HistogramSeries {
    return this.#table.get(values);
  }

  /** What was observed since the last take (null: nothing); those series restart at zero. */
  takeDelta(): HistogramDelta | null {
    const dirty = this.#table.takeDirty();
    if (dirty.length === 0) return null;
    const out: (readonly [readonly string[], readonly number[], number, number])[] = [];
    for (const { values, leaf } of dirty) {
      out.push([values, Array.from(leaf.counts), leaf.sum, leaf.count]);
      leaf.counts.fill(0);
      leaf.sum = 0;
      leaf.count = 0;
    }
    return out;
  }

  /** Adds another histogram's `takeDelta()` (same label names and buckets), within this one's series bound. */
  merge(delta: HistogramDelta): void {
    for (const [values, counts, sum, count] of delta) {
      if (values.length === this.#labelNames.length) this.#table.get(values).merge(counts, sum, count);
    }
  }

  #metric(): Renderable {
    const name = this.#name;
    return {
      name,
      help: this.#help,
      type: 'histogram',
      aggregator: 'sum',
      get: () => {
        const values: Rendered['values'] = [];
        for (const { values: lv, leaf } of this.#table.leaves) {
          const labels = labelsOf(this.#labelNames, lv);
          let cumulative = 0;
          for (let i = 0; i < this.#buckets.length; i++) {
            cumulative += leaf.counts[i] as number;
            values.push({ labels: { ...labels, le: this.#buckets[i] as number }, value: cumulative, metricName: `${name}_bucket`});
          }
          values.push({ labels: { ...labels, le: '+Inf' }, value: leaf.count, metricName: `${name}_bucket`});
          values.push({ labels, value: leaf.sum, metricName: `${name}_sum`});
          values.push({ labels, value: leaf.count, metricName: `${name}_count`});
        }
        return { name, help: this.#help, type: 'histogram', aggregator: 'sum', values };
      },
    };
  }
}
