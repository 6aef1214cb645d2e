/**
 * issue-11 OpenTelemetry through the HTTP proxy: curl (the client, with its own W3C traceparent)
 * → the real proxy, traced by the SDK and exporting OTLP/HTTP protobuf → a real upstream; a local
 * OTLP/HTTP receiver decodes the exports with the OTLP protobuf definitions
 * (test/fixtures/otlp/trace.proto). Asserted: the parent chain client span → proxy span → the
 * traceparent the server received, the trace id in the flows, the denied request's span, a trace
 * the proxy starts itself, and that tracing off leaves the request untouched.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { Agent, request } from 'node:http';
import { promisify } from 'node:util';
import { traceHttpProxy } from '../../../src/l7proxy/index.js';
import { startOtlpReceiver } from '../../support/otlp-receiver.js';
import { startTracing, tracingConfig, type Tracing } from '../../../src/tracing/index.js';
import { Cleanups, startProxy, startUpstream, until, type Upstream } from './harness.js';

const run = promisify(execFile);
const HOST = 'deathstar.default.svc.cluster.local';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function tracingTo(endpoint: string, env: NodeJS.ProcessEnv = {}): Promise<Tracing> {
  const config = tracingConfig(endpoint, 'test-node', { OTEL_BSP_SCHEDULE_DELAY: '20', ...env });
  if (!config) throw new Error('tracing should be on');
  const tracing = await startTracing(config);
  cleanups.add(() => tracing.shutdown());
  return tracing;
}

/** An OTLP receiver, tracing to it (`env` as OTEL_* variables), the proxy traced, and a real upstream behind it. */
async function tracedProxy(env: NodeJS.ProcessEnv = {}): Promise<{ otlp: Awaited<ReturnType<typeof startOtlpReceiver>>; tracing: Tracing; up: Upstream; h: Awaited<ReturnType<typeof startProxy>> }> {
  const otlp = await startOtlpReceiver(cleanups);
  const tracing = await tracingTo(otlp.url, env);
  cleanups.add(traceHttpProxy(tracing.proxyTracer));
  const up = await startUpstream(cleanups);
  const h = await startProxy(cleanups, { upstreamPort: up.port, local: 'dst' });
  return { otlp, tracing, up, h };
}

async function curl(port: number, method: string, path: string, traceparent?: string): Promise<number> {
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', method, '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}${path}`];
  if (traceparent) args.push('-H', `traceparent: ${traceparent}`);
  const { stdout } = await run('curl', args);
  return Number(stdout);
}

function receivedTraceparent(up: Upstream, i: number): string | undefined {
  const v = up.requests[i]?.headers.traceparent;
  return typeof v === 'string' ? v : undefined;
}

describe('issue-11 tracing through the HTTP proxy', () => {
  it('continues the client trace: client span → proxy span → the server sees the proxy span as parent; the flows carry the trace id', async () => {
    const { otlp, tracing, up, h } = await tracedProxy();

    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const clientSpan = '00f067aa0ba902b7';
    expect(await curl(h.port, 'POST', '/v1/request-landing', `00-${traceId}-${clientSpan}-01`)).toBe(200);
    await until(() => otlp.spans.length === 1, 5000);

    const [span] = otlp.spans;
    expect(span).toMatchObject({ traceId, parentSpanId: clientSpan, name: 'POST', kind: 'SPAN_KIND_SERVER' });
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/v1/request-landing',
      'server.address': HOST,
      'server.port': up.port,
      'http.response.status_code': 200,
      'membrane.policy.verdict': 'Forwarded',
      'membrane.source.identity': 25698,
      'membrane.destination.identity': 6822,
      'membrane.source.pod': 'default/tiefighter',
      'membrane.destination.pod': 'default/deathstar',
      'membrane.traffic_direction': 'INGRESS',
    });
    // The server's parent is the proxy's span, in the client's trace.
    expect(receivedTraceparent(up, 0)).toBe(`00-${traceId}-${span?.spanId}-01`);
    expect(span?.spanId).not.toBe(clientSpan);
    // Both flows of the exchange carry the trace id (`membrane observe --trace-id`).
    await until(() => h.flows.length === 2);
    expect(h.flows.map((f) => f.trace_context?.parent.trace_id)).toEqual([traceId, traceId]);
    // The receiver's 200 reaches the exporter a moment after the spans reached the receiver.
    await until(() => tracing.stats().exported === 1, 5000);
    expect(tracing.stats()).toMatchObject({ exported: 1, droppedQueueFull: 0, droppedExportFailed: 0, queued: 0 });
  });

  it('a denied request gets a span with the 403 and the reason, and never reaches the server', async () => {
    const { otlp, tracing, up, h } = await tracedProxy();

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    expect(await curl(h.port, 'PUT', '/v1/exhaust-port', `00-${traceId}-b7ad6b7169203331-01`)).toBe(403);
    await until(() => otlp.spans.length === 1, 5000);
    expect(up.requests).toHaveLength(0);
    expect(otlp.spans[0]).toMatchObject({ traceId, parentSpanId: 'b7ad6b7169203331', name: 'PUT' });
    expect(otlp.spans[0]?.attributes).toMatchObject({
      'http.response.status_code': 403,
      'membrane.policy.verdict': 'Denied',
      'membrane.policy.reason': 'ingress: HTTP PUT /v1/exhaust-port matches no HTTP rule',
      'membrane.policy.names': ['default/rule1'],
    });
    // A SERVER span: a 4xx is the client's fault, not the span's (HTTP semantic conventions).
    expect(otlp.spans[0]?.status.code ?? 'STATUS_CODE_UNSET').toBe('STATUS_CODE_UNSET');
    await until(() => h.flows.length === 2);
    expect(h.flows[0]).toMatchObject({ verdict: 'DROPPED', trace_context: { parent: { trace_id: traceId } } });
  });

  it('without a traceparent the proxy starts the trace: a root span, propagated upstream, its id in the request flow', async () => {
    const { otlp, tracing, up, h } = await tracedProxy();

    expect(await curl(h.port, 'POST', '/v1/request-landing')).toBe(200);
    await until(() => otlp.spans.length === 1, 5000);
    const span = otlp.spans[0];
    // What the SDK sent was a protobuf POST to /v1/traces (else the receiver refuses it).
    expect(otlp.refused).toBe(0);
    expect(span?.parentSpanId).toBe('');
    expect(span?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(receivedTraceparent(up, 0)).toBe(`00-${span?.traceId}-${span?.spanId}-01`);
    expect(h.flows[0]?.trace_context?.parent.trace_id).toBe(span?.traceId);
    // The flow lists the request as the client sent it: the proxy's traceparent went upstream only.
    expect(h.flows[0]?.l7?.http?.headers?.map((f) => f.key)).not.toContain('traceparent');
  });

  it('sampled out (traceidratio 0): nothing is exported, the trace context is still propagated', async () => {
    const { otlp, tracing, up, h } = await tracedProxy({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' });

    const traceId = '5bf92f3577b34da6a3ce929d0e0e4736';
    expect(await curl(h.port, 'POST', '/v1/request-landing', `00-${traceId}-00f067aa0ba902b7-01`)).toBe(200);
    await tracing.shutdown();
    expect(otlp.requests).toBe(0);
    expect(receivedTraceparent(up, 0)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
  });


  it('issue-11 an unsampled client trace (flags 00) under the parent-based default: continued unsampled, its tracestate kept, nothing exported, the flow carries its trace id', async () => {
    const { otlp, tracing, up, h } = await tracedProxy();

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const status = await new Promise<number>((resolve, reject) => {
      request(
        {
          port: h.port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/v1/request-landing',
          headers: { host: HOST, traceparent: `00-${traceId}-b7ad6b7169203331-00`, tracestate: 'congo=t61rcWkgMzE' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      )
        .on('error', reject)
        .end();
    });
    expect(status).toBe(200);
    await tracing.shutdown();
    expect(otlp.requests).toBe(0);
    const sent = receivedTraceparent(up, 0);
    expect(sent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    // A new span id (this hop's), not the client's.
    expect(sent).not.toContain('b7ad6b7169203331');
    expect(up.requests[0]?.headers.tracestate).toBe('congo=t61rcWkgMzE');
    const flow = h.flows.find((f) => f.l7?.type === 'REQUEST');
    expect(flow?.trace_context?.parent.trace_id).toBe(traceId);
    expect(flow?.l7?.http?.headers?.find((f) => f.key === 'traceparent')?.value).toBe(`00-${traceId}-b7ad6b7169203331-00`);
  });

  it('issue-11 sampling decided before the span: a root sampled at 50% is exported under the trace id sent upstream (flags 01), one dropped is sent with flags 00 and never exported, and half are sampled', async () => {
    const { otlp, tracing, up, h } = await tracedProxy({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' });

    const N = 400;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    cleanups.add(() => agent.destroy());
    const statuses = await Promise.all(
      Array.from({ length: N }, () =>
        new Promise<number>((resolve, reject) => {
          request({ agent, port: h.port, host: '127.0.0.1', method: 'POST', path: '/v1/request-landing', headers: { host: HOST } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
            .on('error', reject)
            .end();
        }),
      ),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    await tracing.shutdown();
    const sent = up.requests.map((r) => /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/.exec(String(r.headers.traceparent)));
    expect(sent.every((m) => m !== null)).toBe(true);
    const sampled = sent.filter((m) => m?.[3] === '01').map((m) => `${m?.[1]}-${m?.[2]}`);
    // The proxy's decision is the SDK's: exactly the requests sent upstream as sampled have a span,
    // with the trace and span ids the upstream saw.
    expect(otlp.spans.map((s) => `${s.traceId}-${s.spanId}`).sort()).toEqual(sampled.sort());
    // One decision per request: about half (200 ± 10) are sampled; deciding twice, on two trace
    // ids, would sample a quarter (100 ± 9).
    expect(sampled.length).toBeGreaterThan(140);
    // Every request's flow carries the trace id it was sent upstream with, sampled or not.
    const requestFlows = h.flows.filter((f) => f.l7?.type === 'REQUEST');
    expect(requestFlows.map((f) => f.trace_context?.parent.trace_id).sort()).toEqual(sent.map((m) => m?.[1]).sort());
  });

  it('tracing off: the client traceparent reaches the server untouched', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, local: 'dst' });
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(await curl(h.port, 'POST', '/v1/request-landing', tp)).toBe(200);
    expect(receivedTraceparent(up, 0)).toBe(tp);
    expect(await curl(h.port, 'POST', '/v1/request-landing')).toBe(200);
    expect(up.requests[1]?.headers.traceparent).toBeUndefined();
  });

  it('a collector that never answers: requests still succeed, spans beyond the queue are dropped and counted', async () => {
    const otlp = await startOtlpReceiver(cleanups, { stall: true });
    const tracing = await tracingTo(otlp.url, { OTEL_BSP_MAX_QUEUE_SIZE: '2', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1', OTEL_BSP_EXPORT_TIMEOUT: '60000' });
    // Cleanups run last-added first: the collector goes away before the tracer shuts down.
    cleanups.add(() => {
      otlp.server.close();
      otlp.server.closeAllConnections();
    });
    cleanups.add(traceHttpProxy(tracing.proxyTracer));
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, local: 'dst' });

    for (let i = 0; i < 6; i++) expect(await curl(h.port, 'POST', '/v1/request-landing')).toBe(200);
    // One batch of one is stuck in the export, two wait in the queue, three were dropped.
    await until(() => otlp.requests === 1, 5000);
    expect(tracing.stats()).toMatchObject({ exported: 0, queued: 2, droppedQueueFull: 3 });
  });
});

describe('tracing configuration', () => {
  it('off unless an endpoint is given; the flag is a base URL, the traces variable is used as given; OTEL_SDK_DISABLED wins', () => {
    expect(tracingConfig(null, 'n', {})).toBeNull();
    expect(tracingConfig('http://127.0.0.1:4318', 'n', {})?.tracesUrl).toBe('http://127.0.0.1:4318/v1/traces');
    expect(tracingConfig(null, 'n', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })?.tracesUrl).toBe('http://c:4318/v1/traces');
    expect(tracingConfig(null, 'n', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' })?.tracesUrl).toBe('http://c:4318/custom');
    expect(tracingConfig('http://127.0.0.1:4318', 'n', { OTEL_SDK_DISABLED: 'true' })).toBeNull();
    expect(tracingConfig('http://127.0.0.1:4318', 'n', { OTEL_TRACES_EXPORTER: 'none' })).toBeNull();
    expect(tracingConfig('http://127.0.0.1:4318', 'n', {})).toMatchObject({ sampler: 'parentbased_always_on', samplerRatio: 1, serviceName: 'membrane-agent' });
  });

  it('bad values are usage errors naming the flag or variable', () => {
    expect(() => tracingConfig('grpc://c:4317', 'n', {})).toThrow(/--otlp-endpoint .*http:\/\/ or https:\/\//);
    expect(() => tracingConfig('not a url', 'n', {})).toThrow(/--otlp-endpoint "not a url": not a URL/);
    expect(() => tracingConfig('http://c', 'n', { OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER "sometimes"/);
    expect(() => tracingConfig('http://c', 'n', { OTEL_TRACES_SAMPLER_ARG: '1.5' })).toThrow(/OTEL_TRACES_SAMPLER_ARG "1.5"/);
    expect(() => tracingConfig('http://c', 'n', { OTEL_BSP_MAX_QUEUE_SIZE: '-1' })).toThrow(/OTEL_BSP_MAX_QUEUE_SIZE "-1"/);
  });
});
