/**
 * Go's `time.ParseDuration` grammar for flags Cilium declares as durations (e.g.
 * `--tofqdns-proxy-response-max-delay=100ms`): an optional sign is refused (a delay is never
 * negative), then one or more decimal numbers each with a unit `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`
 * (`1m30s`, `1.5s`, `0`). A bare whole number keeps Membrane's older meaning: milliseconds.
 */
const UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds (rounded up to a whole one), or null when `text` is not a duration. */
export function parseDurationMs(text: string): number | null {
  const t = text.trim();
  if (/^[0-9]{1,9}$/.test(t)) return Number(t);
  if (t === '' || t.length > 64) return null;
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < t.length) {
    const m = PART.exec(t);
    if (m === null) return null;
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return Number.isFinite(ms) && ms <= 2 ** 31 ? Math.ceil(ms) : null;
}
