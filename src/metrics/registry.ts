/**
 * The agent's Prometheus metrics: Cilium's names and labels where Cilium has the metric
 * (Documentation/observability/metrics.rst, pkg/metrics/metrics.go), Hubble's for flow-derived
 * ones, `membrane_` for the proxies' own. One prom-client Registry per agent (never the global one).
 *
 * Scrape cost: `scrape()` reads the datapath counters with one batch map read, asks the agent for
 * a few counts it holds in memory, and re-reads the BPF map fill (`cilium_bpf_map_pressure`) at most
 * every MAP_PRESSURE_INTERVAL_MS. Flow-derived metrics are counted as flows are pushed, never by
 * scanning the flow ring.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { dropReasonMessage } from '../codes/index.js';
import type { Flow } from '../observe/index.js';
import type { MapPressure, MetricsCounter } from '../datapath/index.js';
import { createFlowMetrics, FlowCounter, mergeFlowMetricsDelta, type FlowMetrics, type FlowMetricsDelta } from './flows.js';

/** What the agent hands the metrics at scrape time; every call is cheap but the two datapath reads. */
export interface MetricsSources {
  /** membrane_metrics summed over CPUs: one BPF_MAP_LOOKUP_BATCH. */
  readCounters(): readonly MetricsCounter[];
  /** Entries and capacity of the maps that fill up (a full read: called at most every 10 s). */
  mapPressure(): readonly MapPressure[];
  /** Endpoints managed by this agent. */
  endpoints(): number;
  /** Numeric identities the datapath may see. */
  identities(): Iterable<number>;
  /** Policies loaded and the policy revision. */
  policy(): { policies: number; revision: number };
  /** FQDN cache counts, null before the name manager exists. */
  fqdn(): { names: number; ips: number; zombies: number } | null;
  /** Per-proxy open connections and requests (or queries) in flight; null when a proxy is not running. */
  proxies(): ProxyGauges | Promise<ProxyGauges>;
  /** The agent's span exporter (src/tracing), null or absent when tracing is off. */
  tracing?(): OtlpCounters | null | Promise<OtlpCounters | null>;
}

/** Spans the agent's exporters (its own thread's and the proxy workers') sent and dropped. */
export interface OtlpCounters {
  readonly exported: number;
  readonly droppedQueueFull: number;
  readonly droppedExportFailed: number;
}

/** Per proxy: open downstream connections, and requests (queries) in flight where the proxy counts them. */
export type ProxyGauges = Record<'http' | 'dns' | 'tls', { connections: number; inflight?: number } | null>;

export const MAP_PRESSURE_INTERVAL_MS = 10_000;

/**
 * prom-client's default metrics (process_*, nodejs_*: names and labels as prom-client gives them)
 * are re-read at most this often; a scrape in between serves the values last read. Reading them
 * is half a scrape's CPU (the event-loop delay histogram's statistics, /proc/self/status and
 * /proc/self/fd, heap spaces, active resources: ~0.8 of 1.6 ms per scrape, measured warm), paid
 * on the agent's main thread at every scrape, and a scrape every second (issue 11's target) must
 * not cost the proxies' share of that thread. Counters stay exact (the CPU time read later
 * includes what was used in between); the event-loop delay statistics cover the interval.
 */
export const PROCESS_METRICS_INTERVAL_MS = 10_000;

/** `collectDefaultMetrics` into `registry`, each metric's `collect` run at most every `intervalMs`. */
function collectProcessMetrics(registry: Registry, intervalMs: number): void {
  const before = new Set(registry.getMetricsAsArray());
  collectDefaultMetrics({ register: registry });
  for (const metric of registry.getMetricsAsArray()) {
    if (before.has(metric)) continue;
    const m = metric as unknown as { collect?: () => unknown };
    const collect = m.collect;
    if (typeof collect !== 'function') continue;
    let at = -Infinity;
    m.collect = function (this: unknown): unknown {
      const now = performance.now();
      if (now - at < intervalMs) return undefined;
      at = now;
      return collect.call(this);
    };
  }
}

/** Cilium's identity scopes: reserved (< 256), node-local (CIDR/FQDN, bit 24 set), cluster-local. */
const LOCAL_IDENTITY_SCOPE = 1 << 24;
function identityType(id: number): 'reserved' | 'node_local' | 'cluster_local' {
  if (id < 256) return 'reserved';
  return id >= LOCAL_IDENTITY_SCOPE ? 'node_local' : 'cluster_local';
}

export class MembraneMetrics {
  readonly registry = new Registry();
  readonly #sources: MetricsSources;
  readonly #log: Logger | undefined;
  readonly #flows: FlowCounter;
  readonly #flowMetrics: FlowMetrics;
  #pressureAt = -Infinity;
  #pressure: readonly MapPressure[] = [];

  readonly #dropCount: Counter<'reason' | 'direction'>;
  readonly #dropBytes: Counter<'reason' | 'direction'>;
  readonly #forwardCount: Counter<'direction'>;
  readonly #forwardBytes: Counter<'direction'>;
  readonly #endpoint: Gauge;
  readonly #identity: Gauge<'type'>;
  readonly #policy: Gauge;
  readonly #policyMaxRevision: Gauge;
  readonly #policyRegenTime: Histogram<'scope'>;
  readonly #endpointRegenTime: Histogram<'scope'>;
  readonly #endpointRegens: Counter<'outcome'>;
  readonly #mapPressure: Gauge<'map_name'>;
  readonly #fqdnNames: Gauge;
  readonly #fqdnIps: Gauge;
  readonly #fqdnZombies: Gauge;
  readonly #connections: Gauge<'proxy_type'>;
  readonly #inflight: Gauge<'proxy_type'>;
  readonly #scrapeErrors: Counter<'source'>;
  readonly #otlpExported: Counter;
  readonly #otlpDropped: Counter<'reason'>;

  /**
   * `processMetrics` (default true): prom-client's process and Node.js metrics, re-read at most
   * every `processMetricsIntervalMs` (default PROCESS_METRICS_INTERVAL_MS).
   */
  constructor(sources: MetricsSources, options: { log?: Logger; processMetrics?: boolean; processMetricsIntervalMs?: number } = {}) {
    this.#sources = sources;
    this.#log = options.log;
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
      new Counter<L>({ name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> =>
      new Gauge<L>({ name, help, labelNames, registers });
    const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[]): Histogram<L> =>
      new Histogram<L>({ name, help, labelNames, registers });

    // Drops/Forwards (L3/L4): from the datapath's metrics map.
    this.#dropCount = counter('cilium_drop_count_total', 'Total dropped packets, tagged by drop reason and ingress/egress direction', ['reason', 'direction']);
    this.#dropBytes = counter('cilium_drop_bytes_total', 'Total dropped bytes, tagged by drop reason and ingress/egress direction', ['reason', 'direction']);
    this.#forwardCount = counter('cilium_forward_count_total', 'Total forwarded packets, tagged by ingress/egress direction', ['direction']);
    this.#forwardBytes = counter('cilium_forward_bytes_total', 'Total forwarded bytes, tagged by ingress/egress direction', ['direction']);

    // Endpoint, identity, policy.
    this.#endpoint = gauge('cilium_endpoint', 'Number of endpoints managed by this agent');
    this.#identity = gauge('cilium_identity', 'Number of identities currently allocated', ['type']);
    this.#policy = gauge('cilium_policy', 'Number of policies currently loaded');
    this.#policyMaxRevision = gauge('cilium_policy_max_revision', 'Highest policy revision number in the agent');
    this.#policyRegenTime = histogram('cilium_policy_regeneration_time_stats_seconds', 'Policy regeneration time stats labeled by the scope', ['scope']);
    this.#endpointRegenTime = histogram('cilium_endpoint_regeneration_time_stats_seconds', 'Endpoint regeneration time stats labeled by the scope', ['scope']);
    this.#endpointRegens = counter('cilium_endpoint_regenerations_total', 'Count of all endpoint regenerations that have completed, tagged by outcome', ['outcome']);

    // eBPF maps, FQDN.
    this.#mapPressure = gauge('cilium_bpf_map_pressure', 'Fill of a BPF map: entries over max_entries (>= 1.0: full)', ['map_name']);
    this.#fqdnNames = gauge('cilium_fqdn_active_names', 'Number of domains inside the DNS cache that have not expired (by TTL), all endpoints of this node');
    this.#fqdnIps = gauge('cilium_fqdn_active_ips', 'Number of IPs inside the DNS cache associated with a domain that has not expired (by TTL), all endpoints of this node');
    this.#fqdnZombies = gauge('cilium_fqdn_alive_zombie_connections', 'Number of IPs whose names expired but which still have an active connection, all endpoints of this node');

    // Policy L7 and the proxies.
    this.#connections = gauge('membrane_proxy_connections', 'Open downstream connections of a proxy', ['proxy_type']);
    this.#inflight = gauge('membrane_proxy_requests_in_flight', 'Requests (DNS: queries) a proxy is handling now', ['proxy_type']);
    this.#otlpExported = counter('membrane_otlp_spans_exported_total', 'Spans the agent exported to the OTLP collector');
    this.#otlpDropped = counter('membrane_otlp_spans_dropped_total', 'Spans dropped instead of blocking a request: queue_full (the bounded export queue) or export_failed (the collector failed or timed out)', ['reason']);
    this.#scrapeErrors = counter('membrane_metrics_scrape_errors_total', 'Sources that failed during a scrape (their metrics keep their last values)', ['source']);

    // The per-flow metrics: plain numbers behind prom-client's exposition (fast.ts).
    const flowMetrics = createFlowMetrics(this.registry);
    this.#flowMetrics = flowMetrics;
    this.#flows = new FlowCounter(flowMetrics);
    if (options.processMetrics ?? true) collectProcessMetrics(this.registry, options.processMetricsIntervalMs ?? PROCESS_METRICS_INTERVAL_MS);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts a flow born on the agent's thread as it is pushed (`FlowRing.onPush`; not a worker's: see mergeFlows). */
  countFlow(flow: Flow): void {
    this.#flows.count(flow);
  }

  /** Adds what a proxy worker counted of its own flows since its previous batch (flows.ts `takeFlowMetricsDelta`). */
  mergeFlows(delta: FlowMetricsDelta): void {
    mergeFlowMetricsDelta(this.#flowMetrics, delta);
  }

  /** One policy regeneration pass (all endpoints), seconds. */
  observeRegeneration(seconds: number, outcome: 'success' | 'fail'): void {
    this.#endpointRegens.inc({ outcome });
    if (outcome !== 'success') return;
    this.#policyRegenTime.observe({ scope: 'total' }, seconds);
    this.#endpointRegenTime.observe({ scope: 'total' }, seconds);
  }

  /**
   * A DNS answer held until the datapath had its IPs (Cilium's `dataplaneTime` scope of
   * cilium_proxy_upstream_reply_seconds, protocol_l7="dns"); `timedOut`: released at
   * --tofqdns-proxy-response-max-delay before the datapath confirmed.
   */
  observeAnswerRelease(seconds: number, timedOut: boolean): void {
    this.#flowMetrics.upstreamReply.labels(timedOut ? 'timeout' : 'allow', 'dns', 'dataplaneTime').observe(seconds);
  }

  /** The exposition text: refreshes the pulled metrics (one datapath batch read), then renders. */
  async scrape(now = performance.now()): Promise<string> {
    this.#refresh('datapath', () => this.#refreshCounters());
    this.#refresh('agent', () => this.#refreshAgent());
    try {
      const t = (await this.#sources.tracing?.()) ?? null;
      if (t) {
        this.#otlpExported.reset();
        this.#otlpExported.inc(t.exported);
        this.#otlpDropped.reset();
        this.#otlpDropped.inc({ reason: 'queue_full' }, t.droppedQueueFull);
        this.#otlpDropped.inc({ reason: 'export_failed' }, t.droppedExportFailed);
      }
    } catch (err) {
      this.#scrapeErrors.inc({ source: 'tracing' });
      this.#log?.warn({ err, source: 'tracing' }, 'metrics source failed during a scrape');
    }
    try {
      this.#refreshProxies(await this.#sources.proxies());
    } catch (err) {
      this.#scrapeErrors.inc({ source: 'proxies' });
      this.#log?.warn({ err, source: 'proxies' }, 'metrics source failed during a scrape');
    }
    if (now - this.#pressureAt >= MAP_PRESSURE_INTERVAL_MS) {
      this.#pressureAt = now;
      this.#refresh('map_pressure', () => {
        this.#pressure = this.#sources.mapPressure();
      });
    }
    this.#mapPressure.reset();
    for (const p of this.#pressure) if (p.maxEntries > 0) this.#mapPressure.set({ map_name: p.mapName }, p.entries / p.maxEntries);
    return this.registry.metrics();
  }

  #refresh(source: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#scrapeErrors.inc({ source });
      this.#log?.warn({ err, source }, 'metrics source failed during a scrape');
    }
  }

  #refreshCounters(): void {
    const counters = this.#sources.readCounters();
    // The kernel's counters are the truth: set them, not add to them.
    this.#dropCount.reset();
    this.#dropBytes.reset();
    this.#forwardCount.reset();
    this.#forwardBytes.reset();
    for (const c of counters) {
      if (c.reason === 0) {
        this.#forwardCount.inc({ direction: c.direction }, Number(c.packets));
        this.#forwardBytes.inc({ direction: c.direction }, Number(c.bytes));
      } else {
        const labels = { reason: dropReasonMessage(c.reason), direction: c.direction };
        this.#dropCount.inc(labels, Number(c.packets));
        this.#dropBytes.inc(labels, Number(c.bytes));
      }
    }
  }

  #refreshAgent(): void {
    const s = this.#sources;
    this.#endpoint.set(s.endpoints());
    const byType = { reserved: 0, cluster_local: 0, node_local: 0 };
    for (const id of s.identities()) byType[identityType(id)]++;
    this.#identity.reset();
    for (const [type, n] of Object.entries(byType)) this.#identity.set({ type }, n);
    const p = s.policy();
    this.#policy.set(p.policies);
    this.#policyMaxRevision.set(p.revision);
    const f = s.fqdn();
    if (f) {
      this.#fqdnNames.set(f.names);
      this.#fqdnIps.set(f.ips);
      this.#fqdnZombies.set(f.zombies);
    }
  }

  #refreshProxies(proxies: ProxyGauges): void {
    this.#connections.reset();
    this.#inflight.reset();
    for (const [proxy_type, st] of Object.entries(proxies)) {
      if (!st) continue;
      this.#connections.set({ proxy_type }, st.connections);
      if (st.inflight !== undefined) this.#inflight.set({ proxy_type }, st.inflight);
    }
  }
}
