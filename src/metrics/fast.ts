/**
 * Counters and histograms for the per-flow path. prom-client builds, validates and hashes a label
 * object and looks it up in a string-keyed object on every increment (7 µs per proxied request for
 * the flow metrics, measured); here a flow finds its series through nested maps of label values
 * and adds to plain numbers. The registry reads them at scrape time through the same `get()`
 * contract prom-client's own metrics have, so the exposition is prom-client's.
 *
 * Bounded: pod traffic chooses some label values (methods, DNS query types), so past
 * MAX_SERIES_PER_METRIC distinct label sets, new ones are counted under one `_OTHER` series.
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

/** Label values → leaf, through nested maps; bounded (see above). */
class SeriesTable<T> {
  readonly leaves: { values: readonly string[]; leaf: T }[] = [];
  readonly #root = new Map<string, unknown>();
  readonly #make: () => T;
  #other: T | null = null;

  constructor(make: () => T) {
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
      leaf = this.#make();
      map.set(values[last] as string, leaf);
      this.leaves.push({ values: [...values], leaf });
    }
    return leaf;
  }

  #overflow(n: number): T {
    if (this.#other === null) {
      this.#other = this.#make();
      this.leaves.push({ values: new Array<string>(n).fill(OTHER), leaf: this.#other });
    }
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
}

export class FastCounter {
  readonly #name: string;
  readonly #help: string;
  readonly #labelNames: readonly string[];
  readonly #table = new SeriesTable<{ value: number; inc(): void }>(() => {
    const leaf = {
      value: 0,
      inc(): void {
        leaf.value++;
      },
    };
    return leaf;
  });

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
    this.#name = name;
    this.#help = help;
    this.#labelNames = labelNames;
    registry.registerMetric(this.#metric() as unknown as Metric);
  }

  /** The series of these label values, in `labelNames` order. */
  labels(...values: string[]): CounterSeries {
    return this.#table.get(values);
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
}

export class FastHistogram {
  readonly #name: string;
  readonly #help: string;
  readonly #labelNames: readonly string[];
  readonly #buckets: readonly number[];
  readonly #table: SeriesTable<{ counts: Float64Array; sum: number; count: number; observe(v: number): void }>;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = DEFAULT_BUCKETS) {
    this.#name = name;
    this.#help = help;
    this.#labelNames = labelNames;
    this.#buckets = buckets;
    this.#table = new SeriesTable(() => {
      const leaf = {
        counts: new Float64Array(buckets.length),
        sum: 0,
        count: 0,
        observe(v: number): void {
          if (!Number.isFinite(v)) return;
          leaf.sum += v;
          leaf.count++;
          for (let i = 0; i < buckets.length; i++) {
            if (v <= (buckets[i] as number)) {
              leaf.counts[i]!++;
              return;
            }
          }
        },
      };
      return leaf;
    });
    registry.registerMetric(this.#metric() as unknown as Metric);
  }

  labels(...values: string[]): HistogramSeries {
    return this.#table.get(values);
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
