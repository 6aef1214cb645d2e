/**
 * src/tracing: OpenTelemetry tracing of the proxies, off by default.
 *
 *   tracingConfig(--otlp-endpoint, OTEL_*) ──► startTracing ──► Tracer (SDK 2.x, its own provider,
 *   never the global one) ──► ExporterQueue (bounded, drops counted) ──► OTLP/HTTP protobuf exporter
 *
 * The proxies take the Tracer (l7proxy/trace.ts subscribes the HTTP proxy's diagnostics channels);
 * nothing here runs, and nothing is loaded beyond this module, while tracing is off.
 */
import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import { ExporterQueue, type ExporterQueueStats } from './exporter-queue.js';
import type { SamplerName, TracingConfig } from './config.js';

export { tracingConfig, type TracingConfig, type SamplerName } from './config.js';
export { ExporterQueue, EXPORTER_QUEUE_DEFAULTS, type ExporterQueueOptions, type ExporterQueueStats } from './exporter-queue.js';

/** Instrumentation scope of Membrane's spans. */
export const TRACER_NAME = 'membrane';

export interface Tracing {
  readonly tracer: Tracer;
  readonly config: TracingConfig;
  /** Exported and dropped spans (queue full, export failed). */
  stats(): ExporterQueueStats & { queued: number };
  /** Exports what is queued (bounded by the export timeout), then stops. */
  shutdown(): Promise<void>;
}

function sampler(name: SamplerName, ratio: number): Sampler {
  const root = name.endsWith('always_on') ? new AlwaysOnSampler() : name.endsWith('always_off') ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

export function startTracing(config: TracingConfig): Tracing {
  const exporter = new OTLPTraceExporter({ url: config.tracesUrl, timeoutMillis: config.queue.exportTimeoutMs });
  const queue = new ExporterQueue(exporter, config.queue);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName, 'host.name': config.nodeName, 'k8s.node.name': config.nodeName }),
    sampler: sampler(config.sampler, config.samplerRatio),
    spanProcessors: [queue],
  });
  return {
    tracer: provider.getTracer(TRACER_NAME),
    config,
    stats: () => ({ ...queue.stats, queued: queue.queued }),
    shutdown: () => provider.shutdown(),
  };
}
