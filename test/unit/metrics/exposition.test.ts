/**
 * The Prometheus exposition a Cilium/Hubble user scrapes: metric names, label names and values as
 * Cilium's metrics reference and Hubble's handlers give them, counted from real flows (observe's
 * builders, as the agent and the proxies build them) and from datapath counters, served over a
 * real HTTP listener.
 */
import { describe, expect, it, afterEach } from 'vitest';
import { createServer } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { MAX_SERIES_PER_METRIC, MembraneMetrics, MetricsServer, parseServeAddr, type MetricsSources } from '../../../src/metrics/index.js';
import {
  dnsRequestFlow,
  dnsResponseFlow,
  dropFlow,
  httpRequestFlow,
  httpResponseFlow,
  policyVerdictFlow,
  type FlowEndpoint,
} from '../../../src/observe/index.js';
import type { MapPressure, MetricsCounter } from '../../../src/datapath/index.js';
import { isMembraneError } from '../../../src/errors/index.js';

const xwing: FlowEndpoint = { ID: 3, identity: 258, namespace: 'default', labels: ['k8s:class=xwing'], pod_name: 'xwing' };
const tiefighter: FlowEndpoint = { ID: 2, identity: 257, namespace: 'default', labels: ['k8s:class=tiefighter'], pod_name: 'tiefighter' };
const deathstar: FlowEndpoint = { ID: 1, identity: 256, namespace: 'default', labels: ['k8s:class=deathstar'], pod_name: 'deathstar' };
const node = 'node-1';

/** In-memory agent state; `counters` and `pressure` change between scrapes like the kernel's. */
function sources(): MetricsSources & { counters: MetricsCounter[]; pressure: MapPressure[]; pressureReads: number } {
  const s = {
    counters: [] as MetricsCounter[],
    pressure: [] as MapPressure[],
    pressureReads: 0,
    readCounters: () => s.counters,
    mapPressure: () => {
      s.pressureReads++;
      return s.pressure;
    },
    endpoints: () => 3,
    identities: () => [1, 2, 256, 257, 258, (1 << 24) + 1],
    policy: () => ({ policies: 2, revision: 7 }),
    fqdn: () => ({ names: 4, ips: 6, zombies: 1 }),
    proxies: () => ({ http: { connections: 5, inflight: 2 }, dns: { connections: 1, inflight: 0 }, tls: null }),
    tracing: () => ({ exported: 40, droppedQueueFull: 3, droppedExportFailed: 1 }),
  };
  return s;
}

/** `name{labels} value` lines of the exposition → value by `name{sorted labels}`. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}

function metricType(text: string, name: string): string | undefined {
  return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
}

describe('metrics exposition', () => {
  it('datapath counters become cilium_drop_*/cilium_forward_* by Cilium reason text and direction', async () => {
    const src = sources();
    const m = new MembraneMetrics(src, { processMetrics: false });
    src.counters = [
      { reason: 0, direction: 'EGRESS', packets: 10n, bytes: 1000n },
      { reason: 0, direction: 'INGRESS', packets: 8n, bytes: 800n },
      { reason: 133, direction: 'INGRESS', packets: 3n, bytes: 180n },
      { reason: 181, direction: 'EGRESS', packets: 1n, bytes: 60n },
    ];
    let text = await m.scrape();
    let s = samples(text);
    expect(metricType(text, 'cilium_drop_count_total')).toBe('counter');
    expect(s.get('cilium_drop_count_total{direction="INGRESS",reason="Policy denied"}')).toBe(3);
    expect(s.get('cilium_drop_bytes_total{direction="INGRESS",reason="Policy denied"}')).toBe(180);
    expect(s.get('cilium_drop_count_total{direction="EGRESS",reason="Policy denied by denylist"}')).toBe(1);
    expect(s.get('cilium_forward_count_total{direction="EGRESS"}')).toBe(10);
    expect(s.get('cilium_forward_bytes_total{direction="INGRESS"}')).toBe(800);

    // The kernel's counters are the truth at each scrape: they are set, not added again.
    src.counters = [{ reason: 133, direction: 'INGRESS', packets: 5n, bytes: 300n }];
    text = await m.scrape();
    s = samples(text);
    expect(s.get('cilium_drop_count_total{direction="INGRESS",reason="Policy denied"}')).toBe(5);
  });

  it('agent state: endpoints, identities by scope, policies, FQDN cache, proxies', async () => {
    const src = sources();
    const s = samples(await new MembraneMetrics(src, { processMetrics: false }).scrape());
    expect(s.get('cilium_endpoint{}')).toBe(3);
    expect(s.get('cilium_identity{type="reserved"}')).toBe(2);
    expect(s.get('cilium_identity{type="cluster_local"}')).toBe(3);
    expect(s.get('cilium_identity{type="node_local"}')).toBe(1);
    expect(s.get('cilium_policy{}')).toBe(2);
    expect(s.get('cilium_policy_max_revision{}')).toBe(7);
    expect(s.get('cilium_fqdn_active_names{}')).toBe(4);
    expect(s.get('cilium_fqdn_active_ips{}')).toBe(6);
    expect(s.get('membrane_proxy_connections{proxy_type="http"}')).toBe(5);
    expect(s.get('membrane_proxy_requests_in_flight{proxy_type="http"}')).toBe(2);
    expect(s.has('membrane_proxy_connections{proxy_type="tls"}')).toBe(false);
    expect(s.get('membrane_otlp_spans_exported_total{}')).toBe(40);
    expect(s.get('membrane_otlp_spans_dropped_total{reason="queue_full"}')).toBe(3);
    expect(s.get('membrane_otlp_spans_dropped_total{reason="export_failed"}')).toBe(1);
  });

  it('cilium_bpf_map_pressure{map_name} is entries / max_entries, re-read at most every 10 s', async () => {
    const src = sources();
    const m = new MembraneMetrics(src, { processMetrics: false });
    src.pressure = [{ mapName: 'membrane_ct4', entries: 16384, maxEntries: 65536 }];
    let s = samples(await m.scrape(1_000));
    expect(s.get('cilium_bpf_map_pressure{map_name="membrane_ct4"}')).toBe(0.25);
    src.pressure = [{ mapName: 'membrane_ct4', entries: 32768, maxEntries: 65536 }];
    s = samples(await m.scrape(5_000));
    expect(src.pressureReads).toBe(1);
    expect(s.get('cilium_bpf_map_pressure{map_name="membrane_ct4"}')).toBe(0.25);
    s = samples(await m.scrape(11_000));
    expect(src.pressureReads).toBe(2);
    expect(s.get('cilium_bpf_map_pressure{map_name="membrane_ct4"}')).toBe(0.5);
  });

  it('a failing source is counted and the rest of the scrape still answers', async () => {
    const src = sources();
    src.readCounters = () => {
      throw new Error('map gone');
    };
    const s = samples(await new MembraneMetrics(src, { processMetrics: false }).scrape());
    expect(s.get('membrane_metrics_scrape_errors_total{source="datapath"}')).toBe(1);
    expect(s.get('cilium_endpoint{}')).toBe(3);
  });

  it('flows: Hubble drop, flow, policy-verdict counters and cilium_policy_l7_total', async () => {
    const m = new MembraneMetrics(sources(), { processMetrics: false });
    const ip = { source: '10.77.1.4', destination: '10.77.1.2' };
    m.countFlow(dropFlow({ source: xwing, destination: deathstar, ip, l4: { TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true } } }, direction: 'INGRESS', nodeName: node, reason: 133 }));
    m.countFlow(policyVerdictFlow({ source: tiefighter, destination: deathstar, ip, l4: { TCP: { source_port: 40001, destination_port: 80 } }, direction: 'INGRESS', nodeName: node, verdict: 'REDIRECTED', matchType: 2, proxyPort: 15001 }));
    const exchange = { source: tiefighter, destination: deathstar, ip: { source: '10.77.1.3', destination: '10.77.1.2' }, sourcePort: 40002, destinationPort: 80, direction: 'INGRESS' as const, nodeName: node };
    // A denied PUT: request DROPPED, then the proxy's own 403 (a FORWARDED response flow).
    const put = { method: 'PUT', url: 'http://deathstar/v1/exhaust-port', protocol: 'HTTP/1.1' };
    m.countFlow(httpRequestFlow({ ...exchange, http: put, verdict: 'DROPPED' }));
    m.countFlow(httpResponseFlow({ ...exchange, http: { ...put, code: 403 }, latencyNs: 100_000, verdict: 'FORWARDED' }));
    // An allowed POST answered by the server in 20 ms.
    const post = { method: 'POST', url: 'http://deathstar/v1/request-landing', protocol: 'HTTP/1.1' };
    const posted = { ...exchange, sourcePort: 40003 };
    m.countFlow(httpRequestFlow({ ...posted, http: post, verdict: 'FORWARDED' }));
    m.countFlow(httpResponseFlow({ ...posted, http: { ...post, code: 200 }, latencyNs: 20_000_000, verdict: 'FORWARDED' }));

    const text = await m.scrape();
    const s = samples(text);
    expect(s.get('hubble_drop_total{protocol="TCP",reason="POLICY_DENIED"}')).toBe(1);
    // Hubble labels an L7 denial, which has no drop reason, with the enum's zero value.
    expect(s.get('hubble_drop_total{protocol="HTTP",reason="DROP_REASON_UNKNOWN"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{subtype="",type="Drop",verdict="DROPPED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{subtype="",type="PolicyVerdict",verdict="REDIRECTED"}')).toBe(1);
    expect(s.get('hubble_flows_processed_total{subtype="HTTP",type="L7",verdict="FORWARDED"}')).toBe(3);
    expect(s.get('hubble_policy_verdicts_total{action="redirected",direction="ingress",match="l3-l4"}')).toBe(1);
    expect(s.get('hubble_policy_verdicts_total{action="dropped",direction="ingress",match="l7/http"}')).toBe(1);
    expect(s.get('cilium_policy_l7_total{proxy_type="http",rule="received"}')).toBe(2);
    expect(s.get('cilium_policy_l7_total{proxy_type="http",rule="denied"}')).toBe(1);
    expect(s.get('cilium_policy_l7_total{proxy_type="http",rule="forwarded"}')).toBe(1);
    expect(s.get('hubble_http_requests_total{method="PUT",protocol="HTTP/1.1",reporter="server",status="403"}')).toBe(1);
    expect(s.get('hubble_http_requests_total{method="POST",protocol="HTTP/1.1",reporter="server",status="200"}')).toBe(1);
    expect(s.get('hubble_http_request_duration_seconds_count{method="POST",reporter="server"}')).toBe(1);
    // Only the POST went upstream: the proxy's own 403 has no upstream reply time.
    expect(metricType(text, 'cilium_proxy_upstream_reply_seconds')).toBe('histogram');
    expect(s.get('cilium_proxy_upstream_reply_seconds_count{error="allow",protocol_l7="http",scope="upstreamTime"}')).toBe(1);
    expect(s.get('cilium_proxy_upstream_reply_seconds_sum{error="allow",protocol_l7="http",scope="upstreamTime"}')).toBeCloseTo(0.02, 6);
  });

  it('flows: Hubble DNS queries/responses by rcode, qtypes, ips_returned; release delay as dataplaneTime', async () => {
    const m = new MembraneMetrics(sources(), { processMetrics: false });
    const q = { source: xwing, destination: { ...deathstar, pod_name: 'kube-dns' }, ip: { source: '10.77.1.4', destination: '10.77.1.9' }, sourcePort: 5353, destinationPort: 53, direction: 'EGRESS' as const, nodeName: node, transport: 'UDP' as const };
    m.countFlow(dnsRequestFlow({ ...q, dns: { query: 'api.github.com.', qtypes: ['A'] }, verdict: 'FORWARDED' }));
    m.countFlow(dnsResponseFlow({ ...q, dns: { query: 'api.github.com.', qtypes: ['A'], rrtypes: ['A', 'A'], ips: ['10.78.200.20', '10.78.200.21'], rcode: 0 }, latencyNs: 1e6, verdict: 'FORWARDED' }));
    m.countFlow(dnsRequestFlow({ ...q, dns: { query: 'github.com.', qtypes: ['A'] }, verdict: 'DROPPED' }));
    m.countFlow(dnsResponseFlow({ ...q, dns: { query: 'github.com.', qtypes: ['A'], rcode: 5 }, latencyNs: 0, verdict: 'FORWARDED' }));
    m.observeAnswerRelease(0.004, false);
    m.observeRegeneration(0.012, 'success');

    const s = samples(await m.scrape());
    expect(s.get('hubble_dns_queries_total{ips_returned="",qtypes="A",rcode=""}')).toBe(2);
    expect(s.get('hubble_dns_responses_total{ips_returned="2",qtypes="A",rcode="No Error"}')).toBe(1);
    expect(s.get('hubble_dns_responses_total{ips_returned="0",qtypes="A",rcode="Query Refused"}')).toBe(1);
    expect(s.get('hubble_dns_response_types_total{qtypes="A",type="A"}')).toBe(2);
    expect(s.get('cilium_policy_l7_total{proxy_type="dns",rule="denied"}')).toBe(1);
    expect(s.get('hubble_policy_verdicts_total{action="forwarded",direction="egress",match="l7/dns"}')).toBe(3);
    expect(s.get('cilium_proxy_upstream_reply_seconds_count{error="allow",protocol_l7="dns",scope="dataplaneTime"}')).toBe(1);
    expect(s.get('cilium_policy_regeneration_time_stats_seconds_count{scope="total"}')).toBe(1);
    expect(s.get('cilium_endpoint_regenerations_total{outcome="success"}')).toBe(1);
  });
});

describe('metrics cardinality', () => {
  it('labels pod traffic chooses are bounded: unknown HTTP methods are _OTHER, and past the series cap new label sets share one _OTHER series', async () => {
    const m = new MembraneMetrics(sources(), { processMetrics: false });
    const x = { source: tiefighter, destination: deathstar, ip: { source: '10.77.1.3', destination: '10.77.1.2' }, sourcePort: 40002, destinationPort: 80, direction: 'INGRESS' as const, nodeName: node };
    const respond = (method: string, code: number): void =>
      m.countFlow(httpResponseFlow({ ...x, http: { method, url: 'http://deathstar/', protocol: 'HTTP/1.1', code }, latencyNs: 1e6, verdict: 'FORWARDED' }));
    respond('BREW', 200);
    for (let status = 100; status < 1000; status++) respond('GET', status);
    // Then more distinct protocols than the cap leaves room for.
    for (let i = 0; i < MAX_SERIES_PER_METRIC + 50; i++) m.countFlow(httpResponseFlow({ ...x, http: { method: 'GET', url: 'http://deathstar/', protocol: `HTTP/${i}`, code: 200 }, latencyNs: 1e6, verdict: 'FORWARDED' }));
    const s = samples(await m.scrape());
    expect(s.get('hubble_http_requests_total{method="_OTHER",protocol="HTTP/1.1",reporter="server",status="200"}')).toBe(1);
    const series = [...s.keys()].filter((k) => k.startsWith('hubble_http_requests_total{'));
    expect(series.length).toBe(MAX_SERIES_PER_METRIC + 1);
    expect(s.get('hubble_http_requests_total{method="_OTHER",protocol="_OTHER",reporter="_OTHER",status="_OTHER"}')).toBeGreaterThan(0);
  });
});

describe('metrics listener', () => {
  let server: MetricsServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('--prometheus-serve-addr takes IP:Port, [IPv6]:Port and :Port, and refuses anything else with the flag named', () => {
    expect(parseServeAddr('127.0.0.1:9962')).toEqual({ host: '127.0.0.1', port: 9962 });
    expect(parseServeAddr(':9962')).toEqual({ host: '', port: 9962 });
    expect(parseServeAddr('[::1]:9962')).toEqual({ host: '::1', port: 9962 });
    for (const bad of ['9962', 'localhost:9962', '127.0.0.1:0', '127.0.0.1:70000', '127.0.0.1:', '::1:9962']) {
      expect(() => parseServeAddr(bad), bad).toThrow(/--prometheus-serve-addr/);
      try {
        parseServeAddr(bad);
      } catch (err) {
        expect(isMembraneError(err, 'MEMBRANE_ERR_CLI_USAGE')).toBe(true);
      }
    }
  });

  it('serves GET /metrics in the text format; other paths 404, other methods 405', async () => {
    const m = new MembraneMetrics(sources());
    server = new MetricsServer(m);
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(samples(body).get('cilium_endpoint{}')).toBe(3);
    // The Node.js process metrics come with it (Cilium serves its Go runtime's).
    expect(body).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('issue-11 process metrics: prom-client\'s names and types, re-read at most every interval (a scrape in between serves the last values)', async () => {
    const names = (text: string): string[] => [...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
    const plain = new Registry();
    collectDefaultMetrics({ register: plain });
    const reference = await plain.metrics();
    const own = await new MembraneMetrics(sources(), { processMetricsIntervalMs: 0 }).scrape();
    const defaults = new Set(names(reference));
    expect(defaults.size).toBeGreaterThan(10);
    expect(names(own).filter((n) => defaults.has(n))).toEqual([...defaults].sort());

    const burn = (): void => {
      const until = process.cpuUsage().user + 40_000;
      while (process.cpuUsage().user < until);
    };
    const cpu = (text: string): number => samples(text).get('process_cpu_user_seconds_total{}') ?? NaN;
    const throttled = new MembraneMetrics(sources(), { processMetricsIntervalMs: 60_000 });
    const first = cpu(await throttled.scrape());
    burn();
    expect(cpu(await throttled.scrape())).toBe(first);
    const live = new MembraneMetrics(sources(), { processMetricsIntervalMs: 0 });
    const before = cpu(await live.scrape());
    burn();
    expect(cpu(await live.scrape())).toBeGreaterThan(before + 0.03);
  });

  it('an address in use is MEMBRANE_ERR_METRICS_LISTEN naming it', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const port = (holder.address() as { port: number }).port;
    try {
      server = new MetricsServer(new MembraneMetrics(sources(), { processMetrics: false }));
      const err = await server.listen({ host: '127.0.0.1', port }).catch((e: unknown) => e);
      expect(isMembraneError(err, 'MEMBRANE_ERR_METRICS_LISTEN')).toBe(true);
      expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    } finally {
      holder.close();
    }
  });
});
