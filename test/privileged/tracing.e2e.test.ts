/**
 * issue-11 traces through the real agent: the agent (its proxies in worker threads, the default)
 * with --otlp-endpoint, the Star Wars lab and its L7 rule, curl in tiefighter sending its own W3C
 * traceparent. An OTLP/HTTP receiver in the node namespace decodes the exports with the OTLP
 * protobuf definitions. Asserted: client span → proxy span → the traceparent deathstar received,
 * the denied PUT's span (403 and the reason), and `membrane observe --trace-id` finding the flows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TestNode, eventually, privilegedSkipReason, starwarsLab, ROOT } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'tracing';
const P = 'tr';
const SUBNET = '10.227';
const OTLP_PORT = 4318;
const METRICS_ADDR = '127.0.0.1:9962';
const URL_LAND = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const URL_EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  attributes: Record<string, unknown>;
}

describe.skipIf(skip !== null)('issue-11 the agent traces its HTTP proxy to an OTLP collector' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  let receiver: ChildProcess | null = null;
  const spans: ReceivedSpan[] = [];

  /** curl in a pod with a traceparent header; returns the HTTP status. */
  function curlTraced(pod: string, method: string, url: string, traceparent: string): number {
    const r = spawnSync('ip', ['netns', 'exec', pod, 'curl', '-s', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', '-X', method, '-H', `traceparent: ${traceparent}`, url], { encoding: 'utf8' });
    return Number(r.stdout);
  }

  beforeAll(async () => {
    TestNode.sweep(ID, [`${P}-ds`, `${P}-tie`, `${P}-xw`]);
    node = new TestNode(ID);
    // The node namespace exists before the agent: the receiver listens there, where the agent sends.
    spawnSync('ip', ['netns', 'add', node.netns]);
    spawnSync('ip', ['netns', 'exec', node.netns, 'ip', 'link', 'set', 'lo', 'up']);
    receiver = spawn('nsenter', [`--net=/run/netns/${node.netns}`, process.execPath, join(ROOT, 'test/privileged/otlp-receiver.mjs'), String(OTLP_PORT)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let listening = false;
    createInterface({ input: receiver.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as ReceivedSpan | { listening: number };
      if ('listening' in m) listening = true;
      else spans.push(m);
    });
    expect(await eventually(() => listening, 10_000)).toBe(true);

    // A short batch delay so the test does not wait the default 5 s for each export.
    process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
    try {
      await node.startAgent(['--otlp-endpoint', `http://127.0.0.1:${OTLP_PORT}`, '--prometheus-serve-addr', METRICS_ADDR]);
    } finally {
      delete process.env.OTEL_BSP_SCHEDULE_DELAY;
    }
    await node.labUp(starwarsLab(P, SUBNET));
    const imp = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/starwars/sw_l3_l4_l7_policy.yaml')]);
    expect(imp.stdout).toContain('Imported rule1');
  }, 90_000);

  afterAll(async () => {
    await node?.cleanup();
    if (receiver?.pid !== undefined && receiver.exitCode === null) process.kill(receiver.pid, 'SIGTERM');
  });

  it('client span → proxy span → deathstar sees the proxy span as its parent; observe --trace-id finds the flows', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const clientSpan = '00f067aa0ba902b7';
    expect(curlTraced(`${P}-tie`, 'POST', URL_LAND, `00-${traceId}-${clientSpan}-01`)).toBe(200);

    expect(await eventually(() => spans.some((s) => s.traceId === traceId), 15_000, 100)).toBe(true);
    const span = spans.find((s) => s.traceId === traceId)!;
    expect(span).toMatchObject({ parentSpanId: clientSpan, name: 'POST', kind: 'SPAN_KIND_SERVER' });
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/v1/request-landing',
      'server.address': 'deathstar.default.svc.cluster.local',
      'http.response.status_code': 200,
      'membrane.policy.verdict': 'Forwarded',
      'membrane.source.pod': `default/${P}-tie`,
      'membrane.destination.pod': `default/${P}-ds`,
    });

    const landed = node
      .serverLog(`${P}-ds`)
      .split('\n')
      .filter((l) => l.includes('/v1/request-landing'))
      .map((l) => JSON.parse(l) as { traceparent?: string });
    expect(landed.at(-1)?.traceparent).toBe(`00-${traceId}-${span.spanId}-01`);

    const observed = node.cli(['observe', '--trace-id', traceId, '-o', 'json']);
    expect(observed.status).toBe(0);
    const flows = observed.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { flow?: { l7?: { type: string } }; l7?: { type: string } });
    expect(flows.map((f) => (f.flow ?? f).l7?.type).sort()).toEqual(['REQUEST', 'RESPONSE']);
  });

  it('the denied PUT has a span with the 403 and the policy reason', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    expect(curlTraced(`${P}-tie`, 'PUT', URL_EXHAUST, `00-${traceId}-b7ad6b7169203331-01`)).toBe(403);
    expect(await eventually(() => spans.some((s) => s.traceId === traceId), 15_000, 100)).toBe(true);
    const span = spans.find((s) => s.traceId === traceId)!;
    expect(span.parentSpanId).toBe('b7ad6b7169203331');
    expect(span.attributes).toMatchObject({
      'http.response.status_code': 403,
      'membrane.policy.verdict': 'Denied',
      'membrane.policy.reason': 'ingress: HTTP PUT /v1/exhaust-port matches no HTTP rule',
    });
    expect(node.serverLog(`${P}-ds`)).not.toContain('exhaust-port');
  });

  it('the metrics count the spans the proxy workers exported, and none dropped', async () => {
    const sample = (name: string): number => {
      const r = spawnSync('ip', ['netns', 'exec', node.netns, 'curl', '-s', `http://${METRICS_ADDR}/metrics`], { encoding: 'utf8' });
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${name} `));
      return line ? Number(line.split(' ')[1]) : -1;
    };
    expect(await eventually(() => sample('membrane_otlp_spans_exported_total') >= 2, 10_000, 200)).toBe(true);
    expect(sample('membrane_otlp_spans_dropped_total{reason="queue_full"}')).toBe(0);
    expect(sample('membrane_otlp_spans_dropped_total{reason="export_failed"}')).toBe(0);
  });
});
