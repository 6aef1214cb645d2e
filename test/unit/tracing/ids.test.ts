/**
 * issue-11 the ids src/tracing puts in traceparents and spans: W3C Trace Context's form (lowercase
 * hex, 32 digits for a trace id, 16 for a span id, never all zeros) and random (no repeats).
 */
import { describe, expect, it } from 'vitest';
import { isValidSpanId, isValidTraceId } from '@opentelemetry/api';
import { randomId } from '../../../src/tracing/sdk.js';

describe('issue-11 trace and span ids', () => {
  it('are valid W3C ids, lowercase hex of the right length, and do not repeat across pool refills', () => {
    const traces = new Set<string>();
    const spans = new Set<string>();
    // Past several 4 KiB pool refills.
    for (let i = 0; i < 2000; i++) {
      const t = randomId(16);
      const s = randomId(8);
      expect(t).toMatch(/^[0-9a-f]{32}$/);
      expect(s).toMatch(/^[0-9a-f]{16}$/);
      expect(isValidTraceId(t)).toBe(true);
      expect(isValidSpanId(s)).toBe(true);
      traces.add(t);
      spans.add(s);
    }
    expect(traces.size).toBe(2000);
    expect(spans.size).toBe(2000);
  });
});
