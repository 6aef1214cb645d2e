/**
 * proxyworker: the HTTP, TLS and DNS proxies off the agent's event loop. N worker threads, each
 * with its own transparent listeners in one SO_REUSEPORT group per port, fed endpoints, policies
 * and identities incrementally, reporting flows, access-log lines and counters back in batches.
 * See protocol.ts for the messages; the worker entry is dist/proxyworker/worker.js.
 */
export { ProxyWorkerPool, defaultProxyWorkers, defaultWorkerPriority, DEFAULT_PROXY_WORKER_PRIORITY, type EndpointSource, type ProxyWorkerPoolOptions, type WorkerStatus } from './pool.js';
export { WorkerState } from './state.js';
export { ResyncRequester, RESYNC_MIN_INTERVAL_MS, type ResyncOptions } from './resync.js';
export { Outbox, FLUSH_CHARS, FLUSH_ITEMS, FLUSH_MS, type OutboxBatch } from './outbox.js';
export type { Delta, EndpointState, FromWorker, IdentityState, ToWorker, WorkerCounters, WorkerInit } from './protocol.js';
