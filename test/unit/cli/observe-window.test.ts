/** Which flows `membrane observe` asks the agent for: hubble's --last / --first / --since / --until. */
import { describe, expect, it } from 'vitest';
import { observeWindow, parseTimeFlag } from '../../../src/cli/observe-command.js';

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

  it('refuse anything else, naming the flag', () => {
    for (const bad of ['yesterday', '5', '-5m', '2026-12-01', '2026-13-01T00:00:00Z', '']) {
      expect(() => parseTimeFlag('--until', bad, NOW)).toThrow(expect.objectContaining({ code: 'MEMBRANE_ERR_CLI_USAGE', message: expect.stringContaining('--until') }));
    }
  });
});

describe('the window asked for', () => {
  it('is the last 20 by default, the last N with --last', () => {
    expect(observeWindow({ last: '20' }, false)).toEqual({ last: 20 });
    expect(observeWindow({ last: '3' }, true)).toEqual({ last: 3 });
  });

  it('is the oldest N with --first, which neither --last nor --follow may join', () => {
    expect(observeWindow({ last: '20', first: '2' }, false)).toEqual({ last: 2, first: true });
    expect(() => observeWindow({ last: '5', first: '2' }, true)).toThrow(/--first and --last cannot be combined/);
    expect(() => observeWindow({ last: '20', first: '2', follow: true }, false)).toThrow(/--first and --follow cannot be combined/);
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
