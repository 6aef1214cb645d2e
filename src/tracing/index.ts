/**
 * src/tracing: OpenTelemetry tracing of the proxies, off by default.
 *
 *   tracingConfig(--otlp-endpoint, OTEL_*) ──► startTracing ──► (sdk.ts, loaded only now) SDK 2.x
 *   tracer ──► bounded ExporterQueue ──► OTLP/HTTP protobuf ──► the collector
 *   l7proxy/trace.ts ──► Tracing.proxyTracer: a span per request, trace headers for upstream
 *   dnsproxy/trace.ts ──► Tracing.proxyTracer: a span per query, its datapath wait as a child
 *
 * This entry point loads no OpenTelemetry code: the agent and the proxy workers import it always,
 * and pay for the SDK only when tracing is on.
 */
import type { TracingConfig } from './config.js';
import type { ExporterQueueStats } from './exporter-queue.js';

export { tracingConfig, type TracingConfig, type SamplerName } from './config.js';
export { ExporterQueue, EXPORTER_QUEUE_DEFAULTS, type ExporterQueueOptions, type ExporterQueueStats } from './exporter-queue.js';

/** Request headers as Node gives them (the carrier a traceparent is read from). */
export type TraceHeaders = Record<string, string | string[] | undefined>;
export type SpanAttributeValue = string | number | boolean | string[];

/** The span of one proxied request. */
export interface ProxySpan {
  setAttribute(key: string, value: SpanAttributeValue): void;
  /** Span status ERROR, with a message. */
  setError(message: string | undefined): void;
  /**
   * A finished INTERNAL child span from `start` to `end` (a `Date`, or epoch milliseconds with a
   * fraction for sub-millisecond spans): a stage measured after it happened, such as the DNS
   * proxy's datapath wait.
   */
  child(name: string, start: Date | number, end: Date | number, attributes: Record<string, SpanAttributeValue>): void;
  /**
   * Ends the span, now or at `at` (epoch milliseconds with a fraction). A span started at a given
   * time ends at `Date.now()` when no time is given (whole milliseconds): give `at` when a child's
   * sub-millisecond end must stay inside it.
   */
  end(at?: number): void;
}

/** What a proxy needs from a tracer: l7proxy/trace.ts and dnsproxy/trace.ts take one. */
export interface ProxyTracer {
  /**
   * Starts the span of one request: a child of the request's W3C `traceparent` when it carries a
   * valid one, else the root of a new trace. `traceHeaders` (`traceparent`, and `tracestate` when
   * there is one) are what to send upstream so the server's parent is this span. The sampler
   * decides first: an unsampled request (`sampled` false) gets a span that does nothing and still
   * propagates (flags 00, so downstream parent-based samplers drop it too), and `attributes`, when
   * a function, is never called for it.
   */
  startRequest(
    headers: TraceHeaders,
    name: string,
    kind: 'server' | 'client',
    startTime: Date | number,
    attributes: Record<string, SpanAttributeValue> | (() => Record<string, SpanAttributeValue>),
  ): { span: ProxySpan; traceHeaders: Record<string, string>; traceId: string; sampled: boolean };
}

export interface Tracing {
  readonly proxyTracer: ProxyTracer;
  readonly config: TracingConfig;
  /** Exported and dropped spans (queue full, export failed), and spans waiting. */
  stats(): ExporterQueueStats & { queued: number };
  /** Exports what is queued (at most 5 s, or the export timeout if shorter), then stops. */
  shutdown(): Promise<void>;
}

/** Loads the SDK and starts exporting to `config.tracesUrl`. */
export async function startTracing(config: TracingConfig): Promise<Tracing> {
  const { startSdk } = await import('./sdk.js');
  return startSdk(config);
}
