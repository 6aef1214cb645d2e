/**
 * OpenTelemetry spans for the DNS proxy, hooked on its diagnostics channels (diagnostics.ts), as
 * l7proxy/trace.ts does for HTTP: with tracing off nobody subscribes and the proxy pays its
 * `hasSubscribers` branches only. With a tracer (src/tracing's ProxyTracer; no OpenTelemetry code
 * is loaded here):
 *
 *   membrane:dnsproxy:query (after the policy decision, before the request flow)
 *     → a CLIENT span `DNS <qtype>` per query, the root of a new trace (a DNS message carries no
 *       trace context), and `traceContext` set so both flows and the access-log line carry its id
 *   membrane:dnsproxy:released (the learned IPs reached the datapath; the answer goes out next)
 *     → a child span `DNS datapath wait` over exactly the time the answer was held
 *   membrane:dnsproxy:done (relayed, refused, SERVFAIL, or rejected before policy)
 *     → rcode, `membrane.policy.verdict` (the access log's Forwarded / Denied / Error), the learned
 *       IPs (`dns.answers`), the reason of a denial or failure, then the span ends
 *
 * A query rejected before policy (not a QUERY opcode, several questions, too many in flight) has
 * no `query` event: its span starts at `done`, from the exchange's start time, and its access-log
 * line (already written) has no trace id.
 *
 * Attributes: `dns.question.name` and `dns.answers` of the OpenTelemetry DNS conventions
 * (development status), `network.transport`, `server.*`/`client.*`, and Membrane's own
 * `membrane.dns.*`, identities and pods as on the HTTP spans. Status: a denial (the client got
 * REFUSED or NXDOMAIN from policy) and our own SERVFAIL are errors; an upstream NXDOMAIN is not.
 */
import { channels } from './diagnostics.js';
import type { DnsExchange } from './log.js';
import { rcodeMnemonic, typeName } from './wire.js';
import type { ProxySpan, ProxyTracer, SpanAttributeValue } from '../tracing/index.js';

type Attributes = Record<string, SpanAttributeValue>;

const NO_HEADERS = {};

function podOf(ep: { namespace: string; pod_name: string }): string {
  return ep.pod_name ? `${ep.namespace}/${ep.pod_name}` : '';
}

function startAttributes(x: DnsExchange): Attributes {
  return {
    'dns.question.name': x.qname,
    'membrane.dns.qtype': typeName(x.qtype),
    'membrane.dns.id': x.id,
    'network.transport': x.protocol === 17 ? 'udp' : 'tcp',
    'network.protocol.name': 'dns',
    'server.address': x.server.ip,
    'server.port': x.server.port,
    'client.address': x.client.ip,
    'client.port': x.client.port,
    'membrane.traffic_direction': 'EGRESS',
    'membrane.source.identity': x.source.identity,
    'membrane.destination.identity': x.decision.dstIdentity,
    'membrane.source.pod': podOf(x.source.flowEndpoint),
    'membrane.destination.pod': podOf(x.destination),
  };
}

/** Epoch milliseconds with a sub-millisecond fraction (OpenTelemetry's numeric TimeInput). */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Traces every query of every DnsProxy in this thread (diagnostics channels are per thread: a
 * proxy worker calls this with its own tracer). Returns the unsubscribe.
 */
export function traceDnsProxy(tracer: ProxyTracer): () => void {
  const spans = new WeakMap<DnsExchange, ProxySpan>();

  const start = (x: DnsExchange): ProxySpan => {
    // On the clock the child and the end use (sub-millisecond), so the child stays inside.
    const startMs = nowMs() - Number(process.hrtime.bigint() - x.startNs) / 1e6;
    const { span, traceId } = tracer.startRequest(NO_HEADERS, `DNS ${typeName(x.qtype)}`, 'client', startMs, () => startAttributes(x));
    spans.set(x, span);
    x.traceContext = { parent: { trace_id: traceId } };
    return span;
  };

  const onQuery = (message: unknown): void => {
    start((message as { exchange: DnsExchange }).exchange);
  };

  const onReleased = (message: unknown): void => {
    const x = (message as { exchange: DnsExchange }).exchange;
    const span = spans.get(x);
    if (span === undefined || x.releaseDelayNs === undefined) return;
    const end = nowMs();
    span.child('DNS datapath wait', end - Number(x.releaseDelayNs) / 1e6, end, {
      'dns.answers': x.answer?.ips ?? [],
      'membrane.dns.ttl': x.answer?.ttl ?? 0,
    });
  };

  const onDone = (message: unknown): void => {
    const x = (message as { exchange: DnsExchange }).exchange;
    const span = spans.get(x) ?? start(x);
    spans.delete(x);
    const verdict = x.verdict ?? 'Error';
    span.setAttribute('membrane.dns.rcode', rcodeMnemonic(x.rcode ?? 2));
    span.setAttribute('membrane.policy.verdict', verdict);
    if (x.reason !== undefined) span.setAttribute('membrane.policy.reason', x.reason);
    if (x.decision.policies.length > 0) span.setAttribute('membrane.policy.names', x.decision.policies);
    if (x.answer) {
      span.setAttribute('dns.answers', x.answer.ips);
      span.setAttribute('membrane.dns.ttl', x.answer.ttl);
      if (x.answer.cnames.length > 0) span.setAttribute('membrane.dns.cnames', x.answer.cnames);
    }
    if (x.releaseDelayNs !== undefined) span.setAttribute('membrane.dns.release_ms', Number(x.releaseDelayNs) / 1e6);
    if (verdict !== 'Forwarded') {
      span.setAttribute('error.type', verdict === 'Denied' ? 'denied' : rcodeMnemonic(x.rcode ?? 2));
      span.setError(x.reason);
    }
    span.end(nowMs());
  };

  channels.query.subscribe(onQuery);
  channels.released.subscribe(onReleased);
  channels.done.subscribe(onDone);
  return () => {
    channels.query.unsubscribe(onQuery);
    channels.released.unsubscribe(onReleased);
    channels.done.unsubscribe(onDone);
  };
}
