/**
 * The OpenTelemetry SDK side of src/tracing, loaded by `startTracing` only when tracing is on (the
 * SDK and the OTLP exporter take about a second of module loading on a busy node).
 *
 *   Tracer (SDK 2.x, its own provider, never the global one) ──► ExporterQueue (bounded, drops
 *   counted) ──► OTLP/HTTP protobuf exporter
 *
 * `proxyTracer` is what l7proxy/trace.ts drives: a span per request, continued from the request's
 * W3C traceparent when it has a valid one, and the trace headers to send upstream.
 *
 * The sampler decides before any span exists: a request it drops (99 of 100 at 1%) costs the
 * traceparent parse (none when the request has no traceparent), a trace id for a root, the
 * decision and the traceparent sent upstream (a new span id, flags 00, as the SDK's non-recording
 * span would propagate), and never builds its attributes or enters the SDK. A sampled request then
 * starts its span through the SDK with the same trace id (the id generator hands it over), and the
 * configured samplers are deterministic on the parent and the trace id, so the SDK's own decision
 * is the same one.
 *
 * Ids (trace and span, this module's and the SDK's) come from a pool of `crypto.randomFillSync`
 * bytes, hex-encoded by one `Buffer.toString` per id: the SDK's RandomIdGenerator makes each of
 * an id's 32-bit words from `Math.random` and writes them into a buffer first. Measured (micro,
 * the request and done channels, this module and l7proxy/trace.ts): an unsampled request
 * 2.0 → 1.8 µs; what tracing costs a request beyond that was in its flows (l7proxy/trace.ts).
 */
import { randomFillSync } from 'node:crypto';
import { isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type SpanContext, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type IdGenerator,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import { ExporterQueue } from './exporter-queue.js';
import type { SamplerName, TracingConfig } from './config.js';
import type { ProxySpan, ProxyTracer, Tracing, TraceHeaders } from './index.js';

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

/** What an unsampled request's span does: nothing (it is never exported). */
const UNSAMPLED_SPAN: ProxySpan = {
  setAttribute: () => undefined,
  setError: () => undefined,
  child: () => undefined,
  end: () => undefined,
};
const NO_ATTRIBUTES = Object.freeze({});
const NO_LINKS: [] = [];

/** Random bytes for ids, refilled when used up (4 KiB: the ids of ~170 unsampled requests). */
const ID_POOL = Buffer.allocUnsafe(4096);
let idPoolAt = ID_POOL.length;
const ZERO_IDS: Readonly<Record<number, string>> = { 8: '0'.repeat(16), 16: '0'.repeat(32) };

/**
 * A random W3C id of `bytes` bytes as lowercase hex (16: a trace id, 8: a span id); never all
 * zeros (an invalid id, W3C Trace Context §3.2.2.3-4).
 */
export function randomId(bytes: 8 | 16): string {
  for (;;) {
    if (idPoolAt + bytes > ID_POOL.length) {
      randomFillSync(ID_POOL);
      idPoolAt = 0;
    }
    const id = ID_POOL.toString('hex', idPoolAt, (idPoolAt += bytes));
    if (id !== ZERO_IDS[bytes]) return id;
  }
}

function sampler(name: SamplerName, ratio: number): Sampler {
  const root = name.endsWith('always_on') ? new AlwaysOnSampler() : name.endsWith('always_off') ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

export function startSdk(config: TracingConfig): Tracing {
  const exporter = new OTLPTraceExporter({ url: config.tracesUrl, timeoutMillis: config.queue.exportTimeoutMs });
  const queue = new ExporterQueue(exporter, config.queue);
  const decide = sampler(config.sampler, config.samplerRatio);
  // The trace id a sampled root request was decided on, handed to the SDK's startSpan.
  let decidedTraceId: string | undefined;
  const idGenerator: IdGenerator = {
    generateTraceId: () => {
      const id = decidedTraceId ?? randomId(16);
      decidedTraceId = undefined;
      return id;
    },
    generateSpanId: () => randomId(8),
  };
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName, 'host.name': config.nodeName, 'k8s.node.name': config.nodeName }),
    sampler: decide,
    idGenerator,
    spanProcessors: [queue],
  });
  const tracer = provider.getTracer(TRACER_NAME);
  const proxyTracer: ProxyTracer = {
    startRequest(headers, name, kind, startTime, attributes) {
      // Most requests carry no traceparent: no propagator, no context to read it back from.
      let parent: Context = ROOT_CONTEXT;
      let parentSpan: SpanContext | undefined;
      if (headers.traceparent !== undefined) {
        parent = propagator.extract(ROOT_CONTEXT, headers, getter);
        parentSpan = trace.getSpanContext(parent);
      }
      const valid = parentSpan !== undefined && isSpanContextValid(parentSpan);
      const traceId = valid ? parentSpan!.traceId : randomId(16);
      const spanKind = kind === 'server' ? SpanKind.SERVER : SpanKind.CLIENT;
      // The configured samplers read neither attributes nor links.
      if (decide.shouldSample(parent, traceId, name, spanKind, NO_ATTRIBUTES, NO_LINKS).decision !== SamplingDecision.RECORD_AND_SAMPLED) {
        const traceHeaders: Record<string, string> = { traceparent: `00-${traceId}-${randomId(8)}-00` };
        const state = valid ? parentSpan!.traceState?.serialize() : undefined;
        if (state) traceHeaders.tracestate = state;
        return { traceId, traceHeaders, span: UNSAMPLED_SPAN, sampled: false };
      }
      if (!valid) decidedTraceId = traceId;
      const span = tracer.startSpan(name, { kind: spanKind, startTime, attributes: typeof attributes === 'function' ? attributes() : attributes }, parent);
      decidedTraceId = undefined;
      const traceHeaders: Record<string, string> = {};
      propagator.inject(trace.setSpan(parent, span), traceHeaders, setter);
      return {
        traceId: span.spanContext().traceId,
        traceHeaders,
        sampled: true,
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
