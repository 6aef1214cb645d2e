/**
 * The agent: wiring only.
 *
 *   PolicyDirectory ──change──► Regenerator ──► Datapath maps (ipcache, policy, endpoints)
 *   API (unix socket) ──► EndpointManager ──► Regenerator
 *   Datapath events ──► eventToFlow ──► FlowRing ◄── HttpProxy (L7 flows)
 *   HttpProxy ──► decideL7 (policy module; policy state of both endpoints) ──► connectMarked upstream
 */
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import { Datapath, ensureNodeNetwork, transparentListenFd, connectMarked } from '../datapath/index.js';
import { FlowRing, type Flow } from '../observe/index.js';
import { HttpProxy, TlsPassthrough, type FlowContext, type L7ProxyDeps } from '../l7proxy/index.js';
import { DnsProxy, markedUpstream, traceDnsProxy, type RejectResponseCode } from '../dnsproxy/index.js';
import { ProxyWorkerPool, defaultProxyWorkers } from '../proxyworker/index.js';
import { membraneError } from '../errors/index.js';
import {
  DEFAULT_MAX_IPS_PER_HOSTNAME,
  DEFAULT_MIN_TTL_SECONDS,
  DEFAULT_PROXY_RESPONSE_MAX_DELAY_MS,
  type NameManager,
} from '../fqdn/index.js';
import { AgentFqdn } from './fqdn.js';
import { parseLabel, PROTO, type L7Flow, type PolicyObject, type ServiceInput } from '../policy/index.js';
import { StateStore } from './state-store.js';
import { ControlPlanePriority } from './priority.js';
import { IdentityAllocator } from './identity-allocator.js';
import { EndpointManager, type Endpoint, type EndpointSpec } from './endpoints.js';
import { PolicyDirectory } from './policy-source.js';
import { ServiceRegistry } from './services.js';
import { Regenerator, type RegenerationResult } from './regenerate.js';
import { eventToFlow, flowEndpoint, type FlowContextLookup } from './flows.js';
import { ApiServer } from './api-server.js';
import type { HubbleServer } from '../hubble/index.js';
import { ACCESS_LOG_DEFAULTS, AccessLogFile, accessLogger } from './access-log.js';
import { MembraneMetrics, MetricsServer, parseServeAddr, type MetricsSources, type ProxyGauges } from '../metrics/index.js';
import { startTracing, tracingConfig, type Tracing } from '../tracing/index.js';
import { traceHttpProxy } from '../l7proxy/index.js';

export interface AgentConfig {
  readonly policyDir: string;
  readonly stateDir: string;
  readonly pinRoot: string;
  readonly apiSocket: string;
  readonly httpProxyPort: number;
  readonly dnsProxyPort: number;
  /** The TLS passthrough listener for serverNames rules. */
  readonly tlsProxyPort: number;
  readonly nodeName: string;
  readonly netns: string | null;
  readonly flowBuffer: number;
  /** `--access-log`: a file (rotated), `stdout` (ACCESS_LOG_STDOUT), or null for the agent log. */
  readonly accessLog: string | null;
  /** Rotate the access-log file past this size, MB (Cilium's Hubble export file: 10). */
  readonly accessLogMaxSizeMb: number;
  /** Rotated access-log files kept, FILE.1 … FILE.N (Cilium's Hubble export file: 5). */
  readonly accessLogMaxBackups: number;
  /** `--access-log-rotate-interval`: also rotate the file once it has been live this long, minutes; 0 or absent: by size only. */
  readonly accessLogRotateIntervalMinutes?: number;
  /**
   * `--access-log-sample-rate`: share of forwarded HTTP requests written to the access log, in
   * (0, 1]; denials and failures are always written, flows are not sampled. Default 1.
   */
  readonly accessLogSampleRate?: number;
  readonly logLevel: string;
  /** Cilium `--http-request-timeout`, seconds; 0 = unlimited. */
  readonly httpRequestTimeout: number;
  /** Cilium `--http-normalize-path`. */
  readonly httpNormalizePath: boolean;
  /** Cilium `--tofqdns-dns-reject-response-code`: what a denied DNS query is answered with. */
  readonly dnsRejectResponseCode: RejectResponseCode;
  /** Cilium `--tofqdns-min-ttl`, seconds. */
  readonly tofqdnsMinTtl: number;
  /** Cilium `--tofqdns-endpoint-max-ip-per-hostname`. */
  readonly tofqdnsMaxIpPerHostname: number;
  /** Cilium `--tofqdns-proxy-response-max-delay`, ms. */
  readonly tofqdnsProxyResponseMaxDelayMs: number;
  /**
   * Cilium `--prometheus-serve-addr` (`IP:Port`, `:Port` for every interface; Cilium's port is
   * 9962): serve Prometheus metrics at /metrics. Absent or null: no metrics listener.
   */
  readonly prometheusServeAddr?: string | null;
  /**
   * `--otlp-endpoint`: the OpenTelemetry collector's OTLP/HTTP base URL (`/v1/traces` appended);
   * with it, or the standard OTEL_EXPORTER_OTLP_* variables, the HTTP proxy traces each request.
   * Absent or null and no variable: tracing off.
   */
  readonly otlpEndpoint?: string | null;
  /**
   * Cilium `--hubble-socket-path`: the Hubble observer's unix socket (root only). Default: hubble.sock
   * beside the API socket (/run/membrane/hubble.sock, as /var/run/cilium/hubble.sock); null: none.
   */
  readonly hubbleSocketPath?: string | null;
  /** Cilium `--hubble-listen-address` (`host:port`): the observer on TCP too, TLS required. */
  readonly hubbleListenAddress?: string | null;
  /** Cilium `--hubble-tls-cert-file` / `--hubble-tls-key-file`: the TCP listener's certificate. */
  readonly hubbleTlsCertFile?: string | null;
  readonly hubbleTlsKeyFile?: string | null;
  /** Cilium `--hubble-tls-client-ca-files`: CAs a client certificate must chain to (required for TCP). */
  readonly hubbleTlsClientCaFiles?: readonly string[];
  /**
   * `--proxy-workers`: worker threads running the HTTP, TLS and DNS proxies, each on its own
   * listeners in one SO_REUSEPORT group per port (src/proxyworker). 0 runs them on the agent's
   * own event loop (the in-process mode, for tests and comparison).
   */
  readonly proxyWorkers: number;
  /**
   * `--control-plane-nice`: how much lower than the agent's own the CPU priority (nice) of its
   * control-plane work is: policy files read and regenerations run at it on the agent's thread,
   * which returns to its own priority between them; the proxy worker threads keep the agent's.
   * 0: no difference. Default DEFAULT_CONTROL_PLANE_NICE.
   */
  readonly controlPlaneNice?: number;
  /**
   * `--proxy-worker-priority`: how many nice steps (0-20) above the agent's own the proxy worker
   * threads run (src/proxyworker/pool.ts `workerPriority`). Absent: 10 while the workers leave a
   * CPU to the agent's thread, else 0 (defaultWorkerPriority).
   */
  readonly proxyWorkerPriority?: number;
}

/**
 * See AgentConfig.controlPlaneNice. Off by default: on 2 shared cores at load 5-12 (issue-9
 * isolation runs) 10 did not measurably lower the proxy worker's run-queue wait or p99 under
 * churn, and it stretched regenerations under contention (p90 up to 1.5 s), which a DNS answer
 * arriving during one waits for.
 */
export const DEFAULT_CONTROL_PLANE_NICE = 0;

/** The state document holding each policy file's last accepted text (policy-source.ts LastGoodTexts). */
const LAST_GOOD_POLICIES = 'policies-last-good.json';

export const DEFAULT_AGENT_CONFIG: AgentConfig = {
  policyDir: '/etc/membrane/policies',
  stateDir: '/var/lib/membrane',
  pinRoot: '/sys/fs/bpf/membrane',
  apiSocket: '/run/membrane/agent.sock',
  httpProxyPort: 15001,
  dnsProxyPort: 15053,
  tlsProxyPort: 15443,
  nodeName: hostname(),
  netns: null,
  flowBuffer: 4096,
  accessLog: null,
  accessLogMaxSizeMb: ACCESS_LOG_DEFAULTS.maxSizeMb,
  accessLogMaxBackups: ACCESS_LOG_DEFAULTS.maxBackups,
  accessLogSampleRate: 1,
  logLevel: 'info',
  httpRequestTimeout: 3600,
  httpNormalizePath: true,
  dnsRejectResponseCode: 'refused',
  tofqdnsMinTtl: DEFAULT_MIN_TTL_SECONDS,
  tofqdnsMaxIpPerHostname: DEFAULT_MAX_IPS_PER_HOSTNAME,
  tofqdnsProxyResponseMaxDelayMs: DEFAULT_PROXY_RESPONSE_MAX_DELAY_MS,
  proxyWorkers: defaultProxyWorkers(),
  controlPlaneNice: DEFAULT_CONTROL_PLANE_NICE,
};

export class Agent {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly flows: FlowRing;
  readonly endpoints: EndpointManager;
  readonly policies: PolicyDirectory;
  readonly services: ServiceRegistry;
  #datapath: Datapath | null = null;
  #regenerator: Regenerator | null = null;
  #identities: IdentityAllocator;
  #proxy: HttpProxy | null = null;
  #dnsProxy: DnsProxy | null = null;
  #tlsProxy: TlsPassthrough | null = null;
  #proxyWorkers: ProxyWorkerPool | null = null;
  #fqdn: AgentFqdn | null = null;
  #api: ApiServer | null = null;
  #metrics: MembraneMetrics | null = null;
  #metricsServer: MetricsServer | null = null;
  #tracing: Tracing | null = null;
  #untrace: (() => void) | null = null;
  #workerStatusCache: { at: number; status: ReturnType<ProxyWorkerPool['status']> } | null = null;
  #hubble: HubbleServer | null = null;
  #stopEvents: (() => void) | null = null;
  #pending: NodeJS.Timeout | null = null;
  /** The pass endpoint changes of this turn wait for (#regenerateSoon). */
  #soon: Promise<RegenerationResult> | null = null;
  /** The policies whose toFQDNs selectors were last pushed to the FQDN subsystem. */
  #fqdnPolicies: readonly PolicyObject[] | null = null;
  #lastRegeneration: RegenerationResult | null = null;
  #malformedEvents = 0;
  #accessLogFile: AccessLogFile | null = null;
  #store: StateStore;
  #accessLogger: Logger | null = null;
  /** Runs control-plane work at its CPU priority (set in start: the native addon is loaded there). */
  #priority: ControlPlanePriority | null = null;

  constructor(config: AgentConfig, log?: Logger) {
    this.config = config;
    // Asynchronous writes: the proxy logs one access line per request on this logger when no
    // --access-log is given, and must not wait on stdout for each. stop() flushes it.
    this.log = log ?? pino({ level: config.logLevel, base: { node: config.nodeName } }, pino.destination({ dest: 1, sync: false }));
    const store = new StateStore(config.stateDir);
    this.#store = store;
    this.#identities = new IdentityAllocator(store, parseLabel, (err) => this.log.warn({ err }, 'could not save local identities; trying again in 5 s'));
    this.endpoints = new EndpointManager(store);
    this.services = new ServiceRegistry(store);
    this.flows = new FlowRing({ capacity: config.flowBuffer });
    const policyLog = this.log.child({ component: 'policy' });
    this.policies = new PolicyDirectory(config.policyDir, policyLog, () => this.scheduleRegeneration(), {
      work: (fn) => (this.#priority ? this.#priority.run(fn) : fn()),
      lastGood: {
        read: () => store.read<Record<string, string>>(LAST_GOOD_POLICIES, {}),
        save: (texts) => {
          store.writeSoon(LAST_GOOD_POLICIES, () => texts).catch((err: unknown) => policyLog.warn({ err }, 'could not save the last good policy texts'));
        },
      },
    });
  }

  get datapath(): Datapath {
    if (!this.#datapath) throw new Error('agent is not started');
    return this.#datapath;
  }

  get regenerator(): Regenerator {
    if (!this.#regenerator) throw new Error('agent is not started');
    return this.#regenerator;
  }

  get lastRegeneration(): RegenerationResult | null {
    return this.#lastRegeneration;
  }

  async start(): Promise<void> {
    const restored = this.endpoints.restore();
    // Proxy worker threads load their code while the datapath opens; they listen once the first
    // regeneration has fed them (regenerateNow → sync), awaited before the API comes up.
    if (this.config.proxyWorkers > 0) this.#spawnProxyWorkers();
    this.#datapath = Datapath.open({ pinRoot: this.config.pinRoot });
    ensureNodeNetwork();
    this.#regenerator = new Regenerator(
      this.#datapath,
      this.endpoints,
      this.#identities,
      { http: this.config.httpProxyPort, dns: this.config.dnsProxyPort, tls: this.config.tlsProxyPort },
      this.log.child({ component: 'regeneration' }),
    );
    const ctx = this.#flowLookup();
    this.#stopEvents = this.#datapath.onEvents(
      (ev) => this.flows.push(eventToFlow(ev, ctx)),
      () => this.#malformedEvents++,
    );

    this.#fqdn = new AgentFqdn(
      this.#store,
      () => this.regenerator,
      () => this.datapath,
      {
        minTtlSeconds: this.config.tofqdnsMinTtl,
        maxIpsPerHostname: this.config.tofqdnsMaxIpPerHostname,
        maxDelayMs: this.config.tofqdnsProxyResponseMaxDelayMs,
        isEndpoint: (id) => this.endpoints.byId(id) !== undefined,
      },
      this.log.child({ component: 'fqdn' }),
    );
    // Before the first pass, so it writes the learned IPs back instead of removing them.
    this.#fqdn.restore(this.#regenerator);
    // What an answer's FQDN apply produced reaches the proxy workers before the answer is
    // released; a selection that may shrink voids the answers they release without asking.
    this.#fqdn.onApplied(() => this.#proxyWorkers?.sync());
    this.#fqdn.onEpoch((epoch) => this.#proxyWorkers?.fqdnEpochChanged(epoch));

    await this.#startTracing();
    await this.#startProxy();
    await this.#startDnsProxy();

    this.policies.loadAll();
    this.regenerateNow();
    await this.policies.watch();
    this.#fqdn.start();
    await this.#proxyWorkers?.ready();

    await this.#startMetrics();
    this.#api = new ApiServer(this, this.log.child({ component: 'api' }));
    await this.#api.listen(this.config.apiSocket);
    // gRPC loads with the agent, not with every CLI command that imports this module.
    const { HubbleServer, HUBBLE_SOCKET_NAME, serverVersion } = await import('../hubble/index.js');
    this.#hubble = new HubbleServer({ flows: this.flows, nodeName: this.config.nodeName, version: serverVersion() }, this.log.child({ component: 'hubble' }));
    await this.#hubble.listen({
      socketPath: this.config.hubbleSocketPath === undefined ? join(dirname(this.config.apiSocket), HUBBLE_SOCKET_NAME) : this.config.hubbleSocketPath,
      listenAddress: this.config.hubbleListenAddress ?? null,
      tlsCertFile: this.config.hubbleTlsCertFile ?? null,
      tlsKeyFile: this.config.hubbleTlsKeyFile ?? null,
      tlsClientCaFiles: this.config.hubbleTlsClientCaFiles ?? [],
    });
    // From here on (start-up itself at the agent's priority: a restart's gap stays short).
    this.#priority = new ControlPlanePriority(this.config.controlPlaneNice ?? DEFAULT_CONTROL_PLANE_NICE, this.log.child({ component: 'priority' }));
    this.log.info(
      { restoredEndpoints: restored.length, policies: this.policies.policies().length, socket: this.config.apiSocket, controlPlaneNice: this.#priority.nice },
      'agent ready',
    );
  }

  /**
   * The Prometheus endpoint, when --prometheus-serve-addr is given: this thread's flows are counted
   * as pushed to the FlowRing, the proxy workers' by the workers (merged deltas), the rest per scrape.
   */
  async #startMetrics(): Promise<void> {
    if (!this.config.prometheusServeAddr) return;
    const addr = parseServeAddr(this.config.prometheusServeAddr);
    const sources: MetricsSources = {
      readCounters: () => this.datapath.readCounters(),
      mapPressure: () => this.datapath.mapPressure(),
      endpoints: () => this.endpoints.list().length,
      identities: () => (this.#regenerator?.identities() ?? []).map((i) => i.id),
      policy: () => ({ policies: this.policies.policies().length, revision: this.policies.revision }),
      fqdn: () => this.#fqdn?.names.stats() ?? null,
      proxies: () => this.#proxyGauges(),
      tracing: () => this.#otlpCounters(),
    };
    const metrics = new MembraneMetrics(sources, { log: this.log.child({ component: 'metrics' }) });
    // This thread's flows only: the proxy workers count theirs and send deltas (onFlowMetrics).
    this.flows.onPush((flow) => metrics.countFlow(flow));
    this.#fqdn?.observeRelease((seconds, timedOut) => metrics.observeAnswerRelease(seconds, timedOut));
    if (this.#lastRegeneration) metrics.observeRegeneration(this.#lastRegeneration.durationMs / 1000, 'success');
    this.#metrics = metrics;
    this.#metricsServer = new MetricsServer(metrics, this.log.child({ component: 'metrics' }));
    const bound = await this.#metricsServer.listen(addr);
    this.log.info({ address: `${bound.host}:${bound.port}` }, 'serving Prometheus metrics at /metrics');
  }

  /**
   * Tracing, when configured: the proxies of this thread are traced through their diagnostics
   * channels (l7proxy/trace.ts, dnsproxy/trace.ts); proxy workers get the same configuration and trace their own.
   */
  async #startTracing(): Promise<void> {
    const config = tracingConfig(this.config.otlpEndpoint, this.config.nodeName);
    if (!config) return;
    this.#tracing = await startTracing(config);
    const untraceHttp = traceHttpProxy(this.#tracing.proxyTracer);
    const untraceDns = traceDnsProxy(this.#tracing.proxyTracer);
    this.#untrace = () => {
      untraceHttp();
      untraceDns();
    };
    this.log.info({ otlp: config.tracesUrl, sampler: config.sampler, ratio: config.samplerRatio }, 'tracing the HTTP and DNS proxies (OTLP/HTTP)');
  }

  /** The workers' status, asked once for the proxy gauges and the OTLP counters of one scrape. */
  #workerStatus(): ReturnType<ProxyWorkerPool['status']> | null {
    if (!this.#proxyWorkers) return null;
    const now = performance.now();
    if (this.#workerStatusCache === null || now - this.#workerStatusCache.at > 500) {
      this.#workerStatusCache = { at: now, status: this.#proxyWorkers.status() };
    }
    return this.#workerStatusCache.status;
  }

  /** Spans exported and dropped: this thread's exporter plus every proxy worker's. */
  async #otlpCounters(): Promise<{ exported: number; droppedQueueFull: number; droppedExportFailed: number } | null> {
    if (!this.#tracing) return null;
    const own = this.#tracing.stats();
    const workers = await this.#workerStatus();
    const w = workers ? ProxyWorkerPool.totals(workers).otlp : null;
    return {
      exported: own.exported + (w?.exported ?? 0),
      droppedQueueFull: own.droppedQueueFull + (w?.droppedQueueFull ?? 0),
      droppedExportFailed: own.droppedExportFailed + (w?.droppedExportFailed ?? 0),
    };
  }

  /** Open connections and in-flight requests per proxy, summed over the workers when they run the proxies. */
  async #proxyGauges(): Promise<ProxyGauges> {
    const workers = (await this.#workerStatus()) ?? null;
    const totals = workers ? ProxyWorkerPool.totals(workers) : null;
    const http = totals ? totals.http : (this.#proxy?.stats() ?? null);
    const dns = totals ? totals.dns : (this.#dnsProxy?.stats() ?? null);
    const tls = totals ? totals.tls : (this.#tlsProxy?.stats ?? null);
    const httpInflight = (http as { inflight?: number } | null)?.inflight;
    return {
      http: http ? { connections: http.connections, ...(httpInflight !== undefined ? { inflight: httpInflight } : {}) } : null,
      dns: dns ? { connections: dns.tcpConnections, inflight: dns.inflight } : null,
      tls: tls ? { connections: tls.active } : null,
    };
  }

  /** How flows name the pods and identities behind addresses. */
  #flowLookup(): FlowContextLookup {
    return {
      endpointByIp: (ip: string) => this.endpoints.byIp(ip),
      identity: (id: number) => this.#regenerator?.identity(id),
      namesOf: (endpointId: number, ip: string) => this.#fqdn?.names.namesOf(endpointId, ip) ?? [],
      nodeName: this.config.nodeName,
    };
  }

  async #startProxy(): Promise<void> {
    // A file given with --access-log is rotated by size (and age); `stdout` is the agent's
    // standard output, batched the same way; without either, lines go to the agent log.
    this.#accessLogFile = this.config.accessLog
      ? new AccessLogFile({
          path: this.config.accessLog,
          maxSizeBytes: this.config.accessLogMaxSizeMb * 1024 * 1024,
          maxBackups: this.config.accessLogMaxBackups,
          rotateIntervalMs: (this.config.accessLogRotateIntervalMinutes ?? 0) * 60_000,
        })
      : null;
    const accessLog = this.#accessLog();
    const ctx = this.#flowLookup();
    // The workers run the proxies (#spawnProxyWorkers); the access log above is theirs too.
    if (this.#proxyWorkers) return;
    const deps: L7ProxyDeps = {
      resolveConnection: (conn): FlowContext | null => {
        const src = this.endpoints.byIp(conn.srcIp);
        // Only pods are redirected to the proxy; a connection from anything else is not ours.
        if (!src) return null;
        const dst = this.endpoints.byIp(conn.dstIp);
        const dstIdentity = dst?.identity ?? this.regenerator.identityOfIp(conn.dstIp);
        const ingressRedirect = dst?.policy?.ingress.entries.some((e) => e.verdict === 'redirect') ?? false;
        return {
          srcIdentity: src.identity,
          dstIdentity,
          source: flowEndpoint(conn.srcIp, src.identity, ctx),
          destination: flowEndpoint(conn.dstIp, dstIdentity, ctx),
          direction: ingressRedirect ? 'INGRESS' : 'EGRESS',
        };
      },
      l7Flow: (fctx, conn) => this.#l7Flow(conn.srcIp, fctx.srcIdentity, conn.dstIp, conn.dstPort, PROTO.TCP, fctx.dstIdentity),
      connectUpstream: (fctx, conn) => connectMarked(conn.dstIp, conn.dstPort, fctx.srcIdentity),
      onFlow: (flow: Flow) => this.flows.push(flow),
      accessLog,
      nodeName: this.config.nodeName,
    };
    this.#proxy = new HttpProxy(deps, {
      httpRequestTimeoutMs: this.config.httpRequestTimeout * 1000,
      normalizePath: this.config.httpNormalizePath,
      accessLogSampleRate: this.config.accessLogSampleRate ?? 1,
    });
    await this.#proxy.listen({ fd: transparentListenFd(this.config.httpProxyPort) });
    // serverNames ports: the same dependencies, judged by decideL7 on the ClientHello's SNI.
    this.#tlsProxy = new TlsPassthrough(deps);
    await this.#tlsProxy.listen({ fd: transparentListenFd(this.config.tlsProxyPort) });
  }

  /**
   * The proxies in worker threads: they get endpoints and identities as deltas (regenerateNow →
   * sync), send flows and access-log lines back in batches, and hand DNS answers to AgentFqdn.
   */
  #spawnProxyWorkers(): void {
    const ctx = this.#flowLookup();
    // Lines arrive serialised; without --access-log they go to the agent log's own stream. The
    // file is opened by #startProxy, before any worker listens.
    const agentStream = (this.log as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym];
    // A batch's lines are written as the worker serialised them, in one piece.
    const writeLines = (lines: Uint8Array, count: number): void => {
      if (this.#accessLogFile) this.#accessLogFile.writeLines(lines, count);
      else agentStream?.write(Buffer.from(lines.buffer, lines.byteOffset, lines.byteLength).toString('utf8'));
    };
    this.#proxyWorkers = new ProxyWorkerPool({
      workers: this.config.proxyWorkers,
      ...(this.config.proxyWorkerPriority === undefined ? {} : { workerPriority: this.config.proxyWorkerPriority }),
      init: {
        nodeName: this.config.nodeName,
        pinRoot: this.config.pinRoot,
        httpProxyPort: this.config.httpProxyPort,
        tlsProxyPort: this.config.tlsProxyPort,
        dnsProxyPort: this.config.dnsProxyPort,
        httpRequestTimeoutMs: this.config.httpRequestTimeout * 1000,
        httpNormalizePath: this.config.httpNormalizePath,
        dnsRejectResponseCode: this.config.dnsRejectResponseCode,
        answerMaxDelayMs: this.config.tofqdnsProxyResponseMaxDelayMs,
        accessLogFormat: this.config.accessLog ? 'file' : 'agent',
        accessLogSampleRate: this.config.accessLogSampleRate ?? 1,
        logLevel: this.config.logLevel,
        maxQueued: Math.max(1024, this.config.flowBuffer),
        // What #startTracing starts in this thread, computed here: the workers start first.
        tracing: tracingConfig(this.config.otlpEndpoint, this.config.nodeName),
        metrics: Boolean(this.config.prometheusServeAddr),
      },
      onFlowMetrics: (delta) => this.#metrics?.mergeFlows(delta),
      endpoints: () => this.endpoints.list(),
      identities: () => this.#regenerator?.identities() ?? [],
      flowEndpoint: (ip, identity) => flowEndpoint(ip, identity, ctx),
      // Kept as the worker's bytes until read (FlowRing.pushJsonArray).
      onFlows: (json, count) => this.flows.pushJsonArray(json, count),
      onLines: writeLines,
      onAnswer: (a) => this.#fqdn!.onAnswer(a),
      fqdnTable: () => this.#fqdn!.learnTable(),
      onPrelearned: (a, written) => this.#fqdn!.onPrelearned(a, written),
      settlePrewritten: (written) => this.#fqdn!.settlePrewritten(written),
      log: this.log.child({ component: 'proxy-workers' }),
    });
    this.#proxyWorkers.spawn();
  }

  /** One access log for both proxies: the rotated file, or the agent's log. */
  #accessLog(): Logger {
    this.#accessLogger ??= this.#accessLogFile ? accessLogger(this.#accessLogFile) : this.log.child({ component: 'accesslog' });
    return this.#accessLogger;
  }

  /**
   * The policy state a proxied request is judged against (`decideL7`): a side that is an endpoint
   * of this node by its policy (null until computed: the proxy fails closed), a side that is not
   * by its own node. `dstIdentity` defaults to what the endpoints and the ipcache say now.
   */
  #l7Flow(srcIp: string, srcIdentity: number, dstIp: string, dport: number, protocol: number, dstIdentity?: number): L7Flow {
    const src = this.endpoints.byIp(srcIp);
    const dst = this.endpoints.byIp(dstIp);
    return {
      srcIdentity,
      dstIdentity: dstIdentity ?? dst?.identity ?? this.regenerator.identityOfIp(dstIp),
      protocol,
      dport,
      ...(src ? { srcPolicy: src.policy } : {}),
      ...(dst ? { dstPolicy: dst.policy } : {}),
    };
  }

  async #startDnsProxy(): Promise<void> {
    // The workers run their own DNS proxies.
    if (this.#proxyWorkers) return;
    const ctx = this.#flowLookup();
    const fqdn = this.#fqdn!;
    this.#dnsProxy = new DnsProxy(
      {
        resolveSource: (srcIp) => {
          const ep = this.endpoints.byIp(srcIp);
          return ep ? { endpointId: ep.id, identity: ep.identity, flowEndpoint: flowEndpoint(srcIp, ep.identity, ctx) } : null;
        },
        l7Flow: (src, dst, protocol) => this.#l7Flow(src.ip, src.identity, dst.ip, dst.port, protocol),
        onAnswer: (a) => fqdn.onAnswer(a),
        upstream: markedUpstream(),
        resolveDestination: (ip) => flowEndpoint(ip, this.endpoints.byIp(ip)?.identity ?? this.regenerator.identityOfIp(ip), ctx),
        onFlow: (flow: Flow) => this.flows.push(flow),
        accessLog: this.#accessLog(),
        nodeName: this.config.nodeName,
      },
      { rejectResponseCode: this.config.dnsRejectResponseCode },
    );
    await this.#dnsProxy.listen({ transparent: true, port: this.config.dnsProxyPort });
  }

  /** The names through which the DNS proxy learned `ip` (lookups and connections still alive). */
  fqdnNamesOf(ip: string): string[] {
    return this.#fqdn?.names.selectionOf(ip.replace(/\/32$/, '')).names ?? [];
  }

  /** Learned names, for `membrane fqdn cache list`. */
  fqdnCache(filter?: { endpointId?: number; name?: string }): ReturnType<NameManager['cacheList']> {
    return this.#fqdn?.names.cacheList(filter) ?? [];
  }

  scheduleRegeneration(): void {
    if (this.#pending) return;
    // Coalesce bursts (an editor saving, several files copied at once) into one pass.
    this.#pending = setTimeout(() => {
      this.#pending = null;
      this.regenerateNow();
    }, 25);
  }

  regenerateNow(): RegenerationResult {
    return this.#priority ? this.#priority.run(() => this.#regenerate()) : this.#regenerate();
  }

  #regenerate(): RegenerationResult {
    const policies = this.policies.policies();
    const result = this.regenerator.regenerate(policies, this.services.list());
    this.#lastRegeneration = result;
    this.#metrics?.observeRegeneration(result.durationMs / 1000, 'success');
    // What changed (policies, endpoints, identities) goes to the proxy workers, and only that.
    this.#proxyWorkers?.sync();
    // Which learned IPs the new policy's toFQDNs selectors select: pushed incrementally. The
    // same policies (an endpoint change) select the same IPs: nothing to push.
    if (!samePolicies(policies, this.#fqdnPolicies)) {
      this.#fqdnPolicies = policies;
      this.#fqdn?.setPolicies(policies).catch((err: unknown) => this.log.error({ err }, 'FQDN selectors not applied'));
    }
    return result;
  }

  /**
   * One regeneration for every endpoint change made in this event-loop turn: API calls that
   * arrive together (a node starting many pods) share a pass instead of one full pass each.
   * Resolves after the pass (its result); rejects as `regenerateNow` throws.
   */
  #regenerateSoon(): Promise<RegenerationResult> {
    if (!this.#soon) {
      this.#soon = new Promise<RegenerationResult>((resolve, reject) => {
        setImmediate(() => {
          this.#soon = null;
          try {
            resolve(this.regenerateNow());
          } catch (err) {
            reject(err as Error);
          }
        });
      });
    }
    return this.#soon;
  }

  /**
   * Registers (or replaces) an endpoint: resolves once its policy is in the datapath (shared
   * with the other changes of the same turn) and the state file holds it, so an acknowledged
   * endpoint is restored after a crash. Throws MEMBRANE_ERR_ENDPOINT_INVALID, MEMBRANE_ERR_STATE.
   */
  async upsertEndpoint(spec: EndpointSpec): Promise<Endpoint> {
    const ep = this.endpoints.upsert(spec);
    // Cilium's handling of a visibility annotation that does not parse: warn, enforce without it.
    if (ep.visibilityError) this.log.warn({ endpoint: `${ep.namespace}/${ep.name}`, error: ep.visibilityError }, 'proxy visibility annotation ignored');
    const saved = this.endpoints.persisted();
    await this.#regenerateSoon();
    await saved;
    return ep;
  }

  /** Removes an endpoint's map state at once; resolves after the next pass and once the state file no longer holds it. */
  async removeEndpoint(namespace: string, name: string): Promise<Endpoint> {
    const ep = this.endpoints.remove(namespace, name);
    this.regenerator.forget(ep);
    // As Cilium on an endpoint's deletion: its connections are scrubbed from conntrack and its DNS
    // history goes, so a pod that later gets its address or id inherits neither.
    this.#scrubSoon(ep.ip);
    const forgotten = this.#fqdn?.forgetEndpoint(ep.id);
    const saved = this.endpoints.persisted();
    await this.#regenerateSoon();
    await forgotten;
    await saved;
    return ep;
  }

  /** Removed endpoints' addresses of this turn, scrubbed from conntrack in one pass over the map. */
  #scrub = new Set<string>();

  #scrubSoon(ip: string): void {
    if (this.#scrub.size === 0) {
      setImmediate(() => {
        const ips = this.#scrub;
        this.#scrub = new Set();
        try {
          this.datapath.scrubConntrack(ips);
        } catch (err) {
          this.log.warn({ err, addresses: [...ips] }, 'conntrack entries of removed endpoints not scrubbed');
        }
      });
    }
    this.#scrub.add(ip);
  }

  upsertService(svc: ServiceInput): void {
    this.services.upsert(svc);
    this.regenerateNow();
  }

  removeService(namespace: string, name: string): void {
    this.services.remove(namespace, name);
    this.regenerateNow();
  }

  loadedPolicies(): PolicyObject[] {
    return this.policies.policies();
  }

  /** Ends proxy worker `index` as a crash would; the agent restarts it (see ProxyWorkerPool.kill). */
  killProxyWorker(index: number): { killed: number } {
    if (!this.#proxyWorkers) throw membraneError('MEMBRANE_ERR_API_REQUEST', 'the proxies run in-process (--proxy-workers 0): no worker to kill');
    this.#proxyWorkers.kill(index);
    return { killed: index };
  }

  async status(): Promise<Record<string, unknown>> {
    const workers = (await this.#proxyWorkers?.status()) ?? null;
    const totals = workers ? ProxyWorkerPool.totals(workers) : null;
    return {
      nodeName: this.config.nodeName,
      netns: this.config.netns,
      regeneration: this.#lastRegeneration,
      policyRevision: this.policies.revision,
      endpoints: this.endpoints.list().length,
      policies: this.policies.policies().length,
      policyProblems: this.policies.problems(),
      policyWarnings: this.policies.warnings(),
      // With workers: their counters summed, and each worker's below.
      proxy: totals ? totals.http : (this.#proxy?.stats() ?? null),
      dnsProxy: totals ? totals.dns : (this.#dnsProxy?.stats() ?? null),
      tlsProxy: totals ? totals.tls : this.#tlsProxy ? { ...this.#tlsProxy.stats } : null,
      proxyWorkers: workers,
      fqdn: this.#fqdn?.names.stats() ?? null,
      accessLog: this.#accessLogFile ? { file: this.#accessLogFile.path, ...this.#accessLogFile.stats() } : null,
      malformedEvents: this.#malformedEvents,
      datapath: Object.fromEntries(
        [...this.datapath.readMetrics()].map(([slot, v]) => [slot === 0 ? 'forwarded' : `drop_${slot}`, Number(v.packets)]),
      ),
    };
  }

  async stop(): Promise<void> {
    if (this.#pending) clearTimeout(this.#pending);
    await this.#hubble?.close();
    await this.#api?.close();
    await this.#metricsServer?.close();
    await this.policies.close();
    await this.#proxy?.close();
    await this.#dnsProxy?.close();
    await this.#tlsProxy?.close();
    await this.#proxyWorkers?.close();
    this.#untrace?.();
    await this.#tracing?.shutdown();
    // Writes in flight (endpoints, timed FQDN-cache and identity saves) land before the final
    // synchronous ones, which then run in the same turn: no timed save can start in between and
    // rename an older snapshot over them.
    await this.#soon?.catch(() => undefined);
    await this.#store.settled();
    this.#fqdn?.stop();
    this.#identities.flush();
    await this.#accessLogFile?.close();
    this.#stopEvents?.();
    // Only our fds close: pinned programs and maps keep enforcing until the next start.
    this.#datapath?.close();
    this.#datapath = null;
    this.log.info('agent stopped; pinned datapath stays in force');
    await new Promise<void>((resolve) => this.log.flush(() => resolve()));
  }
}

/** The same policy objects in the same order (PolicyDirectory keeps a file's objects until it changes). */
function samePolicies(a: readonly PolicyObject[], b: readonly PolicyObject[] | null): boolean {
  return b !== null && a.length === b.length && a.every((p, i) => p === b[i]);
}
