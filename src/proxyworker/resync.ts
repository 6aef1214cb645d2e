/**
 * A worker's request for a full snapshot when its state no longer matches what the agent sent
 * (a policy patch it could not apply: the endpoint is denied, fail closed, until a snapshot).
 * Bounded: at most one request outstanding (answered by the next snapshot), and at most one per
 * `minIntervalMs` (a later need is deferred to the end of the interval, one timer at most), so a
 * worker that keeps failing cannot make the agent clone its whole state in a loop.
 * Cilium has no worker split; this is Membrane's, for `--proxy-workers` (README "Proxy workers").
 */

/** Default spacing of two requests, ms. */
export const RESYNC_MIN_INTERVAL_MS = 1000;

export interface ResyncOptions {
  /** Sends the request to the agent (`{ t: 'resync' }`). */
  readonly send: () => void;
  readonly minIntervalMs?: number;
  /** Monotonic clock, ms (tests give their own). */
  readonly now?: () => number;
  /** Runs `fn` after `ms` and returns a cancel function (tests give their own). */
  readonly schedule?: (fn: () => void, ms: number) => () => void;
}

const realSchedule = (fn: () => void, ms: number): (() => void) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

export class ResyncRequester {
  readonly #send: () => void;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  readonly #schedule: (fn: () => void, ms: number) => () => void;
  #outstanding = false;
  #lastAt = -Infinity;
  #cancel: (() => void) | null = null;
  /** Requests sent. */
  requests = 0;

  constructor(o: ResyncOptions) {
    this.#send = o.send;
    this.#minIntervalMs = o.minIntervalMs ?? RESYNC_MIN_INTERVAL_MS;
    this.#now = o.now ?? (() => performance.now());
    this.#schedule = o.schedule ?? realSchedule;
  }

  /** A request is sent and not yet answered by a snapshot. */
  get outstanding(): boolean {
    return this.#outstanding;
  }

  /** The state went stale: a snapshot is needed (sent now, or at the end of the interval). */
  need(): void {
    if (this.#outstanding || this.#cancel) return;
    const wait = this.#lastAt + this.#minIntervalMs - this.#now();
    if (wait <= 0) this.#fire();
    else this.#cancel = this.#schedule(() => this.#fire(), wait);
  }

  /** A snapshot replaced the state: whatever was stale is not any more. */
  snapshotApplied(): void {
    this.#outstanding = false;
    this.#cancel?.();
    this.#cancel = null;
  }

  #fire(): void {
    this.#cancel = null;
    this.#outstanding = true;
    this.#lastAt = this.#now();
    this.requests++;
    this.#send();
  }
}
