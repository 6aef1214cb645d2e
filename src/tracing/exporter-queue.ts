/**
 * A bounded span queue in front of an exporter: ending a span never blocks and never fails the
 * request that made it. Spans beyond `maxQueueSize` are dropped and counted; batches go out every
 * `scheduledDelayMs` or as soon as `maxExportBatchSize` are waiting, one export in flight at a time
 * (so a slow collector cannot pile up sockets); a failed or timed-out export counts its spans as
 * dropped. Same knobs and defaults as the SDK's BatchSpanProcessor (OTEL_BSP_*), which drops
 * silently; this one says how many.
 */
import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface ExporterQueueOptions {
  /** OTEL_BSP_MAX_QUEUE_SIZE: spans waiting at most (default 2048). */
  readonly maxQueueSize: number;
  /** OTEL_BSP_MAX_EXPORT_BATCH_SIZE (default 512). */
  readonly maxExportBatchSize: number;
  /** OTEL_BSP_SCHEDULE_DELAY, ms (default 5000). */
  readonly scheduledDelayMs: number;
  /** OTEL_BSP_EXPORT_TIMEOUT, ms (default 30000): an export not done by then counts as failed. */
  readonly exportTimeoutMs: number;
}

export const EXPORTER_QUEUE_DEFAULTS: ExporterQueueOptions = {
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduledDelayMs: 5000,
  exportTimeoutMs: 30_000,
};

export interface ExporterQueueStats {
  /** Spans handed to the exporter and acknowledged. */
  exported: number;
  /** Spans dropped because the queue was full. */
  droppedQueueFull: number;
  /** Spans of exports that failed or timed out. */
  droppedExportFailed: number;
}

export class ExporterQueue implements SpanProcessor {
  readonly stats: ExporterQueueStats = { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 };
  readonly #exporter: SpanExporter;
  readonly #opts: ExporterQueueOptions;
  #queue: ReadableSpan[] = [];
  #timer: NodeJS.Timeout | null = null;
  #exporting: Promise<void> | null = null;
  #shutdown = false;

  constructor(exporter: SpanExporter, opts: Partial<ExporterQueueOptions> = {}) {
    this.#exporter = exporter;
    this.#opts = { ...EXPORTER_QUEUE_DEFAULTS, ...opts };
  }

  /** Spans waiting for export. */
  get queued(): number {
    return this.#queue.length;
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#shutdown || !span.spanContext().traceFlags) return; // not sampled: nothing to send
    if (this.#queue.length >= this.#opts.maxQueueSize) {
      this.stats.droppedQueueFull++;
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#opts.maxExportBatchSize) this.#kick();
    else this.#schedule();
  }

  forceFlush(): Promise<void> {
    return this.#drain();
  }

  /** Exports what is queued, waiting at most `graceMs` (a stopping agent must not hang on a dead collector); the rest is dropped and counted. */
  async shutdown(graceMs = Math.min(this.#opts.exportTimeoutMs, 5000)): Promise<void> {
    if (this.#shutdown) return;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.#drain().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    this.#shutdown = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (!drained) {
      this.stats.droppedExportFailed += this.#queue.length;
      this.#queue = [];
      return; // the exporter's own shutdown would wait for the stuck export
    }
    await this.#exporter.shutdown();
  }

  #schedule(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#kick();
    }, this.#opts.scheduledDelayMs);
    // Pending spans never keep the agent alive; shutdown() flushes them.
    this.#timer.unref();
  }

  /** Starts an export unless one is in flight; what is left waits for the next turn. */
  #kick(): void {
    if (this.#exporting !== null || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#opts.maxExportBatchSize);
    this.#exporting = this.#export(batch).finally(() => {
      this.#exporting = null;
      if (this.#queue.length >= this.#opts.maxExportBatchSize) this.#kick();
      else if (this.#queue.length > 0) this.#schedule();
    });
  }

  #export(batch: ReadableSpan[]): Promise<void> {
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (ok) this.stats.exported += batch.length;
        else this.stats.droppedExportFailed += batch.length;
        resolve();
      };
      const timer = setTimeout(() => settle(false), this.#opts.exportTimeoutMs);
      timer.unref();
      try {
        // ExportResultCode.SUCCESS is 0.
        this.#exporter.export(batch, (result) => settle(result.code === 0));
      } catch {
        settle(false);
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#exporting !== null || this.#queue.length > 0) {
      if (this.#exporting === null) this.#kick();
      await this.#exporting;
    }
  }
}
