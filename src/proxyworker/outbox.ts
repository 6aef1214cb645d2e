/**
 * A worker's outgoing flows and access-log lines, sent to the agent in batches: one message per
 * `FLUSH_MS` or per `FLUSH_ITEMS` items, whichever comes first, so the agent pays one message
 * per batch rather than per request. Bounded: past `max` items of a kind queued here or sent and
 * not yet acknowledged by the agent (`ack`), new ones are dropped and counted, so a stalled agent
 * grows neither the worker's memory nor the message queue between them.
 *
 * A batch is two strings, not object graphs (issue 9: structured-cloning 256 flows and lines cost
 * the agent's main thread a quarter of its time in GC): the flows as one JSON array, which
 * the agent's FlowRing keeps as they are and parses only when a reader or subscriber wants a flow
 * (`FlowRing.pushJsonArray`); the access-log lines concatenated as pino serialised them, which the
 * agent writes as they are. The worker sends each as UTF-8 bytes in a transferred buffer
 * (protocol.ts `WireBatch`), so neither enters the agent's JavaScript heap. A flow is serialised when it comes (an HTTP or DNS flow by `flowJson`,
 * anything else by `JSON.stringify`), so only its text waits for the batch.
 *
 * Each batch is a message to the agent and an `ack` back, each waking the other thread: at a
 * paced 2000 req/s, with 5 ms batches of ~30 items, the two messages cost the worker more than
 * serialising the flows did (issue 9, CPU profile of the worker). Batches of up to 25 ms or 512
 * items take a tenth of the messages at that rate; a flow reaches `hubble observe` ≤ 25 ms later.
 * A batch is also sent once its text reaches `FLUSH_CHARS` (see there: past it, a larger message
 * costs more per item, not less).
 *
 * With metrics (`--prometheus-serve-addr`), each flow is counted here as it comes, into the
 * worker's own FlowMetrics, and a batch carries what changed since the previous one
 * (`FlowMetricsDelta`), so the agent adds a few numbers per batch instead of parsing every flow
 * (issue 11). A flow dropped here for a full queue is still counted. A worker that dies loses at
 * most its unsent deltas (≤ 25 ms of counts, or more while the agent does not ack): the agent holds
 * everything merged before. Deltas alone (no flow, no line) are sent only when no batch awaits its
 * ack, so a stalled agent's message queue does not grow by them; they accumulate here, bounded by
 * the series bound.
 */
import type { Flow } from '../observe/index.js';
import { FlowCounter, takeFlowMetricsDelta, type FlowMetrics, type FlowMetricsDelta } from '../metrics/index.js';
import { flowJson } from './flow-json.js';

/** Longest an item waits before it is sent, ms. */
export const FLUSH_MS = 25;
/** Items (flows + lines) that trigger a send at once. */
export const FLUSH_ITEMS = 512;
/**
 * Characters of text (flows + lines) that trigger a send at once: 96 KiB when they are one byte
 * each, as flows and log lines mostly are (text beyond Latin-1, such as a non-ASCII path, makes
 * a string two bytes a character). A batch's strings, flattened when it is serialised, and the message
 * buffer are then regular heap and malloc allocations; past V8's largest regular object (128 KiB)
 * and glibc's mmap threshold each batch costs fresh pages on both threads, and page faults are
 * expensive in a guest: posting 1.4 KB flows measured 11 µs per flow in 211 KB batches and 0.4–1.6
 * µs in 14–113 KB ones (issue 9; at a paced 2000 req/s a 25 ms batch held ~150 KB, and the worker
 * spent 14% of its time in postMessage).
 */
export const FLUSH_CHARS = 96 * 1024;

/**
 * One batch: `flows` holds `flowCount` flows as one JSON array ('' when none), `lines` `lineCount`
 * access-log lines, `metrics` what was counted of this worker's flows since the previous batch.
 */
export interface OutboxBatch {
  readonly flows: string;
  readonly flowCount: number;
  readonly lines: string;
  readonly lineCount: number;
  readonly metrics?: FlowMetricsDelta;
}

export class Outbox {
  /** The queued flows' JSON texts, comma-separated (`#flowCount` of them). */
  #flows = '';
  #flowCount = 0;
  #lines = '';
  #lineCount = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #max: number;
  readonly #send: (batch: OutboxBatch) => void;
  /** Items sent and not yet acknowledged, per kind. */
  #unackedFlows = 0;
  #unackedLines = 0;
  #unackedBatches = 0;
  /** The worker's flow metrics (null: metrics off), and whether they counted since the last take. */
  readonly #metrics: FlowMetrics | null;
  readonly #counter: FlowCounter | null;
  #counted = false;
  droppedFlows = 0;
  droppedLines = 0;

  /** `metrics`: count each flow into these and send the deltas with the batches (worker-local, never scraped). */
  constructor(max: number, send: (batch: OutboxBatch) => void, metrics: FlowMetrics | null = null) {
    this.#max = max;
    this.#send = send;
    this.#metrics = metrics;
    this.#counter = metrics ? new FlowCounter(metrics) : null;
  }

  /** Queues a flow; one that is not JSON (a BigInt, a cycle: no flow builder makes one) is dropped and counted, never thrown into a request. */
  flow(f: Flow): void {
    if (this.#counter) {
      this.#counter.count(f);
      this.#counted = true;
    }
    if (this.#flowCount + this.#unackedFlows >= this.#max) {
      this.droppedFlows++;
      if (this.#counted) this.#timer ??= setTimeout(() => this.#onTimer(), FLUSH_MS);
      return;
    }
    let json: string | null | undefined;
    try {
      json = flowJson(f) ?? JSON.stringify(f);
    } catch {
      json = undefined;
    }
    if (typeof json !== 'string') {
      this.droppedFlows++;
      return;
    }
    this.#flows = this.#flowCount === 0 ? json : `${this.#flows},${json}`;
    this.#flowCount++;
    this.#queued();
  }

  /** One serialised access-log line, ending in `\n` (pino's). */
  line(l: string): void {
    if (this.#lineCount + this.#unackedLines >= this.#max) {
      this.droppedLines++;
      return;
    }
    this.#lines += l;
    this.#lineCount++;
    this.#queued();
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const metrics = this.#counted && this.#metrics ? takeFlowMetricsDelta(this.#metrics) : null;
    this.#counted = false;
    if (this.#flowCount === 0 && this.#lineCount === 0 && metrics === null) return;
    const batch: OutboxBatch = {
      flows: this.#flowCount > 0 ? `[${this.#flows}]` : '',
      flowCount: this.#flowCount,
      lines: this.#lines,
      lineCount: this.#lineCount,
      ...(metrics ? { metrics } : {}),
    };
    this.#flows = '';
    this.#flowCount = 0;
    this.#lines = '';
    this.#lineCount = 0;
    this.#unackedFlows += batch.flowCount;
    this.#unackedLines += batch.lineCount;
    this.#unackedBatches++;
    this.#send(batch);
  }

  /** The agent has taken a batch of `flows` flows and `lines` lines. */
  ack(flows: number, lines: number): void {
    this.#unackedFlows = Math.max(0, this.#unackedFlows - flows);
    this.#unackedLines = Math.max(0, this.#unackedLines - lines);
    this.#unackedBatches = Math.max(0, this.#unackedBatches - 1);
  }

  #queued(): void {
    if (this.#flowCount + this.#lineCount >= FLUSH_ITEMS || this.#flows.length + this.#lines.length >= FLUSH_CHARS) this.flush();
    else this.#timer ??= setTimeout(() => this.#onTimer(), FLUSH_MS);
  }

  /** Deltas alone wait for the agent's ack of the batches before (see above). */
  #onTimer(): void {
    this.#timer = null;
    if (this.#flowCount === 0 && this.#lineCount === 0 && this.#unackedBatches > 0) {
      this.#timer = setTimeout(() => this.#onTimer(), FLUSH_MS);
      return;
    }
    this.flush();
  }
}
