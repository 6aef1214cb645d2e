/**
 * Stage 4, forward: undici pools to original destinations, and the relay of one request through
 * them with both bodies streamed and back-pressured.
 *
 * Pools are keyed by (source identity, destination ip, port). The source identity travels in the
 * upstream socket's mark, set before connect by `connectUpstream`, so a connection opened for one
 * identity must never carry another identity's request: one pool per identity, never shared.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errors as undiciErrors, Pool, type buildConnector, type Dispatcher } from 'undici';
import { isMembraneError, membraneError } from '../errors/index.js';
import { downstreamResponseHeaders, textHeaders, upstreamRequestHeaders } from './headers.js';
import {
  GATEWAY_TIMEOUT,
  UPSTREAM_CONNECT_FAILURE,
  UPSTREAM_CONNECT_TIMEOUT,
  UPSTREAM_LOCAL_RESET,
  UPSTREAM_PROTOCOL_ERROR,
  UPSTREAM_RESET,
  type LocalReply,
} from './local-reply.js';
import { rawHeadersToSend, type ParsedRequest } from './parse.js';
import type { ConnectionInfo, FlowContext, L7ProxyDeps } from './types.js';

export interface UpstreamOptions {
  /** Key pools by client IP as well as identity (source-IP preservation). */
  bySourceAddress?: boolean;
  connectTimeoutMs: number;
  maxConnections: number;
  idleMs: number;
}

export function poolKey(
  ctx: Pick<FlowContext, 'srcIdentity'>,
  conn: Pick<ConnectionInfo, 'dstIp' | 'dstPort'> & Partial<Pick<ConnectionInfo, 'srcIp'>>,
  bySourceAddress = false,
): string {
  const base = `${ctx.srcIdentity}|${conn.dstIp}|${conn.dstPort}`;
  return bySourceAddress ? `${base}|${conn.srcIp ?? ''}` : base;
}

function originOf(conn: Pick<ConnectionInfo, 'dstIp' | 'dstPort'>): string {
  const host = conn.dstIp.includes(':') ? `[${conn.dstIp}]` : conn.dstIp;
  return `http://${host}:${conn.dstPort}`;
}

/** The connect attempt failed: the request never reached the upstream. */
function connectError(conn: ConnectionInfo, detail: string, cause: unknown, timeout = false): Error {
  return membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connect to ${originOf(conn)} failed: ${detail}`, {
    cause,
    details: { phase: 'connect', timeout },
  });
}

/**
 * An undici connector that uses the injected socket factory. It hands undici the socket once it is
 * connected; errors and the connect timeout fail the attempt (undici then fails the request). Every
 * failure here carries `details.phase = 'connect'`, so it is never mistaken for a reset after connect.
 */
export function upstreamConnector(
  connectUpstream: L7ProxyDeps['connectUpstream'],
  ctx: FlowContext,
  conn: ConnectionInfo,
  timeoutMs: number,
): buildConnector.connector {
  return (_opts, callback) => {
    let socket: Socket;
    try {
      socket = connectUpstream(ctx, conn);
    } catch (err) {
      callback(connectError(conn, `connectUpstream threw: ${(err as Error)?.message ?? String(err)}`, err), null);
      return;
    }
    let settled = false;
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        callback(err, null);
      } else callback(null, socket);
    };
    const onConnect = (): void => settle(null);
    const onError = (err: NodeJS.ErrnoException): void => settle(connectError(conn, err.code ?? err.message, err));
    const timer = setTimeout(() => settle(connectError(conn, `timed out after ${timeoutMs} ms`, undefined, true)), timeoutMs);
    timer.unref();
    if (socket.destroyed) {
      settle(connectError(conn, 'upstream socket already destroyed', undefined));
      return;
    }
    socket.setNoDelay(true);
    if (!socket.connecting && socket.remoteAddress !== undefined) settle(null);
    else {
      socket.once('connect', onConnect);
      socket.once('error', onError);
    }
  };
}

interface PoolEntry {
  pool: Pool;
  key: string;
  inflight: number;
  lastUsed: number;
}

/** One request's hold on a pool: `release()` once the exchange ended (idempotent). */
export class PoolLease {
  readonly dispatcher: Dispatcher;
  readonly key: string;
  #entry: PoolEntry;
  #released = false;

  constructor(entry: PoolEntry) {
    this.dispatcher = entry.pool;
    this.key = entry.key;
    this.#entry = entry;
    entry.inflight++;
    entry.lastUsed = Date.now();
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#entry.inflight--;
    this.#entry.lastUsed = Date.now();
  }
}

export class UpstreamPools {
  #connect: L7ProxyDeps['connectUpstream'];
  #opts: UpstreamOptions;
  #pools = new Map<string, PoolEntry>();
  #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(connect: L7ProxyDeps['connectUpstream'], opts: UpstreamOptions) {
    this.#connect = connect;
    this.#opts = opts;
    this.#sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.floor(opts.idleMs / 2)));
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#pools.size;
  }

  /** The pool a connection's requests go to (one per source identity and destination). */
  keyOf(ctx: FlowContext, conn: ConnectionInfo): string {
    return poolKey(ctx, conn, this.#opts.bySourceAddress === true);
  }

  keys(): string[] {
    return [...this.#pools.keys()];
  }

  /**
   * The pool for this identity and destination, created on first use; release when the request
   * ends. `key` is `keyOf(ctx, conn)`, passed when the caller keeps it per connection.
   */
  acquire(ctx: FlowContext, conn: ConnectionInfo, key = this.keyOf(ctx, conn)): PoolLease {
    if (this.#closed) throw membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', 'proxy is closing', { details: { phase: 'local' } });
    let entry = this.#pools.get(key);
    if (!entry) {
      const pool = new Pool(originOf(conn), {
        connect: upstreamConnector(this.#connect, ctx, conn, this.#opts.connectTimeoutMs),
        connections: this.#opts.maxConnections,
        pipelining: 1,
        // No per-read timeouts: Cilium sets no idle timeout on the route (`http-idle-timeout` 0);
        // the whole exchange is bounded by the route timeout in `relay`.
        headersTimeout: 0,
        bodyTimeout: 0,
        strictContentLength: true,
      });
      entry = { pool, key, inflight: 0, lastUsed: Date.now() };
      this.#pools.set(key, entry);
    }
    return new PoolLease(entry);
  }

  /** Closes pools with nothing in flight for `idleMs`. */
  sweep(now = Date.now()): void {
    for (const [key, e] of this.#pools) {
      if (e.inflight === 0 && now - e.lastUsed >= this.#opts.idleMs) {
        this.#pools.delete(key);
        e.pool.close().catch(() => undefined);
      }
    }
  }

  /** Graceful: waits for in-flight requests. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((e) => e.pool.close().catch(() => undefined)));
  }

  /** Immediate: aborts in-flight requests. */
  async destroy(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((e) => e.pool.destroy().catch(() => undefined)));
  }
}

/** What went wrong upstream, in Envoy's terms (its access-log response flags). */
export type UpstreamFailureKind = 'connect-failure' | 'connect-timeout' | 'reset' | 'timeout' | 'protocol-error' | 'local-reset';

export interface UpstreamFailure {
  kind: UpstreamFailureKind;
  /** Envoy response flag: UF, UC, UT, UPE, LR. */
  flag: 'UF' | 'UC' | 'UT' | 'UPE' | 'LR';
  /** The reply when nothing was sent downstream yet. */
  reply: LocalReply;
}

function detailsOf(err: unknown): Record<string, unknown> {
  const d = (err as { details?: unknown })?.details;
  return d !== null && typeof d === 'object' ? (d as Record<string, unknown>) : {};
}

/**
 * Classifies an upstream failure: connect failure (UF), connect timeout (UF), reset or close after
 * connect (UC), route timeout (UT), unparseable or unrelayable response (UPE), the proxy's own
 * abort (LR). Anything unrecognised after connect counts as a reset: the request may have reached
 * the upstream, and the reply must not claim it did not.
 */
export function classifyUpstreamFailure(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown })?.code;
  const details = detailsOf(err);
  if (isMembraneError(err, 'MEMBRANE_ERR_PROXY_UPSTREAM')) {
    if (details.phase === 'connect') {
      return details.timeout === true
        ? { kind: 'connect-timeout', flag: 'UF', reply: UPSTREAM_CONNECT_TIMEOUT }
        : { kind: 'connect-failure', flag: 'UF', reply: UPSTREAM_CONNECT_FAILURE };
    }
    if (details.phase === 'timeout') return { kind: 'timeout', flag: 'UT', reply: GATEWAY_TIMEOUT };
    if (details.phase === 'local') return { kind: 'local-reset', flag: 'LR', reply: UPSTREAM_LOCAL_RESET };
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { kind: 'timeout', flag: 'UT', reply: GATEWAY_TIMEOUT };
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { kind: 'connect-timeout', flag: 'UF', reply: UPSTREAM_CONNECT_TIMEOUT };
  // undici's parser errors do not always carry a code: recognise them by class too.
  if (
    err instanceof undiciErrors.HTTPParserError ||
    err instanceof undiciErrors.ResponseContentLengthMismatchError ||
    err instanceof undiciErrors.HeadersOverflowError ||
    (typeof code === 'string' && (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_HEADERS_OVERFLOW')) ||
    isMembraneError(err, 'MEMBRANE_ERR_PROXY_RESPONSE') ||
    // undici's "bad response" / "bad upgrade": an unsolicited 100 or 101 from the upstream.
    (code === 'UND_ERR_SOCKET' && /^bad (response|upgrade)$/.test((err as Error).message))
  ) {
    return { kind: 'protocol-error', flag: 'UPE', reply: UPSTREAM_PROTOCOL_ERROR };
  }
  return { kind: 'reset', flag: 'UC', reply: UPSTREAM_RESET };
}

/** Which local reply an upstream failure before the response headers deserves. */
export function replyForUpstreamError(err: unknown): LocalReply {
  return classifyUpstreamFailure(err).reply;
}

/** The route timeout fired: Envoy's UT. */
function routeTimeoutError(ms: number): Error {
  return membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `upstream request timeout after ${ms} ms`, { details: { phase: 'timeout' } });
}

/** RFC 9110 §6.4.1: these responses never have content, whatever their framing fields say. */
function isBodiless(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}

/** 1xx fields for `writeEarlyHints`: one entry per name, repeated values joined (RFC 9110 §5.3). */
function hintsOf(rawHeaders: readonly string[]): Record<string, string | string[]> {
  const hints: Record<string, string[]> = {};
  const headers = downstreamResponseHeaders(rawHeaders);
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase();
    (hints[name] ??= []).push(headers[i + 1] as string);
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(hints)) out[name] = name === 'link' ? values : values.join(', ');
  return out;
}

export interface RelayEvents {
  /**
   * Upstream answered and its status line and headers were written downstream. `rawHeaders` is
   * the upstream's flat list as strings, hop-by-hop fields included (the flow shows what came).
   */
  responseStart(status: number, rawHeaders: readonly string[]): void;
  /** The exchange ended: `error` null when the response was relayed in full. */
  done(error: Error | null, responseStarted: boolean): void;
}

export interface RelayOptions {
  /**
   * Cilium's `--http-request-timeout` as Envoy's route timeout: from the end of the downstream
   * request to the end of the upstream response, whole. 0 = unlimited.
   */
  requestTimeoutMs: number;
  /** The proxy's shared route timers (one Node timer for all its relays); without, one timer per relay. */
  timers?: RouteTimers;
}

function onRouteTimeout(r: Relay): void {
  r.abort(routeTimeoutError(r.timeoutMs));
}

/**
 * The route timers of one proxy's relays, all with its one timeout: the deadlines come in the
 * order the relays start, so they are a FIFO list (a relay leaves it from anywhere in O(1) when it
 * ends) under a single Node timer armed for the oldest deadline. Per request that is two pointer
 * updates instead of a Timeout object, a timer-list insert and its removal (issue 9). The timer
 * is re-armed only when it fires: a relay that ended leaves a timer set for a deadline that is no
 * longer the oldest, which then finds nothing due and waits for the new oldest.
 */
export class RouteTimers {
  readonly timeoutMs: number;
  #head: Relay | null = null;
  #tail: Relay | null = null;
  #timer: NodeJS.Timeout | null = null;
  #onTimer = (): void => this.#fire();

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** @internal a relay whose route timeout starts now. */
  add(r: Relay): void {
    r.deadline = performance.now() + this.timeoutMs;
    r.prev = this.#tail;
    r.next = null;
    if (this.#tail !== null) this.#tail.next = r;
    else this.#head = r;
    this.#tail = r;
    r.timed = true;
    if (this.#timer === null) this.#arm(this.timeoutMs);
  }

  /** @internal a relay that ended (or timed out) before its deadline. */
  remove(r: Relay): void {
    if (!r.timed) return;
    r.timed = false;
    if (r.prev !== null) r.prev.next = r.next;
    else this.#head = r.next;
    if (r.next !== null) r.next.prev = r.prev;
    else this.#tail = r.prev;
    r.prev = null;
    r.next = null;
  }

  /** Relays waiting on a deadline. */
  get size(): number {
    let n = 0;
    for (let r = this.#head; r !== null; r = r.next) n++;
    return n;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#onTimer, Math.max(1, Math.ceil(ms)));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = null;
    const now = performance.now();
    while (this.#head !== null && this.#head.deadline <= now) {
      const r = this.#head;
      this.remove(r);
      onRouteTimeout(r);
    }
    if (this.#head !== null) this.#arm(this.#head.deadline - now);
  }
}

function startRouteTimerOf(this: IncomingMessage, r: Relay): void {
  r.startRouteTimer();
}

/**
 * One request relayed through undici: the dispatch handler (undici's `onConnect`/`onHeaders`/
 * `onData`/`onComplete`/`onError` interface, which undici calls directly; the newer controller
 * interface costs a wrapper and a parsed header object per response) and the route timer.
 * A class with every field set in the constructor: one object per request, no closures.
 */
export class Relay {
  readonly timeoutMs: number;
  #res: ServerResponse;
  #method: string;
  #interimAllowed: boolean;
  #events: RelayEvents;
  #upstreamAbort: ((reason: Error) => void) | null = null;
  #abortReason: Error | null = null;
  #responseStarted = false;
  #status = 0;
  #bodyBytes = 0;
  #finished = false;
  #timer: NodeJS.Timeout | null = null;
  readonly #timers: RouteTimers | null;
  /** Place in `RouteTimers`' list (managed by it). @internal */
  timed = false;
  deadline = 0;
  prev: Relay | null = null;
  next: Relay | null = null;
  /** undici's resume of the upstream read, after back-pressure. */
  #resume: (() => void) | null = null;

  constructor(res: ServerResponse, parsed: ParsedRequest, opts: RelayOptions, events: RelayEvents) {
    this.timeoutMs = opts.requestTimeoutMs;
    this.#timers = opts.timers !== undefined && opts.timers.timeoutMs === opts.requestTimeoutMs ? opts.timers : null;
    this.#res = res;
    this.#method = parsed.method;
    this.#interimAllowed = parsed.protocol !== 'HTTP/1.0';
    this.#events = events;
  }

  /**
   * Sends the request upstream through `dispatcher`; the response streams into `res`.
   * `connTokens`: the request's `connectionTokens`, when the caller has read them already.
   */
  start(dispatcher: Dispatcher, req: IncomingMessage, parsed: ParsedRequest, connTokens?: ReadonlySet<string>): void {
    const raw = rawHeadersToSend(parsed, req.headers.host);
    const body = parsed.hasBody ? req : null;
    if (body === null) {
      req.resume();
      this.startRouteTimer();
    } else {
      req.once('end', startRouteTimerOf.bind(req, this));
      if (parsed.expectContinue) this.#res.writeContinue();
    }
    try {
      dispatcher.dispatch(
        {
          path: parsed.path,
          method: parsed.method,
          headers: upstreamRequestHeaders(raw, connTokens),
          body,
          headersTimeout: 0,
          bodyTimeout: 0,
          reset: false,
        },
        this as unknown as Dispatcher.DispatchHandler,
      );
    } catch (err) {
      this.#finish(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Aborts the upstream request (the downstream client went away, or the route timeout). */
  abort(reason: Error): void {
    if (this.#finished) return;
    this.#abortReason = reason;
    if (this.#upstreamAbort) this.#upstreamAbort(reason);
  }

  /** Envoy's route timeout starts once the whole downstream request has been received. */
  startRouteTimer(): void {
    if (this.timeoutMs <= 0 || this.#finished || this.#timer || this.timed) return;
    if (this.#timers !== null) {
      this.#timers.add(this);
      return;
    }
    this.#timer = setTimeout(onRouteTimeout, this.timeoutMs, this);
    this.#timer.unref();
  }

  #finish(error: Error | null): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.timed) this.#timers?.remove(this);
    this.#events.done(error, this.#responseStarted);
  }

  // undici's dispatch handler.

  onConnect(abort: (reason: Error) => void): void {
    this.#upstreamAbort = abort;
    if (this.#abortReason) abort(this.#abortReason);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | null, resume: () => void, statusMessage: string): boolean {
    const res = this.#res;
    const headers = textHeaders(rawHeaders ?? []);
    if (statusCode < 200) {
      if (!this.#interimAllowed || res.headersSent) return true;
      try {
        if (statusCode === 103) res.writeEarlyHints(hintsOf(headers));
        else if (statusCode === 102) res.writeProcessing();
      } catch {
        // An interim response is advisory: one Node will not write (e.g. a malformed Link) is dropped.
      }
      return true;
    }
    try {
      let out = downstreamResponseHeaders(headers);
      if (statusCode === 204) out = withoutField(out, 'content-length');
      if (statusMessage) res.writeHead(statusCode, statusMessage, out);
      else res.writeHead(statusCode, out);
    } catch (err) {
      this.abort(membraneError('MEMBRANE_ERR_PROXY_RESPONSE', `unrelayable response head: ${(err as Error).message}`, { cause: err }));
      return false;
    }
    this.#responseStarted = true;
    this.#status = statusCode;
    this.#resume = resume;
    this.#events.responseStart(statusCode, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#bodyBytes += chunk.length;
    if (this.#res.write(chunk)) return true;
    // Back-pressure: undici stops reading the upstream until the client has taken what we have.
    if (this.#resume) this.#res.once('drain', this.#resume);
    return false;
  }

  onComplete(): void {
    this.#res.end();
    this.#finish(null);
  }

  onError(err: Error): void {
    // undici checks Content-Length against the bytes read even for a 204 or 304, which have no
    // content by definition (RFC 9110 §8.6 allows a 304 to state the representation's length):
    // the exchange is complete, only undici's bookkeeping disagrees.
    if (this.#responseStarted && this.#bodyBytes === 0 && isBodiless(this.#method, this.#status) && err instanceof undiciErrors.ResponseContentLengthMismatchError) {
      this.#res.end();
      this.#finish(null);
      return;
    }
    this.#finish(err);
  }

  /** A 101 cannot happen (no Upgrade is forwarded); undici requires the member. */
  onUpgrade(): void {
    this.#finish(membraneError('MEMBRANE_ERR_PROXY_RESPONSE', 'unexpected upgrade response'));
  }
}

/**
 * Sends the request upstream through `dispatcher` and streams the response back into `res`.
 * Returns an abort function (used when the downstream client goes away).
 *
 * Framing (RFC 9110 §6.4.1, §15.2; RFC 9112 §6.3): interim responses are relayed when the client
 * can take them (HTTP/1.1): 103 Early Hints with its fields, 102 Processing; a 100 is the proxy's
 * own to send (it answers `Expect: 100-continue` itself and never forwards Expect). HEAD, 204 and
 * 304 responses carry no content: a 304 or HEAD answer keeps its Content-Length (it describes the
 * representation), a 204 loses it (RFC 9110 §8.6 forbids it there).
 */
export function relay(
  dispatcher: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  parsed: ParsedRequest,
  opts: RelayOptions,
  events: RelayEvents,
): (reason: Error) => void {
  const r = new Relay(res, parsed, opts, events);
  r.start(dispatcher, req, parsed);
  return (reason) => r.abort(reason);
}

function withoutField(flat: string[], lower: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if ((flat[i] as string).toLowerCase() !== lower) out.push(flat[i] as string, flat[i + 1] as string);
  }
  return out;
}
