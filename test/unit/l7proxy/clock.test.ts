/**
 * issue-9: `isoAt` keeps the text of the current second and appends the milliseconds; every
 * timestamp must still be exactly `new Date(ms).toISOString()`, whatever order the times come in.
 */
import { describe, expect, it } from 'vitest';
import { isoAt } from '../../../src/l7proxy/clock.js';

describe('isoAt', () => {
  it('gives toISOString for successive milliseconds across second, minute, day and year boundaries', () => {
    const starts = [Date.UTC(2026, 11, 31, 23, 59, 59, 990), Date.UTC(2024, 1, 28, 23, 59, 59, 995), 0, 999];
    for (const start of starts) {
      for (let ms = start - 3; ms < start + 25; ms++) expect(isoAt(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('gives toISOString when time goes back, repeats, or jumps within the same second', () => {
    const base = Date.UTC(2026, 11, 1, 6, 30, 15, 0);
    for (const ms of [base + 500, base + 500, base + 1, base + 999, base - 1, base + 1000, base + 7, base + 86_400_000 + 7]) {
      expect(isoAt(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('handles times before 1970, extended years and fractional milliseconds as Date does', () => {
    for (const ms of [-1, -999, -1000, -1001, -62_198_755_200_001, 253_402_300_800_000, 8.64e15, -8.64e15, 1_764_570_000_000.7, -0.5]) {
      expect(isoAt(ms)).toBe(new Date(ms).toISOString());
    }
    expect(() => isoAt(8.64e15 + 1)).toThrow(RangeError);
  });
});
