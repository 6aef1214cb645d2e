import type { Type } from 'protobufjs';

/** One exported span as the receivers see it. */
export interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  /** Start and end, Unix ns. */
  start: bigint;
  end: bigint;
  attributes: Record<string, unknown>;
  status: { code?: string; message?: string };
}

export function exportRequestType(): Promise<Type>;
export function decodeSpans(type: Type, body: Uint8Array): DecodedSpan[];
