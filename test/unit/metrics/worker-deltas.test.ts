/**
 * Issue 11: a proxy worker counts its own flows and sends what changed with its batches; the agent
 * adds those deltas to its metrics. A Prometheus user must not be able to tell: the exposition is
 * the same as when the agent counts the same flows itself, series overflowing into `_OTHER` and
 * histogram buckets included. The worker side is the real Outbox the worker sends its batches with.
 */
import { describe, expect, it } from 'vitest';
import { createFlowMetrics, MAX_SERIES_PER_METRIC, MembraneMetrics, type MetricsSources } from '../../../src/metrics/index.js';
import { httpRequestFlow, httpResponseFlow, type Flow, type FlowEndpoint } from '../../../src/observe/index.js';
import { Outbox, type OutboxBatch } from '../../../src/proxyworker/outbox.js';

const tiefighter: FlowEndpoint = { ID: 2, identity: 257, namespace: 'default', labels: ['k8s:class=tiefighter'], pod_name: 'tiefighter' };
const deathstar: FlowEndpoint = { ID: 1, identity: 256, namespace: 'default', labels: ['k8s:class=deathstar'], pod_name: 'deathstar' };

function sources(): MetricsSources {
  return {
    readCounters: () => [],
    mapPressure: () => [],
    endpoints: () => 2,
    identities: () => [256, 257],
    policy: () => ({ policies: 1, revision: 1 }),
    fqdn: () => null,
    proxies: () => ({ http: { connections: 0, inflight: 0 }, dns: null, tls: null }),
  };
}

// Latencies of dyadic seconds: sums are exact whatever order they are added in, so the text compares exactly.
const LATENCIES_NS = [3_906_250, 62_500_000, 125_000_000, 500_000_000, 1_000_000_000, 4_000_000_000, 16_000_000_000];

/** Request/response pairs: `statuses` distinct codes (pod traffic chooses them: past the series bound they are `_OTHER`), some denied with a local 403. */
function exchanges(statuses: number): Flow[] {
  const out: Flow[] = [];
  for (let i = 0; i < statuses; i++) {
    const denied = i % 7 === 3;
    const method = i % 5 === 0 ? 'BREW' : i % 2 === 0 ? 'GET' : 'POST';
    const x = {
      source: tiefighter,
      destination: deathstar,
      ip: { source: '10.77.1.3', destination: '10.77.1.2' },
      sourcePort: 40000 + (i % 50),
      destinationPort: 80,
      direction: i % 3 === 0 ? ('EGRESS' as const) : ('INGRESS' as const),
      nodeName: 'node-1',
    };
    const http = { method, url: `http://deathstar/v1/${i}`, protocol: 'HTTP/1.1', headers: [] };
    out.push(httpRequestFlow({ ...x, http, verdict: denied ? 'DROPPED' : 'FORWARDED' }));
    out.push(httpResponseFlow({ ...x, http: { ...http, code: denied ? 403 : 100 + i }, latencyNs: LATENCIES_NS[i % LATENCIES_NS.length]!, verdict: 'FORWARDED' }));
  }
  return out;
}

/** A worker's outbox whose batches the agent takes as the pool does: merge the deltas, ack. */
function workerTo(agent: MembraneMetrics, max = 100_000): { outbox: Outbox; batches: OutboxBatch[] } {
  const batches: OutboxBatch[] = [];
  const outbox: Outbox = new Outbox(
    max,
    (b) => {
      batches.push(b);
      if (b.metrics) agent.mergeFlows(b.metrics);
      queueMicrotask(() => outbox.ack(b.flowCount, b.lineCount));
    },
    createFlowMetrics(null),
  );
  return { outbox, batches };
}

describe('flow metrics counted in a worker and merged by the agent (issue 11)', () => {
  it('give the same exposition as counting the same flows in the agent, past the series bound and in histograms', async () => {
    const flows = exchanges(Math.ceil(MAX_SERIES_PER_METRIC * 1.3)); // 6 in 7 with their own status
    const direct = new MembraneMetrics(sources(), { processMetrics: false });
    for (const f of flows) direct.countFlow(f);

    const agent = new MembraneMetrics(sources(), { processMetrics: false });
    const { outbox, batches } = workerTo(agent);
    for (let i = 0; i < flows.length; i++) {
      outbox.flow(flows[i]!);
      if (i % 97 === 0) outbox.flush(); // batches of every size, as the timer cuts them
    }
    outbox.flush();
    expect(batches.length).toBeGreaterThan(10);
    expect(batches.reduce((n, b) => n + b.flowCount, 0)).toBe(flows.length);

    const want = await direct.scrape();
    expect(want).toContain('hubble_http_requests_total{method="_OTHER",protocol="_OTHER",status="_OTHER",reporter="_OTHER"}');
    expect(want).toMatch(/hubble_http_request_duration_seconds_bucket\{method="GET",reporter="server",le="0.005"\} [1-9]/);
    expect(want).toMatch(/cilium_proxy_upstream_reply_seconds_sum\{error="allow",protocol_l7="http",scope="upstreamTime"\} [1-9]/);
    expect(await agent.scrape()).toBe(want);
  });

  it('a delta carries only the series counted since the previous batch, restarted at zero', async () => {
    const agent = new MembraneMetrics(sources(), { processMetrics: false });
    const { outbox, batches } = workerTo(agent);
    const [req, resp] = exchanges(1) as [Flow, Flow];
    outbox.flow(req);
    outbox.flow(resp);
    outbox.flush();
    outbox.flow(resp);
    outbox.flush();
    const second = batches[1]!.metrics!;
    expect(Object.keys(second).sort()).toEqual(['flowsProcessed', 'httpDuration', 'httpRequests', 'policyVerdicts', 'upstreamReply']);
    expect(second.httpRequests).toEqual([[['_OTHER', 'HTTP/1.1', '100', 'client'], 1]]);
    expect(second.httpDuration?.[0]?.[3]).toBe(1);
    expect(await agent.scrape()).toContain('hubble_http_requests_total{method="_OTHER",protocol="HTTP/1.1",status="100",reporter="client"} 2');
  });

  it('flows the outbox drops for a full queue are still counted; deltas alone are sent', async () => {
    const agent = new MembraneMetrics(sources(), { processMetrics: false });
    const sent: OutboxBatch[] = [];
    // No ack ever comes: one flow in flight, the rest dropped.
    const outbox = new Outbox(1, (b) => sent.push(b), createFlowMetrics(null));
    const [first, ...rest] = exchanges(3);
    outbox.flow(first!);
    outbox.flush();
    for (const f of rest) outbox.flow(f);
    expect(outbox.droppedFlows).toBe(5);
    outbox.flush();
    for (const b of sent) if (b.metrics) agent.mergeFlows(b.metrics);
    expect(sent.map((b) => b.flowCount)).toEqual([1, 0]);
    expect(await agent.scrape()).toContain('cilium_policy_l7_total{rule="received",proxy_type="http"} 3');
  });

  it('without metrics a batch carries no deltas', () => {
    const sent: OutboxBatch[] = [];
    const outbox = new Outbox(10, (b) => sent.push(b));
    for (const f of exchanges(1)) outbox.flow(f);
    outbox.flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.metrics).toBeUndefined();
  });
});
