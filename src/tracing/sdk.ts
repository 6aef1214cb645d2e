/**
 * The OpenTelemetry SDK side of src/tracing, loaded by `startTracing` only when tracing is on (the
 * SDK and the OTLP exporter take about a second of module loading on a busy node).
 *
 *   Tracer (SDK 2.x, its own provider, never the global one) ──► ExporterQueue (bounded, drops
 *   counted) ──► OTLP/HTTP protobuf exporter
 *
 * `proxyTracer` is what l7proxy/trace.ts drives: a span per request, continued from the request's
 * W3C traceparent when it has a valid one, and the trace headers to send upstream.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
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
import { ExporterQueue } from './exporter-queue.js';
import type { SamplerName, TracingConfig } from './config.js';
import type { ProxyTracer, Tracing, TraceHeaders } from './index.js';

/** Instrumentation scope of Membrane's spans. */
export const TRACER_NAME = 'membrane';

const propagator = new W3CTraceContextPropagator();
const getter: TextMapGetter<TraceHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};
const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

function sampler(name: SamplerName, ratio: number): Sampler {
  const root = name.endsWith('always_on') ? new AlwaysOnSampler() : name.endsWith('always_off') ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

export function startSdk(config: TracingConfig): Tracing {
  const exporter = new OTLPTraceExporter({ url: config.tracesUrl, timeoutMillis: config.queue.exportTimeoutMs });
  const queue = new ExporterQueue(exporter, config.queue);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName, 'host.name': config.nodeName, 'k8s.node.name': config.nodeName }),
    sampler: sampler(config.sampler, config.samplerRatio),
    spanProcessors: [queue],
  });
  const tracer = provider.getTracer(TRACER_NAME);
  const proxyTracer: ProxyTracer = {
    startRequest(headers, name, kind, startTime, attributes) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, getter);
      const span = tracer.startSpan(name, { kind: kind === 'server' ? SpanKind.SERVER : SpanKind.CLIENT, startTime, attributes }, parent);
      const traceHeaders: Record<string, string> = {};
      propagator.inject(trace.setSpan(parent, span), traceHeaders, setter);
      return {
        traceId: span.spanContext().traceId,
        traceHeaders,
        span: {
          setAttribute: (key, value) => void span.setAttribute(key, value),
          setError: (message) => void span.setStatus({ code: SpanStatusCode.ERROR, ...(message !== undefined ? { message } : {}) }),
          child: (childName, start, end, childAttributes) =>
            tracer.startSpan(childName, { kind: SpanKind.INTERNAL, startTime: start, attributes: childAttributes }, trace.setSpan(parent, span)).end(end),
          end: (at) => span.end(at),
        },
      };
    },
  };
  return {
    proxyTracer,
    config,
    stats: () => ({ ...queue.stats, queued: queue.queued }),
    shutdown: () => provider.shutdown(),
  };
}
