/**
 * Writes flows in one of five forms:
 *
 * - `compact`: one line per flow, exactly Hubble's compact line
 *   `{time}[ [node]]: {src} {srcId} {->|<-|<>} {dst} {dstId} {type} {verdict} ({summary})`;
 *   replies swap the endpoints back and draw `<-`, unknown direction draws `<>`;
 * - `json`: one JSON object per line, `{"flow":…,"node_name":…,"time":…}` (Hubble's `-o json`);
 * - `dict`: Hubble's key/value block per flow, separated by a dashed line;
 * - `jsonpb`: the GetFlowsResponse in proto3's JSON mapping, one per line (the encoder is given);
 * - `table`: Hubble's `TIMESTAMP [NODE] SOURCE DESTINATION TYPE VERDICT SUMMARY` columns, aligned as
 *   Go's tabwriter (min width 2, padding 3) aligns them, so rows are held and written by `close()`
 *   (hubble refuses table output with --follow for the same reason; the rows held are the flows
 *   asked for, at most the agent's ring).
 *
 * The first write error sticks: later writes are skipped and `error` reports it.
 */

import { membraneError, type MembraneError } from '../../errors/index.js';
import type { Flow } from '../flow.js';
import { escapeTerminal } from './escape.js';
import { colorer, type Colorer } from './color.js';
import { flowTypeName, formatIdentity, formatStampMilli, hostNames, verdictName } from './format.js';
import type { PrinterOption, PrinterOptions, TextWriter } from './options.js';
import { formatFlowTime } from './time-format.js';

const DICT_SEPARATOR = '------------';

function defaults(): PrinterOptions {
  return { output: 'compact', writer: process.stdout, nodeName: false, ipTranslation: true, timeZone: 'UTC', timeFormat: 'StampMilli', color: false, jsonpb: null };
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

type PartOptions = Pick<PrinterOptions, 'ipTranslation' | 'timeZone' | 'timeFormat'>;

function flowTimeText(flow: Flow, o: PartOptions): string {
  return o.timeFormat === 'StampMilli' ? formatStampMilli(flow.time, o.timeZone) : formatFlowTime(flow.time, o.timeFormat);
}

function parts(flow: Flow, o: PartOptions, c: Colorer = colorer(false)): Parts {
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
    time: flowTimeText(flow, o),
    node: e(flow.node_name),
    src: c.host(e(src)),
    srcId: c.identity(srcId),
    arrow,
    dst: c.host(e(dst)),
    dstId: c.identity(dstId),
    type: e(flowTypeName(flow)),
    verdict: c.verdict(verdictName(flow)),
    summary: e(flow.Summary),
  };
}

function compactLine(flow: Flow, o: PartOptions & Pick<PrinterOptions, 'nodeName' | 'color'>): string {
  const p = parts(flow, o, colorer(o.color));
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
  #rows: string[][] = [];

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
      case 'jsonpb':
        if (!this.options.jsonpb) throw new Error('jsonpb output needs withJsonpbEncoder');
        text = `${this.options.jsonpb(flow)}\n`;
        break;
      case 'table':
        this.#rows.push(this.#tableRow(flow));
        this.#lines++;
        return true;
    }
    if (!this.#send(text)) return false;
    this.#lines++;
    return true;
  }

  /**
   * Ends the output: table mode writes its header and rows now (nothing when no flow came, as
   * Hubble prints nothing then). Other modes have nothing held. False when the writer failed.
   */
  close(): boolean {
    if (this.options.output !== 'table' || this.#rows.length === 0) return this.#error === null;
    const header = ['TIMESTAMP', ...(this.options.nodeName ? ['NODE'] : []), 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'];
    const text = tabAlign([header, ...this.#rows]);
    this.#rows = [];
    return this.#send(text);
  }

  #send(text: string): boolean {
    if (this.#error) return false;
    try {
      this.#writer.write(text);
    } catch (err) {
      this.#fail(err);
      return false;
    }
    return this.#error === null;
  }

  #tableRow(flow: Flow): string[] {
    const [src, dst] = hostNames(flow, this.options.ipTranslation);
    const e = escapeTerminal;
    return [
      flowTimeText(flow, this.options),
      ...(this.options.nodeName ? [e(flow.node_name)] : []),
      e(src),
      e(dst),
      e(flowTypeName(flow)),
      verdictName(flow),
      e(flow.Summary),
    ];
  }

  #dict(flow: Flow): string {
    const c = colorer(this.options.color);
    const p = parts(flow, this.options, c);
    const lines: string[] = [];
    if (this.#lines > 0) lines.push(DICT_SEPARATOR);
    lines.push(`  TIMESTAMP: ${p.time}`);
    if (this.options.nodeName) lines.push(`       NODE: ${p.node}`);
    // Dict and tab output keep the flow's own source/destination (no reply swap), as Hubble.
    const [src, dst] = hostNames(flow, this.options.ipTranslation);
    lines.push(
      `     SOURCE: ${c.host(escapeTerminal(src))}`,
      `DESTINATION: ${c.host(escapeTerminal(dst))}`,
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

/**
 * Go's text/tabwriter as Hubble sets it up (`NewWriter(w, 2, 0, 3, ' ', 0)`): every cell but a
 * line's last is padded with spaces to its column's widest cell plus 3 (at least 2), widths counted
 * in code points; the last cell is written as it is.
 */
function tabAlign(rows: readonly (readonly string[])[]): string {
  const len = (s: string): number => [...s].length;
  const widths: number[] = [];
  for (const row of rows) {
    for (let i = 0; i < row.length - 1; i++) widths[i] = Math.max(widths[i] ?? 2, len(row[i] ?? '') + 3);
  }
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 2) - len(cell)))).join('') + '\n')
    .join('');
}
