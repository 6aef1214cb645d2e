/**
 * Printer options are functions applied over the defaults (Hubble `printer/options.go`); the output
 * mode is a closed union.
 */

import type { TimeZone } from './format.js';
import type { TimeFormat } from './time-format.js';
import type { Flow } from '../flow.js';

/**
 * `jsonpb` is the GetFlowsResponse in proto3's JSON mapping (needs `withJsonpbEncoder`, which knows
 * the .proto); `table` is Hubble's tab-aligned columns, written when the printer is closed.
 */
export const OUTPUT_MODES = ['compact', 'json', 'dict', 'jsonpb', 'table'] as const;
export type OutputMode = (typeof OUTPUT_MODES)[number];

/** Anything with `write(string)`: a Node stream, or a test's collector. Stream `error` events stick. */
export interface TextWriter {
  write(chunk: string): unknown;
  on?(event: 'error', listener: (err: Error) => void): unknown;
}

export interface PrinterOptions {
  output: OutputMode;
  writer: TextWriter;
  /** Print `[node]` after the timestamp (compact) or a NODE line (dict). */
  nodeName: boolean;
  /** Show `namespace/pod` instead of the IP when the endpoint is known (Hubble's default: on). */
  ipTranslation: boolean;
  /** Timestamps are stored in UTC; print them in UTC (default, reproducible) or local time. */
  timeZone: TimeZone;
  /** Hubble's `--time-format`; default StampMilli. */
  timeFormat: TimeFormat;
  /** ANSI colours in compact and dict output (never in table or JSON). */
  color: boolean;
  /** One flow → its GetFlowsResponse as proto3 JSON, without the newline (for `jsonpb`). */
  jsonpb: ((flow: Flow) => string) | null;
}

export type PrinterOption = (opts: PrinterOptions) => void;

export function output(mode: OutputMode): PrinterOption {
  return (o) => {
    o.output = mode;
  };
}
export const compact = (): PrinterOption => output('compact');
export const json = (): PrinterOption => output('json');
export const dict = (): PrinterOption => output('dict');

export function withWriter(writer: TextWriter): PrinterOption {
  return (o) => {
    o.writer = writer;
  };
}

export function withNodeName(on = true): PrinterOption {
  return (o) => {
    o.nodeName = on;
  };
}

export function withIPTranslation(on = true): PrinterOption {
  return (o) => {
    o.ipTranslation = on;
  };
}

export function withTimeZone(zone: TimeZone): PrinterOption {
  return (o) => {
    o.timeZone = zone;
  };
}

export function withTimeFormat(format: TimeFormat): PrinterOption {
  return (o) => {
    o.timeFormat = format;
  };
}

export function withColor(on = true): PrinterOption {
  return (o) => {
    o.color = on;
  };
}

export function withJsonpbEncoder(encode: (flow: Flow) => string): PrinterOption {
  return (o) => {
    o.jsonpb = encode;
  };
}

export function isOutputMode(value: string): value is OutputMode {
  return (OUTPUT_MODES as readonly string[]).includes(value);
}
