import { describe, expect, it } from 'vitest';
import { parseDurationMs } from '../../../src/cli/duration.js';

describe('Go durations for Cilium duration flags', () => {
  it('takes what Cilium users write, and a bare number as milliseconds', () => {
    expect(parseDurationMs('100ms')).toBe(100);
    expect(parseDurationMs('1s')).toBe(1000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(parseDurationMs('1m30s')).toBe(90_000);
    expect(parseDurationMs('250us')).toBe(1);
    expect(parseDurationMs('0s')).toBe(0);
    expect(parseDurationMs('0')).toBe(0);
    expect(parseDurationMs('150')).toBe(150);
  });
  it('refuses what Go refuses, and negative delays', () => {
    for (const bad of ['', 'ms', '100 ms', '-100ms', '1d', '1.2.3s', '10msx', 's1']) expect(parseDurationMs(bad)).toBeNull();
  });
});
