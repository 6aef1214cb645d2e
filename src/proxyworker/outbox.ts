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
 * agent writes as they are.
 */
import type { Flow } from '../observe/index.js';

/** Longest an item waits before it is sent, ms. */
export const FLUSH_MS = 5;
/** Items (flows + lines) that trigger a send at once. */
export const FLUSH_ITEMS = 256;

/** One batch: `flows` holds `flowCount` flows as one JSON array ('' when none), `lines` `lineCount` access-log lines. */
export interface OutboxBatch {
  readonly flows: string;
  readonly flowCount: number;
  readonly lines: string;
  readonly lineCount: number;
}

export class Outbox {
  #flows: Flow[] = [];
  #lines = '';
  #lineCount = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #max: number;
  readonly #send: (batch: OutboxBatch) => void;
  /** Items sent and not yet acknowledged, per kind. */
  #unackedFlows = 0;
  #unackedLines = 0;
  droppedFlows = 0;
  droppedLines = 0;

  constructor(max: number, send: (batch: OutboxBatch) => void) {
    this.#max = max;
    this.#send = send;
  }

  flow(f: Flow): void {
    if (this.#flows.length + this.#unackedFlows >= this.#max) {
      this.droppedFlows++;
      return;
    }
    this.#flows.push(f);
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
    if (this.#flows.length === 0 && this.#lineCount === 0) return;
    // One JSON.stringify per batch: cheaper than one per flow and their concatenation (measured).
    const { json, count } = this.#flows.length > 0 ? this.#flowsJson(this.#flows) : { json: '', count: 0 };
    const batch: OutboxBatch = { flows: json, flowCount: count, lines: this.#lines, lineCount: this.#lineCount };
    this.#flows = [];
    this.#lines = '';
    this.#lineCount = 0;
    this.#unackedFlows += batch.flowCount;
    this.#unackedLines += batch.lineCount;
    this.#send(batch);
  }

  /** The flows as a JSON array; one that is not JSON (a BigInt, a cycle: no flow builder makes one) is dropped and counted, never thrown into a request. */
  #flowsJson(flows: Flow[]): { json: string; count: number } {
    try {
      return { json: JSON.stringify(flows), count: flows.length };
    } catch {
      const ok: string[] = [];
      for (const f of flows) {
        try {
          ok.push(JSON.stringify(f));
        } catch {
          this.droppedFlows++;
        }
      }
      return { json: ok.length > 0 ? `[${ok.join(',')}]` : '', count: ok.length };
    }
  }

  /** The agent has taken a batch of `flows` flows and `lines` lines. */
  ack(flows: number, lines: number): void {
    this.#unackedFlows = Math.max(0, this.#unackedFlows - flows);
    this.#unackedLines = Math.max(0, this.#unackedLines - lines);
  }

  #queued(): void {
    if (this.#flows.length + this.#lineCount >= FLUSH_ITEMS) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }
}
