/**
 * OpenTelemetry spans for the HTTP proxy, hooked on its diagnostics channels (diagnostics.ts):
 * with tracing off nobody subscribes and the proxy pays the one `hasSubscribers` branch it
 * already had. With a tracer (src/tracing's ProxyTracer; this module loads no OpenTelemetry code):
 *
 *   membrane:l7proxy:request (after the policy decision, before the request flow and the forward)
 *     → continue the client's W3C `traceparent` (or start a trace), one span per request, the
 *       `traceparent`/`tracestate` sent upstream rewritten so the upstream sees this span as parent
 *       (the request flow lists the headers as the client sent them), and `traceContext` set so
 *       the flows and the access log carry the trace id
 *   membrane:l7proxy:done (relayed, denied, failed or aborted)
 *     → status code, `membrane.policy.verdict` (the access log's Forwarded / Denied / Error), the
 *       reason of a denial or failure, then the span ends
 *
 * Attributes follow the stable HTTP semantic conventions (http.request.method, url.path,
 * server.address, http.response.status_code, …) plus the identities and pods Membrane knows from
 * the kernel. Span status follows the conventions too: 5xx is an error; 4xx (a 403 denial
 * included) is an error on a CLIENT span (egress policy) and unset on a SERVER span (ingress).
 */
import { channels } from './diagnostics.js';
import type { Exchange } from './log.js';
import type { ParsedRequest } from './parse.js';
import type { ProxySpan, ProxyTracer, SpanAttributeValue } from '../tracing/index.js';

type Attributes = Record<string, SpanAttributeValue>;

function podOf(ep: { namespace: string; pod_name: string }): string {
  return ep.pod_name ? `${ep.namespace}/${ep.pod_name}` : '';
}

function hostName(host: string): string {
  // `[v6]:port`, `name:port` or a bare name.
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const i = host.lastIndexOf(':');
  return i < 0 ? host : host.slice(0, i);
}

function startAttributes(x: Exchange): Attributes {
  const r = x.request;
  const q = r.path.indexOf('?');
  const attrs: Attributes = {
    'http.request.method': r.method,
    'url.scheme': 'http',
    'url.path': q < 0 ? r.path : r.path.slice(0, q),
    'server.address': hostName(r.host) || x.conn.dstIp,
    'server.port': x.conn.dstPort,
    'client.address': x.conn.srcIp,
    'client.port': x.conn.srcPort,
    'network.protocol.name': 'http',
    'network.protocol.version': r.protocol.replace(/^HTTP\//, ''),
    'membrane.traffic_direction': x.ctx.direction,
    'membrane.source.identity': x.ctx.srcIdentity,
    'membrane.destination.identity': x.ctx.dstIdentity,
    'membrane.source.pod': podOf(x.ctx.source),
    'membrane.destination.pod': podOf(x.ctx.destination),
  };
  if (q >= 0) attrs['url.query'] = r.path.slice(q + 1);
  const ua = r.headers['user-agent'];
  if (typeof ua === 'string') attrs['user_agent.original'] = ua;
  return attrs;
}

/**
 * The headers to send upstream: the request's with its trace headers (every copy) replaced by
 * `values` (`upstreamRawHeaders`, and the header object, which HTTP/2 forwards). `rawHeaders`, what
 * the request flow lists, stays as the client sent it: the proxy's own traceparent differs on
 * every request, and a list that repeats is one the flow builders make and serialise once
 * (l7proxy/headers.ts, proxyworker/flow-json.ts: measured, listing it cost 6 µs per request in
 * the worker); the flow carries the trace id in `trace_context`.
 */
function setTraceHeaders(r: ParsedRequest, values: Record<string, string>): void {
  const raw = r.rawHeaders;
  if (r.headers.traceparent === undefined && r.headers.tracestate === undefined) {
    // Neither header came (Node's header object has every name lowercased): nothing to remove.
    const kept = raw.slice();
    for (const k in values) {
      const v = values[k] as string;
      kept.push(k, v);
      r.headers[k] = v;
    }
    r.upstreamRawHeaders = kept;
    return;
  }
  let kept = raw;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    // Only a name of either length can be a trace header: no lowercasing of every other name.
    if (name.length !== 11 && name.length !== 10) continue;
    const lower = name.toLowerCase();
    if (lower !== 'traceparent' && lower !== 'tracestate') continue;
    if (kept === raw) kept = raw.slice(0, i);
    for (let j = i + 2; j + 1 < raw.length; j += 2) {
      const n = (raw[j] as string).toLowerCase();
      if (n !== 'traceparent' && n !== 'tracestate') kept.push(raw[j] as string, raw[j + 1] as string);
    }
    break;
  }
  // A new array either way: the original may be the IncomingMessage's own.
  if (kept === raw) kept = raw.slice();
  delete r.headers.traceparent;
  delete r.headers.tracestate;
  for (const k in values) {
    const v = values[k] as string;
    kept.push(k, v);
    r.headers[k] = v;
  }
  r.upstreamRawHeaders = kept;
}

/**
 * Traces every request of every HttpProxy in this thread (diagnostics channels are per thread:
 * a proxy worker calls this with its own tracer). Returns the unsubscribe.
 */
export function traceHttpProxy(tracer: ProxyTracer): () => void {
  const spans = new WeakMap<Exchange, ProxySpan>();

  const onRequest = (message: unknown): void => {
    const x = (message as { exchange: Exchange }).exchange;
    const kind = x.ctx.direction === 'INGRESS' ? 'server' : 'client';
    const { span, traceHeaders, traceId, sampled } = tracer.startRequest(x.request.headers, x.request.method, kind, x.startedAt, () => startAttributes(x));
    if (sampled) spans.set(x, span);
    setTraceHeaders(x.request, traceHeaders);
    x.request.traceContext = { parent: { trace_id: traceId } };
  };

  const onDone = (message: unknown): void => {
    const x = (message as { exchange: Exchange }).exchange;
    const span = spans.get(x);
    if (span === undefined) return;
    spans.delete(x);
    const status = x.status ?? 0;
    if (status > 0) span.setAttribute('http.response.status_code', status);
    if (x.verdict !== undefined) span.setAttribute('membrane.policy.verdict', x.verdict);
    if (x.reason !== undefined) span.setAttribute('membrane.policy.reason', x.reason);
    const policies = x.decision.policies;
    if (policies !== undefined && policies.length > 0) span.setAttribute('membrane.policy.names', policies);
    const clientSpan = x.ctx.direction !== 'INGRESS';
    if (x.verdict === 'Error' || status >= 500 || (clientSpan && status >= 400)) {
      span.setAttribute('error.type', status > 0 ? String(status) : 'aborted');
      span.setError(x.reason);
    }
    span.end();
  };

  channels.request.subscribe(onRequest);
  channels.done.subscribe(onDone);
  return () => {
    channels.request.unsubscribe(onRequest);
    channels.done.unsubscribe(onDone);
  };
}
