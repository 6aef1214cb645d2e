/**
 * The agent's side of the proxy workers: starts N worker threads (worker.ts), feeds them the
 * endpoints and identities (a snapshot at each start, then only what changed), takes their
 * flow / access-log batches and DNS answers, restarts one that dies (the others keep serving:
 * its listeners leave the SO_REUSEPORT groups with it), and drains them all on close.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { threadNice } from '../datapath/index.js';
import { membraneError } from '../errors/index.js';
import type { DnsAnswer, DnsProxyStats } from '../dnsproxy/index.js';
import type { ProxyStats, TlsPassthroughStats } from '../l7proxy/index.js';
import type { FlowMetricsDelta } from '../metrics/index.js';
import type { FlowEndpoint } from '../observe/index.js';
import { extendsList, formatLabel, type DirectionPolicy, type EndpointPolicy, type Identity } from '../policy/index.js';
import { answeredReply } from './answered.js';
import { policyPatch } from './policy-patch.js';
import type { Delta, EndpointState, FqdnLearnTable, FromWorker, IdentityState, PolicyPatch, PrewrittenIp, ToWorker, WorkerCounters, WorkerInit } from './protocol.js';

/**
 * Default `--proxy-workers`: one per CPU, as Envoy's `--concurrency` defaults to the hardware
 * threads (Cilium starts cilium-envoy without `--concurrency`), capped at 8 because each worker
 * is a whole V8 isolate (~15–30 MB) rather than an Envoy thread.
 */
export function defaultProxyWorkers(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}

/**
 * Default `workerPriority`: the proxy worker threads run 10 nice steps above the agent's own
 * priority (CFS weight 9548 vs 1024), so a worker woken by a request runs at once rather than
 * after the control plane's slice. Under policy and endpoint churn on 2 shared cores the
 * worker's run-queue wait otherwise doubles (regenerations, attaches, state writes and API calls
 * of the agent, and the CNI's own calls, take the core it would run on) and its p99 with it; the
 * churn's messages themselves cost the worker under 1 ms per second (issue-9 isolation). 5 steps
 * (weight 3121) left the wait 1.75× quiet. The cost: a worker saturating a core leaves the
 * control plane ~10% of that core (the others are its as before). Cilium has no worker threads.
 */
export const DEFAULT_PROXY_WORKER_PRIORITY = 10;

/**
 * The workers' priority when none is asked for: DEFAULT_PROXY_WORKER_PRIORITY while the workers
 * leave at least one CPU to the agent's thread, else 0. Workers raised on every core would leave
 * the control plane ~10% of one while they are saturated, and DNS answers (released by the agent
 * once their addresses are in the maps), flow batches and the API all wait on it; a flood through
 * one pod's proxy must not hold back another pod's answers.
 */
export function defaultWorkerPriority(workers: number, cpus = availableParallelism()): number {
  return workers < cpus ? DEFAULT_PROXY_WORKER_PRIORITY : 0;
}

/** A local endpoint as the agent holds it (src/agent/endpoints.ts `Endpoint`, structurally). */
export interface EndpointSource {
  readonly ip: string;
  readonly id: number;
  readonly identity: number;
  readonly labels: readonly unknown[];
  readonly policy: EndpointPolicy | null;
}

export interface ProxyWorkerPoolOptions {
  readonly workers: number;
  readonly init: Omit<WorkerInit, 'index'>;
  /** The agent's endpoints and identities now (read at each `sync`). */
  readonly endpoints: () => Iterable<EndpointSource>;
  readonly identities: () => readonly Identity[];
  /** The flow endpoint of a local endpoint (src/agent/flows.ts `flowEndpoint`). */
  readonly flowEndpoint: (ip: string, identity: number) => FlowEndpoint;
  /** `count` flows as one JSON array in UTF-8 (FlowRing.pushJsonArray takes it as it is). */
  readonly onFlows: (json: Uint8Array, count: number) => void;
  /** What a worker counted of its flows since its previous batch (with `init.metrics`): MembraneMetrics.mergeFlows. */
  readonly onFlowMetrics?: (delta: FlowMetricsDelta) => void;
  /** `count` access-log lines in UTF-8, concatenated as the worker serialised them (each ends in `\n`). */
  readonly onLines: (lines: Uint8Array, count: number) => void;
  /**
   * AgentFqdn.onAnswer: resolves when the answer's IPs are in the datapath, `{ timedOut: true }`
   * when it gave up waiting at the max delay; with `epoch` (the FQDN epoch it began in) and `ips`
   * (the answer's IPs it taught the datapath) a result not timed out lets the worker release
   * repeats of those IPs at once (answered.ts). The identities and
   * policies it produced must reach the workers (`sync`) before it resolves: AgentFqdn.onApplied.
   */
  readonly onAnswer: (a: DnsAnswer) => Promise<unknown>;
  /**
   * What the workers need to release answers whose new addresses join identities the maps hold
   * (prelearn.ts; AgentFqdn.learnTable), read at each `sync`; without it every answer takes the
   * round trip.
   */
  readonly fqdnTable?: () => FqdnLearnTable;
  /**
   * AgentFqdn.onPrelearned: an answer a worker released after writing `written` into the ipcache
   * itself; and AgentFqdn.settlePrewritten for an answer that still took the round trip after the
   * worker wrote some of its addresses.
   */
  readonly onPrelearned?: (a: DnsAnswer, written: readonly PrewrittenIp[]) => Promise<unknown>;
  readonly settlePrewritten?: (written: readonly PrewrittenIp[]) => void;
  readonly log: Logger;
  /** Wait before restarting a dead worker, ms; doubles while it keeps dying (≤ 5 s). Default 100. */
  readonly restartDelayMs?: number;
  /**
   * How many nice steps (0…20) above the agent's priority (its thread's nice when the pool is
   * made) the worker threads run; 0: the agent's. Default defaultWorkerPriority(workers). Raising
   * a thread's priority needs CAP_SYS_NICE (the agent has it as root): without it a worker keeps
   * the agent's priority and the pool logs a warning.
   */
  readonly workerPriority?: number;
}

/** One worker in `membrane status`. */
export interface WorkerStatus {
  readonly index: number;
  readonly threadId: number | null;
  readonly state: 'starting' | 'ready' | 'restarting' | 'stopped';
  /** Times this slot's worker died and was started again. */
  readonly restarts: number;
  /** Counters as of the last report of the worker running now. */
  readonly counters: WorkerCounters | null;
  /**
   * What this slot's earlier, dead workers had counted at their last report (levels such as open
   * connections are 0: they died with them), so totals never go down when a worker is restarted.
   */
  readonly retired: RetiredCounters | null;
}

/** The summed sections of WorkerCounters that `totals` reports. */
type Totals = {
  http: ProxyStats | null;
  tls: TlsPassthroughStats | null;
  dns: DnsProxyStats | null;
  otlp: NonNullable<WorkerCounters['otlp']> | null;
};
export type RetiredCounters = Totals;

/** Fields that are levels (open now), not counts: a dead worker contributes none of them. */
const LEVELS: Readonly<Record<keyof Totals, readonly string[]>> = {
  http: ['connections', 'upstreamPools'],
  tls: ['active'],
  dns: ['inflight', 'tcpConnections'],
  otlp: [],
};

/** Adds the numeric fields of each section (a missing section counts as none). */
function addSections(parts: readonly Totals[], levelsToo: boolean): Totals {
  const sum = <K extends keyof Totals>(key: K): Totals[K] => {
    const all = parts.flatMap((p) => (p[key] ? [p[key] as object] : []));
    if (all.length === 0) return null;
    const out: Record<string, number> = {};
    for (const c of all) {
      for (const [k, v] of Object.entries(c)) {
        if (typeof v !== 'number') continue;
        out[k] = (out[k] ?? 0) + (levelsToo || !LEVELS[key].includes(k) ? v : 0);
      }
    }
    return out as unknown as Totals[K];
  };
  return { http: sum('http'), tls: sum('tls'), dns: sum('dns'), otlp: sum('otlp') };
}

function sectionsOf(c: WorkerCounters): Totals {
  return { http: c.http, tls: c.tls, dns: c.dns, otlp: c.otlp ?? null };
}

interface Slot {
  readonly index: number;
  worker: Worker | null;
  state: WorkerStatus['state'];
  restarts: number;
  /** Consecutive deaths before becoming ready: the restart back-off. */
  failures: number;
  counters: WorkerCounters | null;
  /** Counts of this slot's dead workers (WorkerStatus.retired). */
  retired: Totals | null;
  ready: Promise<void>;
  statsWaiters: Map<number, () => void>;
}

/** Where the compiled worker entry is: next to this file in dist/, or dist/ when run from src/ (tests). */
function workerEntry(): string {
  const here = new URL('./worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return fileURLToPath(here);
  const dist = fileURLToPath(new URL('../../dist/proxyworker/worker.js', import.meta.url));
  if (!existsSync(dist)) throw membraneError('MEMBRANE_ERR_PROXY_LISTEN', `${dist} is missing: build with npx tsc -p tsconfig.json`);
  return dist;
}

/**
 * `MEMBRANE_BENCH_PROFILE=DIR` (the benchmarks' profile switch): each worker writes a V8 CPU
 * profile of its whole life to DIR (`--cpu-prof`, CPU.<date>.<pid>.<thread>.*.cpuprofile) when
 * it exits, as the agent's main-thread profile goes there too. Unset: workers get the default.
 */
function workerExecArgv(): string[] | undefined {
  const dir = process.env.MEMBRANE_BENCH_PROFILE;
  if (!dir) return undefined;
  // Of the agent's own flags, the Node.js options a worker can take (those NODE_OPTIONS allows):
  // a process-wide V8 flag such as the agent's --single-threaded-gc (src/cli/agent-node-flags.ts)
  // is refused in a worker's execArgv ("invalid execArgv flags"), and applies to it anyway; so
  // are V8's heap sizes, which NODE_OPTIONS does allow (the agent's --max-semi-space-size).
  const own = process.execArgv.filter((a) => {
    const name = a.split('=')[0]!;
    return process.allowedNodeEnvironmentFlags.has(name) && !/^--max-(semi|old)-space-size$/.test(name);
  });
  return [...own, '--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/** The agent's thread nice − `priority` (≥ −20); undefined (inherit) when the addon cannot tell the thread's nice. */
function workerNice(priority: number, log: Logger): number | undefined {
  try {
    return Math.max(-20, threadNice() - priority);
  } catch (err) {
    log.warn({ err }, 'proxy workers run at the agent\'s CPU priority: its own could not be read');
    return undefined;
  }
}

const sameDirection = (a: DirectionPolicy, b: DirectionPolicy): boolean =>
  a.enforced === b.enforced && a.entries.length === b.entries.length && a.entries.every((e, i) => e === b.entries[i]);

/** Same entries (by reference): an FQDN update rebuilds every endpoint's policy object, most unchanged. */
function samePolicy(a: EndpointPolicy | null, b: EndpointPolicy | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return sameDirection(a.ingress, b.ingress) && sameDirection(a.egress, b.egress);
}

interface SentEndpoint {
  readonly source: { identity: number; id: number; labels: readonly unknown[]; policy: EndpointPolicy | null };
  readonly state: EndpointState;
}

export class ProxyWorkerPool {
  readonly #o: ProxyWorkerPoolOptions;
  readonly #slots: Slot[] = [];
  readonly #entry: string;
  /** What every worker has been sent: the base of the next delta and of a new worker's snapshot. */
  readonly #endpoints = new Map<string, SentEndpoint>();
  readonly #identities = new Map<number, { labels: readonly unknown[]; state: IdentityState }>();
  /** The identities list `#identities` was last brought up to date with. */
  #identityList: readonly Identity[] | null = null;
  #stopping = false;
  /** The first snapshot went out (the first `sync`): from then on a (re)started worker gets one at once. */
  #fed = false;
  /** The FQDN learn table last sent to the workers (a (re)started worker gets it after its snapshot). */
  #table: FqdnLearnTable | null = null;
  #spawnedAt = 0;
  #statsSeq = 0;
  #deltas = 0;
  #resyncs = 0;
  /** What each worker sets its thread's nice to (WorkerInit.nice); undefined: inherited. */
  readonly #workerNice: number | undefined;

  constructor(options: ProxyWorkerPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new RangeError(`workers must be ≥ 1, got ${options.workers}`);
    const priority = options.workerPriority ?? defaultWorkerPriority(options.workers);
    if (!Number.isInteger(priority) || priority < 0 || priority > 20) throw new RangeError(`workerPriority must be 0…20, got ${priority}`);
    this.#o = options;
    this.#entry = workerEntry();
    // The agent's own priority, read once: a worker restarted later gets the same value whatever
    // the thread's nice is then (the control plane may be running raised: agent/priority.ts).
    this.#workerNice = priority === 0 ? undefined : workerNice(priority, options.log);
  }

  /**
   * Starts the worker threads. They load their code meanwhile (module loading is most of a
   * worker's start-up), and join their listener groups only once the first `sync` has fed them
   * the agent's state: a worker never serves with endpoints whose policy is not computed yet.
   * Worker 0 starts alone and the others once it serves: on a busy node the first listener of
   * each group (what ends an agent restart's gap in DNS and HTTP) does not share the CPU with
   * the other workers' start-up; the rest join the groups as they come.
   */
  spawn(): void {
    if (this.#slots.length > 0) return;
    this.#spawnedAt = performance.now();
    for (let i = 0; i < this.#o.workers; i++) {
      this.#slots.push({ index: i, worker: null, state: 'starting', restarts: 0, failures: 0, counters: null, retired: null, ready: Promise.resolve(), statsWaiters: new Map() });
    }
    const [first, ...rest] = this.#slots;
    this.#spawn(first!);
    const spawnRest = (): void => {
      if (this.#stopping) return;
      for (const slot of rest) this.#spawn(slot);
      void Promise.all(rest.map((s) => s.ready)).then(
        () => this.#o.log.info({ workers: this.#o.workers, startMs: Math.round(performance.now() - this.#spawnedAt) }, 'proxy workers serving'),
        () => undefined,
      );
    };
    first!.ready.then(spawnRest, spawnRest);
  }

  /**
   * Resolves when the first worker listens (each port's group has a member: the node is served);
   * rejects if it could not (MEMBRANE_ERR_PROXY_LISTEN). The others follow in the background.
   */
  async ready(): Promise<void> {
    await this.#slots[0]?.ready;
    this.#o.log.info({ startMs: Math.round(performance.now() - this.#spawnedAt) }, 'first proxy worker serving');
  }

  /** `spawn`, feed the current state, and wait until the first worker listens. */
  async start(): Promise<void> {
    this.spawn();
    this.sync();
    await this.ready();
  }

  /**
   * Sends the changes since the last sync (after a regeneration, an endpoint or identity change);
   * the first call sends every worker its snapshot.
   */
  sync(): void {
    if (!this.#fed) {
      this.#fed = true;
      this.#diff();
      const snapshot = this.#snapshot();
      for (const s of this.#slots) s.worker?.postMessage({ t: 'snapshot', delta: snapshot } satisfies ToWorker);
      this.#sendTable();
      return;
    }
    const delta = this.#diff();
    if (delta) {
      this.#deltas++;
      for (const s of this.#slots) s.worker?.postMessage({ t: 'delta', delta } satisfies ToWorker);
    }
    this.#sendTable();
  }

  /** The FQDN learn table, when it changed: after the deltas that carry its identities, on the same ports. */
  #sendTable(): void {
    const table = this.#o.fqdnTable?.();
    if (!table || table.version === this.#table?.version) return;
    this.#table = table;
    for (const s of this.#slots) s.worker?.postMessage({ t: 'fqdn-table', table } satisfies ToWorker);
  }

  /** The FQDN epoch moved on (AgentFqdn.onEpoch): every worker forgets the answers it knew (known-answers.ts). */
  fqdnEpochChanged(epoch: number): void {
    for (const s of this.#slots) s.worker?.postMessage({ t: 'fqdn-epoch', epoch } satisfies ToWorker);
  }

  /** Deltas sent so far (for status). */
  get deltas(): number {
    return this.#deltas;
  }

  /** Snapshots sent to a worker that asked for one (its state went stale: a policy patch did not apply). */
  get resyncs(): number {
    return this.#resyncs;
  }

  /** Per-worker state and counters, fresh (each worker asked, ≤ 500 ms). */
  async status(): Promise<WorkerStatus[]> {
    await Promise.all(this.#slots.map((s) => this.#askStats(s)));
    return this.#slots.map((s) => ({ index: s.index, threadId: s.worker?.threadId ?? null, state: s.state, restarts: s.restarts, counters: s.counters, retired: s.retired }));
  }

  /**
   * Every worker's HTTP, TLS and DNS counters summed, dead workers' last reports included (counts
   * made after a worker's last report die with it): the in-process proxy's `status` shape.
   */
  static totals(workers: readonly WorkerStatus[]): Totals {
    const parts = workers.flatMap((w) => [...(w.counters ? [sectionsOf(w.counters)] : []), ...(w.retired ? [w.retired] : [])]);
    return addSections(parts, true);
  }

  /**
   * Ends worker `index` at once, as if it crashed (in-flight connections on it are cut), so that
   * it is restarted like one that died. Throws MEMBRANE_ERR_API_REQUEST for an index out of range.
   */
  kill(index: number): void {
    const slot = this.#slots[index];
    if (!slot) throw membraneError('MEMBRANE_ERR_API_REQUEST', `no proxy worker ${index}: there are ${this.#slots.length} (0…${this.#slots.length - 1})`);
    void slot.worker?.terminate();
  }

  /** Drains every worker (each proxy's close(): in-flight requests get their grace), then ends them. */
  async close(graceMs = 2000): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#slots.map(async (s) => {
        const w = s.worker;
        s.state = 'stopped';
        if (!w) return;
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.postMessage({ t: 'stop', graceMs } satisfies ToWorker);
        // HttpProxy's own close grace is 5 s; past that and a margin the thread is ended.
        const timer = setTimeout(() => void w.terminate(), Math.max(graceMs, 5000) + 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  #spawn(slot: Slot): void {
    const init: WorkerInit = { ...this.#o.init, index: slot.index, ...(this.#workerNice === undefined ? {} : { nice: this.#workerNice }) };
    // The agent's thread runs with a small young generation (`--max-semi-space-size`, see
    // src/cli/agent-node-flags.ts); V8 reads the flag when an isolate is created, so with it
    // cleared the proxy workers, which allocate per request and keep little, get V8's default.
    setFlagsFromString('--max-semi-space-size=0');
    const w = new Worker(this.#entry, { workerData: init, execArgv: workerExecArgv() });
    slot.worker = w;
    slot.state = slot.restarts > 0 ? 'restarting' : 'starting';
    let markReady!: () => void;
    let fail!: (err: Error) => void;
    slot.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      fail = reject;
    });
    // Awaited by `ready()` at start only; otherwise a failure is logged (exit handler), not thrown.
    slot.ready.catch(() => undefined);
    w.on('message', (m: FromWorker) => this.#onMessage(slot, w, m, markReady, fail));
    w.on('error', (err) => this.#o.log.error({ err, worker: slot.index }, 'proxy worker failed'));
    w.on('exit', (code) => {
      if (slot.worker !== w) return;
      slot.worker = null;
      if (slot.counters) {
        slot.retired = addSections([...(slot.retired ? [slot.retired] : []), sectionsOf(slot.counters)], false);
        slot.counters = null;
      }
      for (const done of slot.statsWaiters.values()) done();
      slot.statsWaiters.clear();
      if (this.#stopping) {
        slot.state = 'stopped';
        return;
      }
      fail(membraneError('MEMBRANE_ERR_PROXY_LISTEN', `proxy worker ${slot.index} exited (${code}) before listening`));
      slot.restarts++;
      slot.failures++;
      slot.state = 'restarting';
      const delay = Math.min(5000, (this.#o.restartDelayMs ?? 100) * 2 ** Math.min(slot.failures - 1, 6));
      this.#o.log.error({ worker: slot.index, exitCode: code, restarts: slot.restarts, restartInMs: delay }, 'proxy worker exited; restarting it (the other workers keep serving)');
      setTimeout(() => {
        if (!this.#stopping) this.#spawn(slot);
      }, delay).unref();
    });
    if (this.#fed) w.postMessage({ t: 'snapshot', delta: this.#snapshot() } satisfies ToWorker);
    if (this.#table) w.postMessage({ t: 'fqdn-table', table: this.#table } satisfies ToWorker);
  }

  #onMessage(slot: Slot, w: Worker, m: FromWorker, markReady: () => void, fail: (err: Error) => void): void {
    switch (m.t) {
      case 'ready':
        slot.state = 'ready';
        slot.failures = 0;
        if (m.niceError !== undefined) this.#o.log.warn({ worker: slot.index, wanted: this.#workerNice, nice: m.nice, error: m.niceError }, 'proxy worker runs at the agent\'s CPU priority: its own could not be raised');
        if (slot.restarts > 0) this.#o.log.info({ worker: slot.index, restarts: slot.restarts }, 'proxy worker restarted and serving');
        markReady();
        break;
      case 'batch':
        if (m.flows && m.flowCount > 0) this.#o.onFlows(m.flows, m.flowCount);
        if (m.lines && m.lineCount > 0) this.#o.onLines(m.lines, m.lineCount);
        if (m.metrics) this.#o.onFlowMetrics?.(m.metrics);
        w.postMessage({ t: 'ack', flows: m.flowCount, lines: m.lineCount } satisfies ToWorker);
        break;
      case 'answer': {
        // No sync here: the identities and policies an answer produces reach the workers from the
        // FQDN apply itself (AgentFqdn.onApplied → sync), before the answer settles, on this port.
        this.#o
          .onAnswer(m.answer)
          .then(answeredReply, (err: unknown) => ({ error: (err as Error).message ?? String(err) }))
          .then((r) => {
            if (m.written && m.written.length > 0) this.#o.settlePrewritten?.(m.written);
            if (slot.worker === w) w.postMessage({ t: 'answered', id: m.id, ...r } satisfies ToWorker);
          });
        break;
      }
      case 'learned':
        // Already released by the worker (known-answers.ts): only the FQDN cache's TTLs move.
        for (const a of m.answers) this.#o.onAnswer(a).catch((err: unknown) => this.#o.log.warn({ err, qname: a.qname }, 'FQDN refresh from a proxy worker failed'));
        break;
      case 'prelearned':
        // Released by the worker, its new addresses written (prelearn.ts): the agent learns it now.
        (this.#o.onPrelearned ? this.#o.onPrelearned(m.answer, m.written) : this.#o.onAnswer(m.answer)).catch((err: unknown) =>
          this.#o.log.warn({ err, qname: m.answer.qname }, 'FQDN update from a proxy worker failed'),
        );
        break;
      case 'resync':
        // The snapshot is what every worker was sent so far; deltas after it follow on this port.
        // Bounded by the worker (one outstanding, one per second: resync.ts); before the first
        // sync the worker has nothing to patch, and its snapshot comes with the first sync.
        if (!this.#fed || slot.worker !== w) break;
        this.#resyncs++;
        this.#o.log.warn({ worker: slot.index }, 'proxy worker could not apply a policy patch; sending it a full snapshot');
        w.postMessage({ t: 'snapshot', delta: this.#snapshot() } satisfies ToWorker);
        break;
      case 'stats':
        slot.counters = m.counters;
        slot.statsWaiters.get(m.seq)?.();
        slot.statsWaiters.delete(m.seq);
        break;
      case 'fatal':
        this.#o.log.error({ worker: slot.index, error: m.message }, 'proxy worker could not listen');
        fail(membraneError('MEMBRANE_ERR_PROXY_LISTEN', `proxy worker ${slot.index}: ${m.message}`));
        break;
    }
  }

  #askStats(slot: Slot): Promise<void> {
    const w = slot.worker;
    if (!w) return Promise.resolve();
    const seq = ++this.#statsSeq;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        slot.statsWaiters.delete(seq);
        resolve();
      }, 500);
      slot.statsWaiters.set(seq, () => {
        clearTimeout(timer);
        resolve();
      });
      w.postMessage({ t: 'stats?', seq } satisfies ToWorker);
    });
  }

  #snapshot(): Delta {
    return {
      endpoints: [...this.#endpoints.values()].map((e) => e.state),
      removedEndpoints: [],
      identities: [...this.#identities.values()].map((i) => i.state),
      removedIdentities: [],
    };
  }

  /** Updates what was sent to what the agent holds now; null when nothing changed. */
  #diff(): Delta | null {
    const endpoints: EndpointState[] = [];
    const removedEndpoints: string[] = [];
    const policyPatches: PolicyPatch[] = [];
    const seen = new Set<string>();
    for (const ep of this.#o.endpoints()) {
      seen.add(ep.ip);
      const prev = this.#endpoints.get(ep.ip);
      const p = prev?.source;
      if (p && p.id === ep.id && p.identity === ep.identity && p.labels === ep.labels && samePolicy(p.policy, ep.policy)) continue;
      // Only the policy changed, by a few entries (an FQDN update): the change goes, not the policy.
      const sentPolicy = prev?.state.policy;
      if (p && p.id === ep.id && p.identity === ep.identity && p.labels === ep.labels && sentPolicy && ep.policy) {
        const patch = policyPatch(sentPolicy, ep.policy, p.policy);
        if (patch) {
          this.#endpoints.set(ep.ip, { source: { id: ep.id, identity: ep.identity, labels: ep.labels, policy: ep.policy }, state: { ...prev.state, policy: patch.result } });
          policyPatches.push({ ip: ep.ip, ingress: patch.ingress, egress: patch.egress });
          continue;
        }
      }
      const state: EndpointState = { ip: ep.ip, id: ep.id, identity: ep.identity, policy: ep.policy, flowEndpoint: this.#o.flowEndpoint(ep.ip, ep.identity) };
      this.#endpoints.set(ep.ip, { source: { id: ep.id, identity: ep.identity, labels: ep.labels, policy: ep.policy }, state });
      endpoints.push(state);
    }
    for (const ip of this.#endpoints.keys()) {
      if (!seen.has(ip)) {
        this.#endpoints.delete(ip);
        removedEndpoints.push(ip);
      }
    }
    const identities: IdentityState[] = [];
    const removedIdentities: number[] = [];
    // An FQDN update adds a few identities to thousands, and the regenerator's list then holds the
    // same objects as before, with the new ones after them: only those are looked at (a pass over
    // every identity per update was most of its cost). Listed ids are counted, not collected:
    // every id listed is kept, so when as many are kept none went (ids are unique: a by-id list).
    const list = this.#o.identities();
    const sent = this.#identityList;
    const from = sent !== null && sent.length === this.#identities.size && extendsList(list, sent) ? sent.length : 0;
    const listed = list.length;
    for (let k = from; k < list.length; k++) {
      const i = list[k]!;
      const prev = this.#identities.get(i.id);
      if (prev && prev.labels === i.labels) continue;
      const state: IdentityState = { id: i.id, labels: i.labels.map(formatLabel).sort() };
      if (prev && prev.state.labels.join('\n') === state.labels.join('\n')) {
        this.#identities.set(i.id, { labels: i.labels, state: prev.state });
        continue;
      }
      this.#identities.set(i.id, { labels: i.labels, state });
      identities.push(state);
    }
    if (listed !== this.#identities.size) {
      const ids = new Set<number>();
      for (const i of list) ids.add(i.id);
      for (const id of this.#identities.keys()) {
        if (!ids.has(id)) {
          this.#identities.delete(id);
          removedIdentities.push(id);
        }
      }
    }
    this.#identityList = list;
    if (endpoints.length + removedEndpoints.length + identities.length + removedIdentities.length + policyPatches.length === 0) return null;
    return { endpoints, removedEndpoints, identities, removedIdentities, ...(policyPatches.length > 0 ? { policyPatches } : {}) };
  }
}
