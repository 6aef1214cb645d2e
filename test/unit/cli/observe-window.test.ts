/** Which flows `membrane observe` asks the agent for: hubble's --last / --first / --since / --until. */
import { describe, expect, it } from 'vitest';
import { ALL_FLOWS, observeWindow, parseTimeFlag } from '../../../src/cli/observe-command.js';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;

describe('--since / --until values', () => {
  it('take RFC 3339 times to the nanosecond, with any offset', () => {
    expect(parseTimeFlag('--since', '2026-12-01T10:00:00Z')).toBe(ns(Date.UTC(2026, 11, 1, 10)));
    expect(parseTimeFlag('--since', '2026-12-01T10:00:00.000000123Z')).toBe(ns(Date.UTC(2026, 11, 1, 10)) + 123n);
    expect(parseTimeFlag('--since', '2026-12-01T12:00:00+02:00')).toBe(ns(Date.UTC(2026, 11, 1, 10)));
  });

  it('take Go-style durations before now, optionally with "ago"', () => {
    expect(parseTimeFlag('--since', '5m', NOW)).toBe(ns(NOW - 300_000));
    expect(parseTimeFlag('--since', '1h30m ago', NOW)).toBe(ns(NOW - 5_400_000));
    expect(parseTimeFlag('--since', '250ms', NOW)).toBe(ns(NOW - 250));
  });

  it('take Go durations as time.ParseDuration reads them: fractions, and negative ones (after now)', () => {
    expect(parseTimeFlag('--since', '1.5h', NOW)).toBe(ns(NOW - 5_400_000));
    expect(parseTimeFlag('--until', '-5m', NOW)).toBe(ns(NOW + 300_000));
    expect(parseTimeFlag('--since', '0', NOW)).toBe(ns(NOW));
  });

  it('take the other layouts hubble parses: YearMonthDay[Hour[Minute]] and RFC 1123Z', () => {
    expect(parseTimeFlag('--since', '2026-12-01')).toBe(ns(Date.UTC(2026, 11, 1)));
    expect(parseTimeFlag('--since', '2026-12-01T10Z')).toBe(ns(Date.UTC(2026, 11, 1, 10)));
    expect(parseTimeFlag('--since', '2026-12-01T12+02:00')).toBe(ns(Date.UTC(2026, 11, 1, 10)));
    expect(parseTimeFlag('--since', '2026-12-01T10:30Z')).toBe(ns(Date.UTC(2026, 11, 1, 10, 30)));
    expect(parseTimeFlag('--since', 'Tue, 01 Dec 2026 12:30:00 +0200')).toBe(ns(Date.UTC(2026, 11, 1, 10, 30)));
  });

  it('take a StampMilli time as flows print it, in UTC, in the latest year not more than a day ahead', () => {
    expect(parseTimeFlag('--since', 'Dec  1 06:13:50.000', NOW)).toBe(ns(Date.UTC(2026, 11, 1, 6, 13, 50)));
    expect(parseTimeFlag('--since', 'Dec 1 06:13:50.123', NOW)).toBe(ns(Date.UTC(2026, 11, 1, 6, 13, 50, 123)));
    expect(parseTimeFlag('--since', 'Nov 30 23:59:59.999', NOW)).toBe(ns(Date.UTC(2026, 10, 30, 23, 59, 59, 999)));
    expect(parseTimeFlag('--since', 'Dec 25 00:00:00.000', NOW)).toBe(ns(Date.UTC(2025, 11, 25)));
  });

  it('refuse anything else, naming the flag', () => {
    for (const bad of ['yesterday', '5', '5x', '2026-12', '2026-13-01T00:00:00Z', '2026-02-30', 'Foo  1 06:13:50.000', '']) {
      expect(() => parseTimeFlag('--until', bad, NOW)).toThrow(expect.objectContaining({ code: 'MEMBRANE_ERR_CLI_USAGE', message: expect.stringContaining('--until') }));
    }
  });
});

describe('the window asked for', () => {
  it('is the last 20 by default, the last N with --last', () => {
    expect(observeWindow({ last: '20' }, false)).toEqual({ last: 20 });
    expect(observeWindow({ last: '3' }, true)).toEqual({ last: 3 });
  });

  it('is the oldest N with --first, which neither --last, --all nor --follow may join (hubble\'s words)', () => {
    expect(observeWindow({ last: '20', first: '2' }, false)).toEqual({ last: 2, first: true });
    expect(() => observeWindow({ last: '5', first: '2' }, true)).toThrow(/^invalid command line: cannot set both --first and --last$/);
    expect(() => observeWindow({ last: '20', first: '2', follow: true }, false)).toThrow(/cannot set both --first and --follow/);
    expect(() => observeWindow({ last: '20', first: '2', all: true }, false)).toThrow(/cannot set both --first and --all/);
  });

  it('is everything held with --all (not with --last); only new flows with --follow and no --last', () => {
    expect(observeWindow({ last: '20', all: true }, false)).toEqual({ last: ALL_FLOWS });
    // With --follow too: every flow held, then the new ones (a count of 0 would mean new ones only).
    expect(observeWindow({ last: '20', all: true, follow: true }, false)).toEqual({ last: ALL_FLOWS });
    expect(() => observeWindow({ last: '3', all: true }, true)).toThrow(/cannot set both --last and --all/);
    expect(observeWindow({ last: '20', follow: true }, false)).toEqual({ last: 0 });
    expect(observeWindow({ last: '2', follow: true }, true)).toEqual({ last: 2 });
  });

  it('drops --until with --follow, as hubble does', () => {
    expect(observeWindow({ last: '20', follow: true, since: '1m', until: '10s' }, false, NOW)).toEqual({ last: 0, since: ns(NOW - 60_000) });
  });

  it('is every flow in the range with --since/--until and no --last, the last N of it with one', () => {
    expect(observeWindow({ last: '20', since: '1m' }, false, NOW)).toEqual({ last: 0, since: ns(NOW - 60_000) });
    expect(observeWindow({ last: '4', since: '1m', until: '10s' }, true, NOW)).toEqual({ last: 4, since: ns(NOW - 60_000), until: ns(NOW - 10_000) });
  });

  it('--last and --first take 1 … 1 000 000', () => {
    expect(() => observeWindow({ last: '0' }, true)).toThrow(/--last 0: expected a whole number from 1 to 1000000/);
    expect(() => observeWindow({ last: '20', first: 'x' }, false)).toThrow(/--first x:/);
  });
});
