/**
 * Wall-clock timestamps for flows and access-log lines. Under load many requests start and end in
 * the same millisecond: the RFC 3339 text of a millisecond is made once and shared (the same
 * string `new Date().toISOString()` would give).
 */

let lastMs = -1;
let lastIso = '';

/** RFC 3339 UTC with milliseconds, of `ms` since the epoch. */
export function isoAt(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}
