/**
 * The messages between the agent and its proxy workers (worker_threads, structured clone).
 *
 *   agent ──init (workerData)──► worker        ports, options, pin root, access-log format
 *   agent ──snapshot──────────► worker        every local endpoint and identity, once per start
 *   agent ──delta─────────────► worker        after a regeneration / endpoint / identity change:
 *                                              only what changed (upserts and removals)
 *   worker ──ready────────────► agent         its listeners are in the SO_REUSEPORT groups
 *   worker ──batch────────────► agent         flows (a JSON array) + access-log lines (as written),
 *                                              every ≤25 ms or 512 items: two strings per batch,
 *                                              + with metrics, the flow-metric deltas since the last
 *   agent ──ack───────────────► worker        a batch was taken (bounds what is in flight)
 *   worker ──answer───────────► agent         a DNS answer's learned IPs (AgentFqdn.onAnswer)
 *   agent ──answered──────────► worker        the datapath has them: release the answer
 *   worker ──learned──────────► agent         answers already released (known-answers.ts): their TTLs
 *   agent ──fqdn-epoch────────► worker        a selection may have shrunk: forget the known answers
 *   agent ──fqdn-table────────► worker        toFQDNs selectors and the identities the maps hold
 *                                              for learned addresses (prelearn.ts)
 *   worker ──prelearned───────► agent         an answer released after the worker wrote its new
 *                                              addresses itself (prelearn.ts): the agent learns it
 *   worker ──resync───────────► agent         a policy patch did not apply (endpoint denied): send a
 *                                              snapshot (≤ 1 outstanding, ≤ 1 per second: resync.ts)
 *   agent ──stats?  / worker ──stats           per-worker counters for `membrane status`
 *   agent ──stop──────────────► worker        close() the proxies (grace as in-process), then exit
 *
 * Everything is plain data: policies are `EndpointPolicy` (regexes are compiled lazily by the
 * worker's own src/re2 cache), flow endpoints are Hubble's `FlowEndpoint` already formatted.
 */
import type { FlowEndpoint } from '../observe/index.js';
import type { FlowMetricsDelta } from '../metrics/index.js';
import type { EndpointPolicy, FqdnSelectorInfo, MapEntry } from '../policy/index.js';
import type { DnsAnswer, DnsProxyStats, RejectResponseCode } from '../dnsproxy/index.js';
import type { ProxyStats, TlsPassthroughStats } from '../l7proxy/index.js';
import type { TracingConfig } from '../tracing/index.js';

/** A local endpoint as the proxies need it: who it is (for flows) and its resolved policy. */
export interface EndpointState {
  readonly ip: string;
  readonly id: number;
  readonly identity: number;
  /** null until the endpoint's policy is computed: requests from or to it are denied (fail closed). */
  readonly policy: EndpointPolicy | null;
  /** As `flowEndpoint` of src/agent/flows.ts builds it for a local endpoint. */
  readonly flowEndpoint: FlowEndpoint;
}

/** A security identity's labels, `source:key=value`, sorted (flows of non-local peers). */
export interface IdentityState {
  readonly id: number;
  readonly labels: readonly string[];
}

/** What a worker is started with (workerData). */
export interface WorkerInit {
  readonly index: number;
  readonly nodeName: string;
  readonly pinRoot: string;
  readonly httpProxyPort: number;
  readonly tlsProxyPort: number;
  readonly dnsProxyPort: number;
  readonly httpRequestTimeoutMs: number;
  readonly httpNormalizePath: boolean;
  readonly dnsRejectResponseCode: RejectResponseCode;
  /** How long an answer waits for `answered` before it is released anyway (`--tofqdns-proxy-response-max-delay`). */
  readonly answerMaxDelayMs: number;
  /** 'file': lines as `accessLogger(file)` writes them (no base); 'agent': as the agent log's `accesslog` child. */
  readonly accessLogFormat: 'file' | 'agent';
  /** `--access-log-sample-rate` (HttpProxyOptions.accessLogSampleRate); absent: 1. */
  readonly accessLogSampleRate?: number;
  readonly logLevel: string;
  /** Bounds of the outgoing queues (flows, lines): beyond them items are dropped and counted. */
  readonly maxQueued: number;
  /** `--prometheus-serve-addr` is set: count this worker's flows and send the deltas with its batches. */
  readonly metrics?: boolean;
  /** The agent's tracing configuration (src/tracing); absent or null: this worker does not trace. */
  readonly tracing?: TracingConfig | null;
  /**
   * The nice value (−20…19) the worker sets its own thread to before it serves (pool.ts
   * `workerPriority`: below the agent's, so the proxies run before the control plane when the
   * CPUs are contended); absent: the creator's, inherited.
   */
  readonly nice?: number;
}

export interface Delta {
  readonly endpoints: readonly EndpointState[];
  readonly removedEndpoints: readonly string[];
  readonly identities: readonly IdentityState[];
  readonly removedIdentities: readonly number[];
  /**
   * Endpoints whose policy alone changed by a few entries (an FQDN update adds the entries of the
   * new identities to every endpoint): the change only, not the whole policy again (policy-patch.ts).
   */
  readonly policyPatches?: readonly PolicyPatch[];
}

/** A direction's entries: those at `removed` (indices into the entries the worker holds) go, `added` are appended. */
export interface DirectionPatch {
  readonly removed: readonly number[];
  readonly added: readonly MapEntry[];
}

export interface PolicyPatch {
  readonly ip: string;
  readonly ingress: DirectionPatch;
  readonly egress: DirectionPatch;
}

/**
 * What a worker needs to give a new learned address an identity the agent already holds
 * (prelearn.ts), as the agent's regenerator would: the toFQDNs selectors (which keys a name has;
 * `selectorsVersion` changes with them) and, by `fqdnLearnKey` (the identity of the address's
 * prefix in the ipcache, and the keys), the identities whose policy entries every endpoint's map
 * holds. `version` changes with either.
 */
export interface FqdnLearnTable {
  readonly version: string;
  readonly selectorsVersion: number;
  readonly selectors: readonly FqdnSelectorInfo[];
  readonly identities: ReadonlyArray<readonly [key: string, identity: number]>;
}

/** An address a worker wrote into the ipcache (prelearn.ts) and the identity it gave it. */
export interface PrewrittenIp {
  readonly ip: string;
  readonly identity: number;
}

/** A planned write (prelearn.ts): with the identity the ipcache gave the address's prefix when it was planned. */
export interface PlannedIp extends PrewrittenIp {
  readonly prefixIdentity: number;
}

export type ToWorker =
  | { readonly t: 'snapshot'; readonly delta: Delta }
  | { readonly t: 'delta'; readonly delta: Delta }
  | { readonly t: 'ack'; readonly flows: number; readonly lines: number }
  /**
   * `error`: AgentFqdn.onAnswer failed; the answer is released anyway and counted (`answerErrors`).
   * `confirmed`: the datapath holds the answer's IPs (not released at the max delay), as of FQDN
   * `epoch` (the agent's when the answer arrived), for `ips` only (those it taught the datapath;
   * none for an answer it ignored): the worker may release repeats at once (answered.ts).
   */
  | { readonly t: 'answered'; readonly id: number; readonly error?: string; readonly confirmed?: boolean; readonly epoch?: number; readonly ips?: readonly string[] }
  | { readonly t: 'fqdn-epoch'; readonly epoch: number }
  | { readonly t: 'fqdn-table'; readonly table: FqdnLearnTable }
  | { readonly t: 'stats?'; readonly seq: number }
  | { readonly t: 'stop'; readonly graceMs: number };

/** One worker's counters. */
export interface WorkerCounters {
  readonly http: ProxyStats;
  readonly tls: TlsPassthroughStats;
  readonly dns: DnsProxyStats;
  /** Flows and access-log lines dropped because the queue to the agent was full. */
  readonly droppedFlows: number;
  readonly droppedLines: number;
  /** Answers released at the max delay because the agent had not confirmed their IPs. */
  readonly answersReleasedAtMaxDelay: number;
  /** Answers released at once: every IP already confirmed in the datapath for the name (known-answers.ts). */
  readonly answersReleasedKnown?: number;
  /** Answers released at once after the worker wrote their new addresses itself (prelearn.ts). */
  readonly answersReleasedPrelearned?: number;
  /** New addresses this worker wrote into the ipcache itself (prelearn.ts). */
  readonly addressesPrewritten?: number;
  /** Policy patches this worker could not apply (each denied its endpoint until a snapshot). */
  readonly policyPatchFailures?: number;
  /** Snapshots this worker asked the agent for after such a failure (resync.ts). */
  readonly resyncRequests?: number;
  /** The worker thread's nice value (WorkerInit.nice when it could be set). */
  readonly nice?: number;
  /** Endpoints and identities the worker holds now. */
  readonly endpoints: number;
  readonly identities: number;
  /** This worker's span export (src/tracing), null when it does not trace. */
  readonly otlp?: { readonly exported: number; readonly droppedQueueFull: number; readonly droppedExportFailed: number } | null;
}

/**
 * An outbox batch on its way to the agent: the flows' JSON array and the access-log lines as
 * UTF-8 bytes in buffers of their own, transferred (not copied) with the message. Their bytes
 * never enter the agent's JavaScript heap: the flow ring keeps them until a reader parses them,
 * the access log writes them as they are. As strings they were copied into that heap and, held
 * by the ring or the log's queue past two young-generation collections, copied twice more: the
 * agent's thread, which DNS answers wait on, spent its pauses copying them (issue 9).
 */
export interface WireBatch {
  readonly t: 'batch';
  /** `flowCount` flows as one JSON array; null when none. */
  readonly flows: Uint8Array | null;
  readonly flowCount: number;
  /** `lineCount` lines, each ending in `\n`; null when none. */
  readonly lines: Uint8Array | null;
  readonly lineCount: number;
  readonly metrics?: FlowMetricsDelta;
}

export type FromWorker =
  /** `nice`: the thread's nice value now; `niceError`: why `WorkerInit.nice` could not be set (it serves at `nice`). */
  | { readonly t: 'ready'; readonly nice?: number; readonly niceError?: string }
  /** Flows as a JSON array and access-log lines as serialised (outbox.ts `OutboxBatch`), as UTF-8 bytes moved to the agent (`WireBatch`). */
  | WireBatch
  /** `written`: addresses of the answer the worker wrote itself before it found one it could not (prelearn.ts). */
  | { readonly t: 'answer'; readonly id: number; readonly answer: DnsAnswer; readonly written?: readonly PrewrittenIp[] }
  /** An answer released after the worker wrote its new addresses (`written`) itself: the agent learns it as any answer. */
  | { readonly t: 'prelearned'; readonly answer: DnsAnswer; readonly written: readonly PrewrittenIp[] }
  /** Answers the worker released at once (every IP known): the agent's FQDN cache takes their TTLs. */
  | { readonly t: 'learned'; readonly answers: readonly DnsAnswer[] }
  | { readonly t: 'stats'; readonly seq: number; readonly counters: WorkerCounters }
  /** The worker's state went stale (a policy patch did not apply): the agent answers with a `snapshot`. */
  | { readonly t: 'resync' }
  | { readonly t: 'fatal'; readonly message: string };
