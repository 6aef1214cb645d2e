/**
 * Wall-clock timestamps for flows and access-log lines. Under load many requests start and end in
 * the same millisecond: the RFC 3339 text of a millisecond is made once and shared (the same
 * string `new Date().toISOString()` would give). Within one second only the milliseconds change:
 * the text up to the second is kept and the three digits are appended (issue 9: at a paced 2000
 * req/s nearly every request starts in a new millisecond, and `toISOString` was ~1.5% of a proxy
 * worker's CPU).
 */

let lastMs = -1;
let lastIso = '';
/** The second `secondText` belongs to (ms since the epoch ÷ 1000, floored), and its text up to the `.`. */
let lastSecond = Number.NaN;
let secondText = '';

/** `000Z` … `999Z`: the milliseconds and the zone of a timestamp. */
const MILLIS: readonly string[] = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

/** RFC 3339 UTC with milliseconds, of `ms` since the epoch (an integer, as `Date.now()` gives). */
export function isoAt(ms: number): string {
  if (ms !== lastMs) {
    const second = Math.floor(ms / 1000);
    const milli = ms - second * 1000;
    if (!Number.isInteger(milli) || ms > 8.64e15 || ms < -8.64e15) {
      // A fractional time (Date truncates it) or one past Date's range (it throws): Date's own path.
      lastIso = new Date(ms).toISOString();
    } else {
      if (second !== lastSecond) {
        const iso = new Date(second * 1000).toISOString();
        // `YYYY-MM-DDTHH:MM:SS.` (extended years included): everything but `000Z`.
        secondText = iso.slice(0, iso.length - 4);
        lastSecond = second;
      }
      lastIso = secondText + (MILLIS[milli] as string);
    }
    lastMs = ms;
  }
  return lastIso;
}
