/**
 * A bounded ring of the most recent flows (Hubble's ring buffer): producers push, `observe` reads
 * the last N and, with `--follow`, subscribes to new ones. Oldest flows are overwritten.
 *
 * Flows from the proxy workers arrive as a batch's JSON text (`pushJsonArray`; UTF-8 bytes as a
 * worker transfers them, outside the JavaScript heap, or a string) and are kept as that until
 * something reads them: with no subscriber, a flow costs the agent one small
 * reference, not an object graph (issue 9: the per-request flow cost on the agent's main thread
 * was mostly GC). A batch is parsed once, when `last`/`first` first reach one of its flows or a
 * subscriber is there at push time, and each parsed flow replaces its reference in its slot.
 *
 * `onPush` hooks see the flows given to `push()` only, never a batch's: the agent counts its own
 * thread's flows there, while the workers count theirs before sending (issue 11: a hook on every
 * flow would parse every batch, and count a worker's flows twice).
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

/** A batch of flows as JSON text (a string, or its UTF-8 bytes), parsed once when one of them is first read. */
interface JsonBatch {
  readonly text: string | Uint8Array;
  flows: Flow[] | null;
}

const utf8 = new TextDecoder();

function parseBatch(text: string | Uint8Array): Flow[] {
  return JSON.parse(typeof text === 'string' ? text : utf8.decode(text)) as Flow[];
}

/** Flow `index` of `batch`. */
class JsonRef {
  readonly batch: JsonBatch;
  readonly index: number;
  constructor(batch: JsonBatch, index: number) {
    this.batch = batch;
    this.index = index;
  }
}

interface Subscription {
  readonly listener: FlowListener;
  readonly filter: FlowPredicate | undefined;
  active: boolean;
}

export class FlowRing {
  readonly capacity: number;
  /** A flow, or where it is in a batch's JSON text not yet parsed. */
  #buf: Array<Flow | JsonRef | undefined>;
  #next = 0; // slot the next push writes
  #size = 0;
  #seen = 0;
  /** Replaced, never changed in place, on (un)subscribe: a push walks the array it started with, no copy per flow. */
  #listeners: readonly Subscription[] = [];
  /** As `#listeners`, replaced on change: called by `push()` only. */
  #pushHooks: readonly FlowListener[] = [];
  #onListenerError: ((err: unknown) => void) | undefined;

  constructor(opts: FlowRingOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_RING_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`FlowRing capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#buf = new Array<Flow | JsonRef | undefined>(capacity);
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

  /** Stores a flow born on this thread; `onPush` hooks, then subscribers, see it. */
  push(flow: Flow): void {
    this.#store(flow);
    const hooks = this.#pushHooks;
    for (let i = 0; i < hooks.length; i++) {
      try {
        hooks[i]!(flow);
      } catch (err) {
        this.#onListenerError?.(err);
      }
    }
    this.#notify(flow);
  }

  /**
   * Calls `hook` for every flow given to `push()` from now on — not those of `pushJsonArray()`,
   * which stay unparsed unless a reader or subscriber wants them. Returns the removal.
   */
  onPush(hook: FlowListener): () => void {
    let on = true;
    this.#pushHooks = [...this.#pushHooks, hook];
    return () => {
      if (!on) return;
      on = false;
      const i = this.#pushHooks.indexOf(hook);
      if (i >= 0) this.#pushHooks = [...this.#pushHooks.slice(0, i), ...this.#pushHooks.slice(i + 1)];
    };
  }

  /**
   * Pushes `count` flows given as one JSON array (`JSON.stringify(flows)`, or its UTF-8 bytes; '' or 0 pushes none).
   * The text is trusted to hold `count` flows (the proxy workers serialise them); it is parsed
   * once, when a reader first reaches one of its flows, or now when the ring has subscribers.
   * `onPush` hooks do not see these flows.
   */
  pushJsonArray(text: string | Uint8Array, count: number): void {
    if (count <= 0 || text.length === 0) return;
    if (this.#listeners.length > 0) {
      for (const flow of parseBatch(text)) {
        this.#store(flow);
        this.#notify(flow);
      }
      return;
    }
    const batch: JsonBatch = { text, flows: null };
    for (let i = 0; i < count; i++) this.#store(new JsonRef(batch, i));
  }

  #store(entry: Flow | JsonRef): void {
    this.#buf[this.#next] = entry;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
    this.#seen++;
  }

  /** The flow in `slot`, parsed (and kept parsed, with the rest of its batch) if it is still text. */
  #at(slot: number): Flow {
    const entry = this.#buf[slot] as Flow | JsonRef;
    if (!(entry instanceof JsonRef)) return entry;
    const batch = entry.batch;
    batch.flows ??= parseBatch(batch.text);
    const flow = batch.flows[entry.index] as Flow;
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
    this.#buf = new Array<Flow | JsonRef | undefined>(this.capacity);
    this.#next = 0;
    this.#size = 0;
  }
}
