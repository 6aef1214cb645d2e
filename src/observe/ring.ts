/**
 * A bounded ring of the most recent flows (Hubble's ring buffer): producers push, `observe` reads
 * the last N and, with `--follow`, subscribes to new ones. Oldest flows are overwritten.
 *
 * Flows from the proxy workers arrive as JSON text (`pushJsonLines`) and are kept as that text
 * until something reads them: with no subscriber, a flow costs the agent one string slice, not an
 * object graph (issue 9: the per-request flow cost on the agent's main thread was mostly GC). A
 * kept text is parsed once, when `last`/`first` reach it or a subscriber is there at push time,
 * and the parsed flow replaces it in its slot.
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

interface Subscription {
  readonly listener: FlowListener;
  readonly filter: FlowPredicate | undefined;
  active: boolean;
}

export class FlowRing {
  readonly capacity: number;
  /** A flow, or the JSON text of one not yet parsed. */
  #buf: Array<Flow | string | undefined>;
  #next = 0; // slot the next push writes
  #size = 0;
  #seen = 0;
  /** Replaced, never changed in place, on (un)subscribe: a push walks the array it started with, no copy per flow. */
  #listeners: readonly Subscription[] = [];
  #onListenerError: ((err: unknown) => void) | undefined;

  constructor(opts: FlowRingOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_RING_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`FlowRing capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#buf = new Array<Flow | string | undefined>(capacity);
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
    this.#store(flow);
    this.#notify(flow);
  }

  /**
   * Pushes flows given as JSON text, one per line, each line ending in `\n` (what
   * `JSON.stringify(flow) + '\n'` gives, concatenated); returns how many. The texts are trusted
   * to be flows (the proxy workers serialise them); they are parsed only when read, or now when
   * the ring has subscribers.
   */
  pushJsonLines(text: string): number {
    let n = 0;
    let start = 0;
    const listening = this.#listeners.length > 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      if (end > start) {
        const json = text.slice(start, end);
        if (listening) {
          const flow = JSON.parse(json) as Flow;
          this.#store(flow);
          this.#notify(flow);
        } else {
          this.#store(json);
        }
        n++;
      }
      start = end + 1;
    }
    return n;
  }

  #store(entry: Flow | string): void {
    this.#buf[this.#next] = entry;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
    this.#seen++;
  }

  /** The flow in `slot`, parsed (and kept parsed) if it is still text. */
  #at(slot: number): Flow {
    const entry = this.#buf[slot] as Flow | string;
    if (typeof entry !== 'string') return entry;
    const flow = JSON.parse(entry) as Flow;
    this.#buf[slot] = flow;
    return flow;
  }

  #notify(flow: Flow): void {
    const subs = this.#listeners;
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]!;
      if (!sub.active) continue; // unsubscribed by an earlier listener
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
      const flow = this.#at((this.#next - i + this.capacity) % this.capacity);
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
      const flow = this.#at((start + i) % this.capacity);
      if (filter === undefined || filter(flow)) out.push(flow);
    }
    return out;
  }

  /** Calls `listener` for every flow pushed from now on (that passes `filter`). Returns the unsubscribe. */
  subscribe(listener: FlowListener, filter?: FlowPredicate): () => void {
    const sub: Subscription = { listener, filter, active: true };
    this.#listeners = [...this.#listeners, sub];
    return () => {
      if (!sub.active) return;
      sub.active = false;
      this.#listeners = this.#listeners.filter((s) => s !== sub);
    };
  }

  get subscribers(): number {
    return this.#listeners.length;
  }

  clear(): void {
    this.#buf = new Array<Flow | string | undefined>(this.capacity);
    this.#next = 0;
    this.#size = 0;
  }
}
