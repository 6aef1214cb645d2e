/** Cleanup functions registered as a test builds its fixtures, run in reverse order even when one throws. */
export type Cleanup = () => unknown;

export class Cleanups {
  #fns: Cleanup[] = [];
  add(fn: Cleanup): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    const fns = this.#fns.reverse();
    this.#fns = [];
    for (const fn of fns) {
      try {
        await fn();
      } catch {
        // cleanup keeps going
      }
    }
  }
}
