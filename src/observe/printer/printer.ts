/**
 * Writes flows in one of three forms:
 *
 * - `compact`: one line per flow, exactly Hubble's compact line
 *   `{time}[ [node]]: {src} {srcId} {->|<-|<>} {dst} {dstId} {type} {verdict} ({summary})`;
 *   replies swap the endpoints back and draw `<-`, unknown direction draws `<>`;
 * - `json`: one JSON object per line, `{"flow":…,"node_name":…,"time":…}` (Hubble's `-o json`);
 * - `dict`: Hubble's key/value block per flow, separated by a dashed line.
 *
 * The first write error sticks: later writes are skipped and `error` reports it.
 */

import { membraneError, type MembraneError } from '../../errors/index.js';
import type { Flow } from '../flow.js';
import { escapeTerminal } from './escape.js';
import { flowTypeName, formatIdentity, formatStampMilli, hostNames, verdictName } from './format.js';
import type { PrinterOption, PrinterOptions, TextWriter } from './options.js';

const DICT_SEPARATOR = '------------';

function defaults(): PrinterOptions {
  return { output: 'compact', writer: process.stdout, nodeName: false, ipTranslation: true, timeZone: 'UTC' };
}

export function resolvePrinterOptions(opts: readonly PrinterOption[]): PrinterOptions {
  const o = defaults();
  for (const opt of opts) opt(o);
  return o;
}

interface Parts {
  time: string;
  node: string;
  src: string;
  srcId: string;
  arrow: '->' | '<-' | '<>';
  dst: string;
  dstId: string;
  type: string;
  verdict: string;
  summary: string;
}

function parts(flow: Flow, o: Pick<PrinterOptions, 'ipTranslation' | 'timeZone'>): Parts {
  let [src, dst] = hostNames(flow, o.ipTranslation);
  let srcId = formatIdentity(flow.source.identity);
  let dstId = formatIdentity(flow.destination.identity);
  let arrow: Parts['arrow'] = '->';
  if (flow.is_reply === undefined) arrow = '<>';
  else if (flow.is_reply) {
    [src, dst] = [dst, src];
    [srcId, dstId] = [dstId, srcId];
    arrow = '<-';
  }
  const e = escapeTerminal;
  return {
    time: formatStampMilli(flow.time, o.timeZone),
    node: e(flow.node_name),
    src: e(src),
    srcId,
    arrow,
    dst: e(dst),
    dstId,
    type: e(flowTypeName(flow)),
    verdict: verdictName(flow),
    summary: e(flow.Summary),
  };
}

function compactLine(flow: Flow, o: Pick<PrinterOptions, 'ipTranslation' | 'timeZone' | 'nodeName'>): string {
  const p = parts(flow, o);
  const node = o.nodeName ? ` [${p.node}]` : '';
  return `${p.time}${node}: ${p.src} ${p.srcId} ${p.arrow} ${p.dst} ${p.dstId} ${p.type} ${p.verdict} (${p.summary})`;
}

/** The compact line for one flow, without the newline. */
export function formatCompact(flow: Flow, ...opts: PrinterOption[]): string {
  return compactLine(flow, resolvePrinterOptions(opts));
}

export class FlowPrinter {
  readonly options: Readonly<PrinterOptions>;
  #writer: TextWriter;
  #error: MembraneError | null = null;
  #lines = 0;

  constructor(...opts: PrinterOption[]) {
    this.options = resolvePrinterOptions(opts);
    this.#writer = this.options.writer;
    this.#writer.on?.('error', (err) => this.#fail(err));
  }

  /** The first write error, if any; once set nothing more is written. */
  get error(): MembraneError | null {
    return this.#error;
  }

  /** Flows written so far. */
  get count(): number {
    return this.#lines;
  }

  /** Writes one flow; false when the writer has failed (now or earlier). */
  write(flow: Flow): boolean {
    if (this.#error) return false;
    let text: string;
    switch (this.options.output) {
      case 'compact':
        text = `${compactLine(flow, this.options)}\n`;
        break;
      case 'json':
        text = `${JSON.stringify({ flow, node_name: flow.node_name, time: flow.time })}\n`;
        break;
      case 'dict':
        text = this.#dict(flow);
        break;
    }
    try {
      this.#writer.write(text);
    } catch (err) {
      this.#fail(err);
      return false;
    }
    if (this.#error) return false;
    this.#lines++;
    return true;
  }

  #dict(flow: Flow): string {
    const p = parts(flow, this.options);
    const lines: string[] = [];
    if (this.#lines > 0) lines.push(DICT_SEPARATOR);
    lines.push(`  TIMESTAMP: ${p.time}`);
    if (this.options.nodeName) lines.push(`       NODE: ${p.node}`);
    // Dict and tab output keep the flow's own source/destination (no reply swap), as Hubble.
    const [src, dst] = hostNames(flow, this.options.ipTranslation);
    lines.push(
      `     SOURCE: ${escapeTerminal(src)}`,
      `DESTINATION: ${escapeTerminal(dst)}`,
      `       TYPE: ${p.type}`,
      `    VERDICT: ${p.verdict}`,
      `    SUMMARY: ${p.summary}`,
    );
    return `${lines.join('\n')}\n`;
  }

  #fail(err: unknown): void {
    if (this.#error) return;
    this.#error = membraneError('MEMBRANE_ERR_OBSERVE_OUTPUT', err instanceof Error ? err.message : String(err), { cause: err });
  }
}
