/**
 * The control plane's work at a lower CPU priority than the proxies: policy files parsed and
 * regenerations run with the agent's thread `nice` raised by `--control-plane-nice`, and the
 * thread returns to its own priority between them, so what must be prompt on it (a DNS answer's
 * confirmation, flow batches, API calls) is not slowed when nothing heavy runs. Nice only matters
 * when the CPUs are contended: then the proxy worker threads (which keep the agent's priority)
 * are served first, and a regeneration takes longer (issue-9 isolation: 2 shared cores).
 */
import type { Logger } from 'pino';
import { setThreadNice, threadNice } from '../datapath/index.js';

export class ControlPlanePriority {
  readonly #base: number;
  readonly #low: number;
  readonly #log: Logger;
  #depth = 0;
  #enabled: boolean;

  /** `nice`: how much lower (0…19; 0 turns it off) the control plane's work runs than the thread's priority now. */
  constructor(nice: number, log: Logger) {
    this.#log = log;
    this.#base = threadNice();
    this.#low = Math.min(19, this.#base + nice);
    this.#enabled = this.#low !== this.#base;
  }

  /** The nice value control-plane work runs at (the thread's own when off). */
  get nice(): number {
    return this.#enabled ? this.#low : this.#base;
  }

  /** `fn()` at the control plane's priority (nested calls share one raise). */
  run<T>(fn: () => T): T {
    if (!this.#enabled) return fn();
    if (this.#depth++ === 0) this.#set(this.#low);
    try {
      return fn();
    } finally {
      if (--this.#depth === 0) this.#set(this.#base);
    }
  }

  #set(nice: number): void {
    try {
      setThreadNice(nice);
    } catch (err) {
      // Returning to the base needs CAP_SYS_NICE (or RLIMIT_NICE): without it, stay where the
      // thread is and stop switching rather than leave the whole agent at the low priority.
      this.#enabled = false;
      try {
        setThreadNice(this.#base);
      } catch {
        // the thread keeps the value it has
      }
      let now: number | null = null;
      try {
        now = threadNice();
      } catch {
        // unknown
      }
      this.#log.warn({ err, wanted: nice, nice: now }, 'control-plane priority switching stopped');
    }
  }
}
