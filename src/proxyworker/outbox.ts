/**
 * A worker's outgoing flows and access-log lines, sent to the agent in batches: one message per
 * `FLUSH_MS` or per `FLUSH_ITEMS` items, whichever comes first, so the agent pays one message
 * per batch rather than per request. Bounded: past `max` items of a kind queued here or sent and
 * not yet acknowledged by the agent (`ack`), new ones are dropped and counted, so a stalled agent
 * grows neither the worker's memory nor the message queue between them.
 */
import type { Flow } from '../observe/index.js';

/** Longest an item waits before it is sent, ms. */
export const FLUSH_MS = 5;
/** Items (flows + lines) that trigger a send at once. */
export const FLUSH_ITEMS = 256;

export class Outbox {
  #flows: Flow[] = [];
  #lines: string[] = [];
  #timer: NodeJS.Timeout | null = null;
  readonly #max: number;
  readonly #send: (flows: Flow[], lines: string[]) => void;
  /** Items sent and not yet acknowledged, per kind. */
  #unackedFlows = 0;
  #unackedLines = 0;
  droppedFlows = 0;
  droppedLines = 0;

  constructor(max: number, send: (flows: Flow[], lines: string[]) => void) {
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

  line(l: string): void {
    if (this.#lines.length + this.#unackedLines >= this.#max) {
      this.droppedLines++;
      return;
    }
    this.#lines.push(l);
    this.#queued();
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#flows.length === 0 && this.#lines.length === 0) return;
    const flows = this.#flows;
    const lines = this.#lines;
    this.#flows = [];
    this.#lines = [];
    this.#unackedFlows += flows.length;
    this.#unackedLines += lines.length;
    this.#send(flows, lines);
  }

  /** The agent has taken a batch of `flows` flows and `lines` lines. */
  ack(flows: number, lines: number): void {
    this.#unackedFlows = Math.max(0, this.#unackedFlows - flows);
    this.#unackedLines = Math.max(0, this.#unackedLines - lines);
  }

  #queued(): void {
    if (this.#flows.length + this.#lines.length >= FLUSH_ITEMS) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }
}
