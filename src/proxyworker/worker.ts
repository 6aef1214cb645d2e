/**
 * A proxy worker (worker_threads entry; runs from dist/proxyworker/worker.js): its own HttpProxy,
 * TlsPassthrough and DnsProxy on transparent listeners that join each port's SO_REUSEPORT group,
 * judged against the state the agent feeds it (state.ts), reporting flows, access-log lines and
 * counters back in batches (protocol.ts). Nothing here waits for the agent on the request path
 * but a DNS answer's release, which is bounded by `answerMaxDelayMs`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { connectMarked, IpcacheView, setThreadNice, threadNice, transparentListenFd } from '../datapath/index.js';
import { DnsProxy, markedUpstream, traceDnsProxy, type DnsAnswer } from '../dnsproxy/index.js';
import { HttpProxy, TlsPassthrough, type FlowContext, type L7ProxyDeps } from '../l7proxy/index.js';
import type { Flow } from '../observe/index.js';
import { PROTO } from '../policy/index.js';
import { confirmAnswered, type AnsweredReply } from './answered.js';
import { KnownAnswers } from './known-answers.js';
import { FqdnPrelearn } from './prelearn.js';
import { Outbox } from './outbox.js';
import { createFlowMetrics } from '../metrics/index.js';
import type { FromWorker, PrewrittenIp, ToWorker, WireBatch, WorkerInit } from './protocol.js';
import { ResyncRequester } from './resync.js';
import { WorkerState } from './state.js';
import { traceHttpProxy } from '../l7proxy/index.js';

const port = parentPort;
if (!port) throw new Error('proxyworker/worker.js runs only as a worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

// This thread's CPU priority, set before anything else runs here (the imports above are loaded
// first, at the creator's priority): above the agent's control plane (pool.ts `workerPriority`),
// so a regeneration, an endpoint's attach or the API never make a request wait for the CPU
// (issue-9 isolation). Nice is per thread (sched(7)); the agent's main thread and its other
// threads keep theirs.
let niceError: string | undefined;
if (init.nice !== undefined) {
  try {
    setThreadNice(init.nice);
  } catch (err) {
    // Without CAP_SYS_NICE (or RLIMIT_NICE) the thread stays at the agent's priority: served, reported.
    niceError = (err as Error).message;
  }
}
const nice = ((): number | undefined => {
  try {
    return threadNice();
  } catch {
    return undefined;
  }
})();

// Opened with the first snapshot: a worker may be started before the agent has pinned its maps.
let ipcache: IpcacheView | null = null;
const state = new WorkerState((ip) => ipcache!.identityOf(ip));
// A patch that did not apply left its endpoint denied: ask for a snapshot rather than wait for
// the next full state (which may never come while only patches are sent).
const resync = new ResyncRequester({ send: () => post({ t: 'resync' }) });
// With metrics on, this worker counts its own flows and sends the deltas with its batches (outbox.ts).
/**
 * `text` as UTF-8 in an ArrayBuffer of its own, exactly its size (transferring a shared one would
 * take the rest of it away). Measured on a 46 KB batch of DNS flows: 8–9 µs, TextEncoder.encode
 * 15–22 µs (it zero-fills its buffer; this one is written over whole).
 */
function utf8Own(text: string): Uint8Array {
  const n = Buffer.byteLength(text, 'utf8');
  const bytes = Buffer.allocUnsafeSlow(n);
  bytes.write(text, 0, n, 'utf8');
  return bytes;
}
const outbox = new Outbox(
  init.maxQueued,
  (batch) => {
    // Each text to its own buffer, moved to the agent with the message (protocol.ts WireBatch).
    const flows = batch.flowCount > 0 ? utf8Own(batch.flows) : null;
    const lines = batch.lineCount > 0 ? utf8Own(batch.lines) : null;
    const transfer: ArrayBuffer[] = [];
    if (flows) transfer.push(flows.buffer as ArrayBuffer);
    if (lines) transfer.push(lines.buffer as ArrayBuffer);
    const m: WireBatch = { t: 'batch', flows, flowCount: batch.flowCount, lines, lineCount: batch.lineCount, ...(batch.metrics ? { metrics: batch.metrics } : {}) };
    port.postMessage(m, transfer);
  },
  init.metrics ? createFlowMetrics(null) : null,
);

// The access-log lines are serialised here exactly as the agent's logger would (same pino
// options), and written by the agent to its file or log stream as they are.
const sink = { write: (line: string) => outbox.line(line) };
const accessLog =
  init.accessLogFormat === 'file'
    ? pino({ base: null }, sink)
    : pino({ level: init.logLevel, base: { node: init.nodeName } }, sink).child({ component: 'accesslog' });

const onFlow = (flow: Flow): void => outbox.flow(flow);

const deps: L7ProxyDeps = {
  resolveConnection: (conn): FlowContext | null => {
    const src = state.endpoint(conn.srcIp);
    // Only pods are redirected to the proxy; before the first snapshot nothing is known: refused.
    if (!src) return null;
    const dst = state.endpoint(conn.dstIp);
    const dstIdentity = state.identityOf(conn.dstIp);
    const ingressRedirect = dst?.policy?.ingress.entries.some((e) => e.verdict === 'redirect') ?? false;
    return {
      srcIdentity: src.identity,
      dstIdentity,
      source: src.flowEndpoint,
      destination: state.flowEndpoint(conn.dstIp, dstIdentity),
      direction: ingressRedirect ? 'INGRESS' : 'EGRESS',
    };
  },
  l7Flow: (fctx, conn) => state.l7Flow(conn.srcIp, fctx.srcIdentity, conn.dstIp, conn.dstPort, PROTO.TCP, fctx.dstIdentity),
  // The HTTP proxy keeps a connection's policy state until the agent's next snapshot or delta.
  policyRevision: () => state.revision,
  connectUpstream: (fctx, conn) => connectMarked(conn.dstIp, conn.dstPort, fctx.srcIdentity),
  onFlow,
  accessLog,
  nodeName: init.nodeName,
};

/** Answers waiting for the agent's `answered`: id → release (confirmed: the agent said the datapath holds them). */
const pendingAnswers = new Map<number, (m: AnsweredReply) => void>();
let nextAnswer = 1;
let releasedAtMaxDelay = 0;
/** (name, IP) pairs the agent confirmed: an answer of only those is released without the round trip. */
const known = new KnownAnswers();
/**
 * Answers released at once, for the agent's FQDN cache (their TTLs), sent once per LEARNED_MS:
 * one per endpoint, name and IPs, the latest, with the time it came (`at`), from which the cache
 * counts its TTL as if it had been sent at once. Pods ask the same names again and again: at
 * saturation (10k answers/s over 500 names) a refresh per answer was most of the agent thread's
 * work besides its GC (issue 9, CPU profile of the DNS bench). Every IP in them is already in the
 * datapath (known-answers.ts); only the cache's expiry moves, and it moves to the same time.
 */
let learned = new Map<string, DnsAnswer>();
const LEARNED_MS = 1000;

/** Identities of new addresses the worker may write itself (prelearn.ts), from the agent's table. */
const prelearn = new FqdnPrelearn();
let releasedPrelearned = 0;
let addressesPrewritten = 0;

/**
 * Writes the answer's new addresses into the ipcache when each joins an identity the maps hold
 * (prelearn.ts). Returns the addresses written and whether that was all of them (the answer may
 * then go out at once); null when the answer must take the round trip with nothing written.
 */
function prewrite(answer: DnsAnswer): { written: PrewrittenIp[]; all: boolean } | null {
  const view = ipcache;
  if (!view) return null;
  const plan = prelearn.plan(answer.qname, answer.ips, (ip) => view.identityWithin(ip, 32));
  if (plan === null) return null;
  const written: PrewrittenIp[] = [];
  for (const p of plan) {
    if (!view.insertIfAbsent(p.ip, p.identity)) return { written, all: false };
    // The prefix under the address must still be the one planned with: one the agent wrote since
    // carries labels (a deny among them) the identity lacks.
    if (view.identityWithin(p.ip, 31) !== p.prefixIdentity) {
      view.deleteIfHeld(p.ip, p.identity);
      return { written, all: false };
    }
    written.push({ ip: p.ip, identity: p.identity });
    addressesPrewritten++;
  }
  return { written, all: true };
}

function sendLearned(): void {
  const answers = [...learned.values()];
  learned = new Map();
  if (answers.length > 0) post({ t: 'learned', answers });
}

function onAnswer(answer: DnsAnswer): Promise<void> {
  const sentAt = Date.now();
  // Bounded as the outbox is: with that many refreshes waiting, answers take the round trip.
  if (learned.size < init.maxQueued && known.take(answer.qname, answer.ips, answer.ttl, sentAt)) {
    if (learned.size === 0) setTimeout(sendLearned, LEARNED_MS).unref();
    learned.set(`${answer.endpointId} ${answer.qname} ${answer.ips.join(',')}`, { ...answer, at: sentAt });
    return Promise.resolve();
  }
  const pre = prewrite(answer);
  if (pre?.all) {
    // Told before the answer goes, in the same turn as the writes: a worker stopped after it
    // leaves no entry the agent never hears of.
    post({ t: 'prelearned', answer: { ...answer, at: sentAt }, written: pre.written });
    releasedPrelearned++;
    return Promise.resolve();
  }
  const written = pre?.written ?? [];
  return new Promise<void>((resolve, reject) => {
    const id = nextAnswer++;
    // As NameManager's own bound: past the max delay the answer goes out anyway (Cilium
    // --tofqdns-proxy-response-max-delay), so a busy or restarting agent never holds DNS.
    const timer = setTimeout(() => {
      if (pendingAnswers.delete(id)) {
        releasedAtMaxDelay++;
        resolve();
      }
    }, init.answerMaxDelayMs);
    pendingAnswers.set(id, (m) => {
      clearTimeout(timer);
      confirmAnswered(known, answer, m, sentAt);
      if (m.error === undefined) resolve();
      else reject(new Error(m.error));
    });
    post(written.length > 0 ? { t: 'answer', id, answer, written } : { t: 'answer', id, answer });
  });
}

// Diagnostics channels are per thread: this worker's proxy is traced by this worker's tracer.
// Loaded only when tracing is on: the OpenTelemetry SDK is most of a worker's start-up time
// (~0.9 s of module loading on a busy 2-core node), and a restart's DNS gap waits for it.
const tracing = init.tracing ? await (await import('../tracing/index.js')).startTracing(init.tracing) : null;
if (tracing) {
  traceHttpProxy(tracing.proxyTracer);
  traceDnsProxy(tracing.proxyTracer);
}

const http = new HttpProxy(deps, {
  httpRequestTimeoutMs: init.httpRequestTimeoutMs,
  normalizePath: init.httpNormalizePath,
  accessLogSampleRate: init.accessLogSampleRate ?? 1,
});
const tls = new TlsPassthrough(deps);
const dns = new DnsProxy(
  {
    resolveSource: (srcIp) => {
      const ep = state.endpoint(srcIp);
      return ep ? { endpointId: ep.id, identity: ep.identity, flowEndpoint: ep.flowEndpoint } : null;
    },
    l7Flow: (src, dst, protocol) => state.l7Flow(src.ip, src.identity, dst.ip, dst.port, protocol),
    onAnswer,
    upstream: markedUpstream(),
    resolveDestination: (ip) => state.flowEndpoint(ip, state.identityOf(ip)),
    onFlow,
    accessLog,
    nodeName: init.nodeName,
  },
  { rejectResponseCode: init.dnsRejectResponseCode },
);

let listening: Promise<void> | null = null;

/** Joins the three SO_REUSEPORT groups; only once state is there, so no connection meets an empty worker. */
async function listen(): Promise<void> {
  await http.listen({ fd: transparentListenFd(init.httpProxyPort, '0.0.0.0', 1024, true) });
  await tls.listen({ fd: transparentListenFd(init.tlsProxyPort, '0.0.0.0', 1024, true) });
  await dns.listen({ transparent: true, port: init.dnsProxyPort, reusePort: true });
  post({ t: 'ready', ...(nice === undefined ? {} : { nice }), ...(niceError === undefined ? {} : { niceError }) });
}

async function stop(graceMs: number): Promise<void> {
  await Promise.all([http.close(), tls.close(), dns.close(graceMs)]);
  await tracing?.shutdown();
  for (const release of pendingAnswers.values()) release({});
  pendingAnswers.clear();
  sendLearned();
  outbox.flush();
  ipcache?.close();
  port!.close();
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'snapshot':
    case 'delta':
      if (!ipcache) {
        try {
          ipcache = new IpcacheView(init.pinRoot);
        } catch (err) {
          post({ t: 'fatal', message: (err as Error).message });
          process.exit(1);
        }
      }
      if (m.t === 'snapshot') resync.snapshotApplied();
      if (state.apply(m.delta, m.t === 'snapshot') > 0) resync.need();
      if (m.t === 'snapshot' && !listening) {
        listening = listen().catch((err: unknown) => {
          post({ t: 'fatal', message: (err as Error).message });
          process.exit(1);
        });
      }
      break;
    case 'ack':
      outbox.ack(m.flows, m.lines);
      break;
    case 'answered':
      pendingAnswers.get(m.id)?.(m);
      pendingAnswers.delete(m.id);
      break;
    case 'fqdn-epoch':
      known.seeEpoch(m.epoch);
      break;
    case 'fqdn-table':
      prelearn.setTable(m.table);
      break;
    case 'stats?':
      outbox.flush();
      post({
        t: 'stats',
        seq: m.seq,
        counters: {
          http: http.stats(),
          tls: { ...tls.stats },
          dns: dns.stats(),
          droppedFlows: outbox.droppedFlows,
          droppedLines: outbox.droppedLines,
          answersReleasedAtMaxDelay: releasedAtMaxDelay,
          answersReleasedKnown: known.fastReleases,
          answersReleasedPrelearned: releasedPrelearned,
          addressesPrewritten,
          policyPatchFailures: state.patchFailures,
          resyncRequests: resync.requests,
          ...(nice === undefined ? {} : { nice }),
          endpoints: state.endpointCount,
          identities: state.identityCount,
          otlp: tracing ? tracing.stats() : null,
        },
      });
      break;
    case 'stop':
      void stop(m.graceMs);
      break;
  }
});
