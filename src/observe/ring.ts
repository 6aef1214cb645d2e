/**
 * A bounded ring of the most recent flows (Hubble's ring buffer): producers push, `observe` reads
 * the last N and, with `--follow`, subscribes to new ones. Oldest flows are overwritten.
 */

import type { Flow } from './flow.js';

export type FlowPredicate = (flow: Flow) => boolean;
export type FlowListener = (flow: Flow) => void;

export interface FlowRingOptions {
  /** How many flows to keep; default 4096 (Hubble's default buffer size is 4095). */
  capacity?: number;
  /** Called when a subscriber throws; the subscriber stays subscribed. */
  onListenerError?: (err: unknown) => void;
}

export const DEFAULT_RING_CAPACITY = 4096;

export class FlowRing {
  readonly capacity: number;
  #buf: Array<Flow | undefined>;
  #next = 0; // slot the next push writes
  #size = 0;
  #seen = 0;
  #listeners = new Set<{ listener: FlowListener; filter: FlowPredicate | undefined }>();
  #onListenerError: ((err: unknown) => void) | undefined;

  constructor(opts: FlowRingOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_RING_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`FlowRing capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#buf = new Array<Flow | undefined>(capacity);
    this.#onListenerError = opts.onListenerError;
  }

  /** Flows currently held. */
  get size(): number {
    return this.#size;
  }

  /** Flows ever pushed, including those since overwritten. */
  get seen(): number {
    return this.#seen;
  }

  push(flow: Flow): void {
    this.#buf[this.#next] = flow;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
    this.#seen++;
    for (const sub of [...this.#listeners]) {
      if (!this.#listeners.has(sub)) continue; // unsubscribed by an earlier listener
      try {
        if (sub.filter === undefined || sub.filter(flow)) sub.listener(flow);
      } catch (err) {
        this.#onListenerError?.(err);
      }
    }
  }

  /** The last `n` flows that pass `filter`, oldest first. `n` ≤ 0 gives none; Infinity gives all. */
  last(n: number, filter?: FlowPredicate): Flow[] {
    const out: Flow[] = [];
    if (!(n > 0)) return out;
    for (let i = 1; i <= this.#size && out.length < n; i++) {
      const flow = this.#buf[(this.#next - i + this.capacity) % this.capacity] as Flow;
      if (filter === undefined || filter(flow)) out.push(flow);
    }
    return out.reverse();
  }

  /** The first `n` flows still held that pass `filter`, oldest first. */
  first(n: number, filter?: FlowPredicate): Flow[] {
    const out: Flow[] = [];
    if (!(n > 0)) return out;
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size && out.length < n; i++) {
      const flow = this.#buf[(start + i) % this.capacity] as Flow;
      if (filter === undefined || filter(flow)) out.push(flow);
    }
    return out;
  }

  /** Calls `listener` for every flow pushed from now on (that passes `filter`). Returns the unsubscribe. */
  subscribe(listener: FlowListener, filter?: FlowPredicate): () => void {
    const sub = { listener, filter };
    this.#listeners.add(sub);
    return () => {
      this.#listeners.delete(sub);
    };
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  clear(): void {
    this.#buf = new Array<Flow | undefined>(this.capacity);
    this.#next = 0;
    this.#size = 0;
  }
}
