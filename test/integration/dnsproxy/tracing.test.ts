/**
 * issue-11 OpenTelemetry through the DNS proxy: the real `dig` → the real DnsProxy, traced by the
 * SDK and exporting OTLP/HTTP protobuf → a real dnsmasq; a local OTLP/HTTP receiver decodes the
 * exports with the OTLP protobuf definitions (test/fixtures/otlp/trace.proto). Asserted: one span
 * per query with the name, qtype, rcode, verdict and learned IPs; the datapath wait as a child
 * span inside it; the span's trace id in both flows and in the access-log line; a denied query's
 * span; and that with tracing off nothing carries a trace id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { traceDnsProxy } from '../../../src/dnsproxy/index.js';
import { startOtlpReceiver, type DecodedSpan } from '../../support/otlp-receiver.js';
import { startTracing, tracingConfig } from '../../../src/tracing/index.js';
import { Cleanups, dig, startDnsmasq, startProxy } from './harness.js';

const ZONE = { a: { 'api.github.com': ['10.9.0.1', '10.9.0.7'] }, ttl: 300 };

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function traced(): Promise<{ spans: DecodedSpan[] }> {
  const otlp = await startOtlpReceiver(cleanups);
  const config = tracingConfig(otlp.url, 'test-node', { OTEL_BSP_SCHEDULE_DELAY: '20' });
  if (!config) throw new Error('tracing should be on');
  const tracing = await startTracing(config);
  cleanups.add(() => tracing.shutdown());
  cleanups.add(traceDnsProxy(tracing.proxyTracer));
  return otlp;
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > ms) throw new Error('condition not met in time');
    await sleep(20);
  }
}

function traceIdOf(flow: { trace_context?: { parent: { trace_id: string } } } | undefined): string | undefined {
  return flow?.trace_context?.parent.trace_id;
}

describe('issue-11 tracing through the DNS proxy', () => {
  it('spans an allowed query (name, qtype, rcode, verdict, learned IPs) with the datapath wait as its child; flows and access log carry the trace id', async () => {
    const otlp = await traced();
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s, { rules: [{ matchName: 'api.github.com' }] });
    // The datapath takes a while to confirm the learned IPs: the answer is held meanwhile.
    p.setOnAnswer(() => sleep(30));

    const r = await dig(p.address, ['api.github.com', 'A']);
    expect(r.status).toBe('NOERROR');
    await until(() => otlp.spans.length === 2, 5000);

    const query = otlp.spans.find((x) => x.name === 'DNS A');
    const wait = otlp.spans.find((x) => x.name === 'DNS datapath wait');
    expect(query).toMatchObject({ kind: 'SPAN_KIND_CLIENT', parentSpanId: '' });
    expect(query?.attributes).toMatchObject({
      'dns.question.name': 'api.github.com.',
      'membrane.dns.qtype': 'A',
      'membrane.dns.rcode': 'NOERROR',
      'membrane.policy.verdict': 'Forwarded',
      'dns.answers': ['10.9.0.1', '10.9.0.7'],
      'membrane.dns.ttl': 300,
      'network.transport': 'udp',
      'server.address': s.ip,
      'server.port': s.port,
      'membrane.source.identity': 41000,
      'membrane.destination.identity': 41001,
      'membrane.source.pod': 'default/mediabot',
      'membrane.destination.pod': 'kube-system/kube-dns',
      'membrane.policy.names': ['default/mediabot-dns'],
    });
    expect(query?.status.code ?? 'STATUS_CODE_UNSET').toBe('STATUS_CODE_UNSET');

    // The wait: a child of the query's span, inside it, as long as the answer was held.
    expect(wait).toMatchObject({ kind: 'SPAN_KIND_INTERNAL', traceId: query?.traceId, parentSpanId: query?.spanId });
    expect(wait?.attributes['dns.answers']).toEqual(['10.9.0.1', '10.9.0.7']);
    expect(wait!.start >= query!.start && wait!.end <= query!.end).toBe(true);
    const heldMs = Number(wait!.end - wait!.start) / 1e6;
    expect(heldMs).toBeGreaterThanOrEqual(25); // onAnswer slept 30 ms: the wait is that one, not another stage
    expect(query?.attributes['membrane.dns.release_ms']).toBeCloseTo(heldMs, 0);

    // The trace id is where an operator looks for it.
    expect(p.flows.map(traceIdOf)).toEqual([query?.traceId, query?.traceId]);
    const line = p.logLines.find((l) => l.type === 'dns');
    expect(line).toMatchObject({ query: 'api.github.com.', verdict: 'Forwarded', trace_id: query?.traceId });
  });

  it('spans a denied query: REFUSED, verdict Denied, an error with the reason, no datapath wait; the request flow and log line carry its trace id', async () => {
    const otlp = await traced();
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s, { rules: [{ matchName: 'api.github.com' }] });

    expect((await dig(p.address, ['support.github.com', 'AAAA'])).status).toBe('REFUSED');
    await until(() => otlp.spans.length === 1, 5000);
    await sleep(100); // a stray datapath-wait span would arrive in the same batch

    expect(otlp.spans).toHaveLength(1);
    const [span] = otlp.spans;
    expect(span).toMatchObject({ name: 'DNS AAAA', kind: 'SPAN_KIND_CLIENT' });
    expect(span?.attributes).toMatchObject({
      'dns.question.name': 'support.github.com.',
      'membrane.dns.qtype': 'AAAA',
      'membrane.dns.rcode': 'REFUSED',
      'membrane.policy.verdict': 'Denied',
      'error.type': 'denied',
    });
    expect(span?.attributes['dns.answers']).toBeUndefined();
    expect(span?.status).toMatchObject({ code: 'STATUS_CODE_ERROR' });
    expect(span?.status.message).toMatch(/support\.github\.com/);
    expect(p.flows.map(traceIdOf)).toEqual([span?.traceId]);
    expect(p.logLines.find((l) => l.type === 'dns')).toMatchObject({ verdict: 'Denied', trace_id: span?.traceId });
  });

  it('with tracing off, no flow and no log line carries a trace id', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s, { rules: [{ matchName: 'api.github.com' }] });
    expect((await dig(p.address, ['api.github.com', 'A'])).status).toBe('NOERROR');
    expect(p.flows).toHaveLength(2);
    expect(p.flows.map(traceIdOf)).toEqual([undefined, undefined]);
    const line = p.logLines.find((l) => l.type === 'dns');
    expect(line).toBeDefined();
    expect(line).not.toHaveProperty('trace_id');
  });
});
