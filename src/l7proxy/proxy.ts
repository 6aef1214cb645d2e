/**
 * The transparent HTTP/1.1 proxy: Node's HTTP server downstream, undici pools upstream, and the
 * pipeline between them:
 *
 *   accept (original dst, source identity) → parse → policy → forward → log/trace
 *
 * Each stage lives in its own file and is a plain function; this class only wires them to the
 * server's events and keeps the counters.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { membraneError } from '../errors/index.js';
import type { Flow } from '../observe/index.js';
import { acceptConnection } from './accept.js';
import { channels } from './diagnostics.js';
import { classifyUpstreamFailure, Relay, RouteTimers, UpstreamPools, type PoolLease, type RelayEvents, type UpstreamFailure } from './forward.js';
import { BAD_REQUEST, DENIED, HEADERS_TOO_LARGE, NOT_IMPLEMENTED, pathRedirect, rawReply, REQUEST_TIMEOUT, sendLocalReply, type LocalReply } from './local-reply.js';
import { connectionTokens } from './headers.js';
import { isoAt } from './clock.js';
import { accessLogEntry, boundAccessLogEntry, ConnectionFacts, localReplyFlows, requestFlow, responseFlow, type AccessVerdict, type Exchange, type FlowSite } from './log.js';
import { parseRequest, refusedRequestOf, refusedRequestOfBytes, type ParsedRequest } from './parse.js';
import { decide, policyError, readsHeaders } from './policy.js';
import type { L7Flow } from '../policy/index.js';
import type { ConnectionInfo, FlowContext, HttpProxyOptions, L7ProxyDeps, PolicyDecision, ProxyStats, RefusedRequest } from './types.js';
import { H2Proxy, type H2Host } from './h2.js';
import { sniffPreface } from './h2-preface.js';
import { UpgradeRelay } from './upgrade.js';

const DEFAULTS: Required<HttpProxyOptions> = {
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  httpRequestTimeoutMs: 3_600_000,
  normalizePath: true,
  connectTimeoutMs: 10_000,
  maxHeaderSize: 16 * 1024,
  maxHeadersCount: 100,
  keepAliveTimeoutMs: 60_000,
  maxUpstreamConnections: 128,
  upstreamIdleMs: 60_000,
  closeGraceMs: 5_000,
  poolBySourceAddress: false,
  accessLogSampleRate: 1,
};

/** A denied request whose body is small and declared is drained to keep the connection; else closed. */
const DRAIN_LIMIT = 64 * 1024;

/** One downstream connection: made at accept, every field set here (one shape for all). */
class ConnState {
  readonly socket: Socket;
  readonly conn: ConnectionInfo;
  readonly ctx: FlowContext;
  /** What every flow and log line of this connection repeats. */
  readonly facts: ConnectionFacts;
  /** The upstream pool its requests go to. */
  readonly poolKey: string;
  /** Requests on this connection whose response has not finished yet. */
  inflight = 0;
  /**
   * The connection ends after the responses already queued on it (a closing response was sent,
   * or the client said `Connection: close`): nothing further on it is processed or answered
   * (RFC 9112 §9.6).
   */
  closing = false;
  /** Written once the in-flight responses are done: a reply to bytes that could not be parsed. */
  deferred: LocalReply | null = null;
  /** The policy state last read for this connection, and the `policyRevision` it was read at. */
  l7Flow: L7Flow | null = null;
  l7Revision = -1;
  /**
   * The last verdict on this connection, for `memoFlow` (a policy state kept under a revision,
   * whose rules read no headers): a request with the same method, host and path gets it again.
   */
  memoFlow: L7Flow | null = null;
  memoUsable = false;
  memoMethod = '';
  memoHost = '';
  memoPath = '';
  memoDecision: PolicyDecision | null = null;

  constructor(socket: Socket, conn: ConnectionInfo, ctx: FlowContext, poolKey: string) {
    this.socket = socket;
    this.conn = conn;
    this.ctx = ctx;
    this.facts = new ConnectionFacts(conn, ctx);
    this.poolKey = poolKey;
  }
}

/**
 * One request through the proxy: the exchange the flows and the log are made of, and the
 * relay's events. A class with every field set in the constructor, so the request path sees one
 * object shape and allocates no closures per request.
 */
class ProxiedExchange implements Exchange, RelayEvents {
  readonly conn: ConnectionInfo;
  readonly ctx: FlowContext;
  readonly request: ParsedRequest;
  decision: PolicyDecision = DENY_PENDING;
  readonly startedAt: Date;
  readonly startNs: bigint;
  readonly startedIso: string;
  readonly facts: ConnectionFacts;
  verdict: AccessVerdict | undefined = undefined;
  status: number | undefined = undefined;
  responseNs: bigint | undefined = undefined;
  reason: string | undefined = undefined;
  readonly proxy: HttpProxy;
  readonly state: ConnState;
  readonly res: ServerResponse;
  lease: PoolLease | null = null;
  relay: Relay | null = null;
  downstreamGone = false;
  /** The request's `Connection` tokens, read once (the upstream headers leave out what they name). */
  connTokens: ReadonlySet<string> | undefined = undefined;

  constructor(proxy: HttpProxy, state: ConnState, request: ParsedRequest, res: ServerResponse, startMs: number, startNs: bigint) {
    this.conn = state.conn;
    this.ctx = state.ctx;
    this.request = request;
    this.startedAt = new Date(startMs);
    this.startNs = startNs;
    this.startedIso = isoAt(startMs);
    this.facts = state.facts;
    this.proxy = proxy;
    this.state = state;
    this.res = res;
  }

  responseStart(status: number, rawHeaders: readonly string[]): void {
    this.proxy.responseStarted(this, status, rawHeaders);
  }

  done(error: Error | null, responseStarted: boolean): void {
    this.proxy.relayDone(this, error, responseStarted);
  }
}

/** Placeholder until the policy has judged: a denial, so nothing can slip through unjudged. */
const DENY_PENDING: PolicyDecision = Object.freeze({ allowed: false, reason: 'not judged yet' }) as PolicyDecision;

/** The 'close' of a response: its connection's in-flight count, and an abandoned forward. */
function onResponseClose(this: ServerResponse, proxy: HttpProxy, state: ConnState, x: ProxiedExchange | null): void {
  proxy.responseClosed(this, state, x);
}

type Counters = Omit<ProxyStats, 'connections' | 'upstreamPools'>;

export class HttpProxy {
  readonly options: Readonly<Required<HttpProxyOptions>>;
  #deps: L7ProxyDeps;
  #server: Server;
  #pools: UpstreamPools;
  /** Every relay's options: the route timeout and the shared timers that keep it. */
  #relayOptions: { requestTimeoutMs: number; timers: RouteTimers };
  #conns = new WeakMap<Socket, ConnState>();
  /**
   * Access-log sampling: a line is written each time this reaches 1 (an exact rate, no
   * randomness); it starts so that the first forwarded request is logged.
   */
  #sampleCredit: number;
  #sockets = new Set<Socket>();
  #counters: Counters = { requests: 0, denied: 0, forwarded: 0, upstreamErrors: 0, malformed: 0, unknownSource: 0, timeouts: 0, accessLogSampledOut: 0 };
  #site: FlowSite;
  #port = 0;
  #localAddresses = new Set<string>();
  #inflight = 0;
  #closing: Promise<void> | null = null;
  /** HTTP/2 prior knowledge (h2.ts) and HTTP/1.1 Upgrade (upgrade.ts) on the same listener. */
  #h2: H2Proxy;
  #upgrades: UpgradeRelay;
  /** Node's own HTTP/1.1 connection listener, run once a connection is known not to be HTTP/2. */
  #http1: (socket: Socket) => void;

  constructor(deps: L7ProxyDeps, opts: HttpProxyOptions = {}) {
    const o = { ...DEFAULTS };
    for (const [k, v] of Object.entries(opts) as Array<[keyof HttpProxyOptions, unknown]>) {
      if (v !== undefined) (o as Record<string, unknown>)[k] = v;
    }
    if (!(o.accessLogSampleRate > 0 && o.accessLogSampleRate <= 1)) {
      throw new RangeError(`accessLogSampleRate must be in (0, 1], got ${o.accessLogSampleRate}`);
    }
    this.options = o;
    this.#sampleCredit = 1 - o.accessLogSampleRate;
    this.#deps = deps;
    this.#site = { nodeName: deps.nodeName ?? hostname() };
    this.#relayOptions = { requestTimeoutMs: o.httpRequestTimeoutMs, timers: new RouteTimers(o.httpRequestTimeoutMs) };
    this.#pools = new UpstreamPools(deps.connectUpstream, {
      bySourceAddress: o.poolBySourceAddress,
      connectTimeoutMs: o.connectTimeoutMs,
      maxConnections: o.maxUpstreamConnections,
      idleMs: o.upstreamIdleMs,
    });
    this.#server = createServer({
      maxHeaderSize: o.maxHeaderSize,
      requestTimeout: o.requestTimeoutMs,
      headersTimeout: o.headersTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // Missing Host is rejected (and counted) by the parse stage, not silently by Node.
      requireHostHeader: false,
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(Math.min(o.headersTimeoutMs, o.requestTimeoutMs) / 4))),
      insecureHTTPParser: false,
      noDelay: true,
    });
    // One more than the bound, so an over-long header list is seen (Node truncates silently).
    this.#server.maxHeadersCount = o.maxHeadersCount + 1;
    // HTTP/2 with prior knowledge shares the port: Node's connection listener (the HTTP/1.1
    // parser) is taken off and run by #onConnection only for connections that did not open with
    // the HTTP/2 preface; those that did go to the HTTP/2 server (h2.ts).
    const nodeListeners = this.#server.listeners('connection');
    if (nodeListeners.length !== 1) throw membraneError('MEMBRANE_ERR_UNEXPECTED', `http.Server has ${nodeListeners.length} connection listeners, expected Node's one`);
    const http1 = nodeListeners[0] as (socket: Socket) => void;
    this.#http1 = (socket) => http1.call(this.#server, socket);
    this.#server.removeAllListeners('connection');
    this.#server.on('connection', (socket: Socket) => this.#onConnection(socket));
    const host: H2Host = {
      deps,
      options: o,
      site: () => this.#site,
      count: (c) => void this.#counters[c]++,
      emit: (f) => this.#emit(f),
      log: (x, failure) => this.#log(x, failure),
    };
    this.#h2 = new H2Proxy(host);
    this.#upgrades = new UpgradeRelay(host);
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket));
    // CONNECT would open a tunnel past HTTP policy: refused. Upgrade requests are judged, then
    // spliced on 101 (upgrade.ts); h2c is never offered upstream.
    this.#server.on('connect', (req: IncomingMessage, socket: Socket) => this.#refuseTunnel(req, socket, 'CONNECT'));
  }

  /** Listens on a transparent fd from the addon, or on a port (tests, TPROXY fallback). */
  listen(target: { fd: number } | { port: number; host?: string }): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#server.off('listening', onListening);
        reject(membraneError('MEMBRANE_ERR_PROXY_LISTEN', err.message, { cause: err, details: { target } }));
      };
      const onListening = (): void => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#deps.accessLog.error({ type: 'proxy', err }, 'l7 proxy server error'));
        const addr = this.#server.address() as AddressInfo;
        this.#port = addr.port;
        this.#site = { ...this.#site, proxyPort: addr.port };
        this.#localAddresses = localAddresses();
        resolve();
      };
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      if ('fd' in target) this.#server.listen({ fd: target.fd });
      else this.#server.listen(target.port, target.host);
    });
  }

  address(): AddressInfo | null {
    const a = this.#server.address();
    return a !== null && typeof a === 'object' ? a : null;
  }

  stats(): ProxyStats {
    return { ...this.#counters, connections: this.#sockets.size, upstreamPools: this.#pools.size + this.#h2.upstreamSessions };
  }

  /** Stops accepting, lets in-flight requests finish (up to `closeGraceMs`), then closes everything. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => {
        this.#server.close(() => resolve());
      });
      this.#server.closeIdleConnections();
      const h2Closed = this.#h2.close(this.options.closeGraceMs);
      this.#upgrades.close();
      let cut = false;
      const timer = setTimeout(() => {
        cut = true;
        this.#server.closeAllConnections();
        for (const s of this.#sockets) s.destroy();
      }, this.#inflight > 0 || this.#h2.busy ? this.options.closeGraceMs : 0);
      timer.unref();
      await closed;
      clearTimeout(timer);
      await h2Closed;
      await (cut ? this.#pools.destroy() : this.#pools.close());
    })();
    return this.#closing;
  }

  #isSelf(conn: ConnectionInfo): boolean {
    return conn.dstPort === this.#port && (conn.dstIp.startsWith('127.') || conn.dstIp === '::1' || this.#localAddresses.has(conn.dstIp));
  }

  #onConnection(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    const r = acceptConnection(socket, this.#deps, (c) => this.#isSelf(c));
    if (!r.ok) {
      this.#counters.unknownSource++;
      const detail: Record<string, unknown> = { type: 'connection', verdict: 'Denied', reason: r.reason };
      if (r.conn) {
        detail.source = { address: `${r.conn.srcIp}:${r.conn.srcPort}` };
        detail.destination = { address: `${r.conn.dstIp}:${r.conn.dstPort}` };
      }
      if (r.error !== undefined) detail.err = r.error;
      this.#deps.accessLog.warn(detail, 'connection refused');
      if (channels.rejected.hasSubscribers) channels.rejected.publish({ reason: r.reason, conn: r.conn });
      socket.destroy();
      return;
    }
    this.#conns.set(socket, new ConnState(socket, r.conn, r.ctx, this.#pools.keyOf(r.ctx, r.conn)));
    sniffPreface(socket, this.options.headersTimeoutMs, (kind) => {
      if (kind === 'h2') this.#h2.serve(socket, r.conn, r.ctx);
      else if (kind === 'http1') {
        this.#http1(socket);
        socket.resume();
      }
    });
  }

  /** An HTTP/1.1 Upgrade request (WebSocket, …): judged and relayed by upgrade.ts. */
  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const state = this.#conns.get(socket);
    // Pipelined behind a request still being answered, a 101 could not be written in order.
    if (!state || state.closing || state.inflight > 0) {
      socket.destroy();
      return;
    }
    this.#upgrades.handle(req, socket, head, state.conn, state.ctx);
  }

  #emit(flow: Flow): void {
    try {
      this.#deps.onFlow(flow);
    } catch (err) {
      this.#deps.accessLog.error({ type: 'proxy', err }, 'onFlow failed');
    }
  }

  #log(x: Exchange, failure?: UpstreamFailure): void {
    // While closing, a connection whose last request just ended is idle: let it go now.
    if (this.#closing) setImmediate(() => this.#server.closeIdleConnections());
    if (channels.done.hasSubscribers) channels.done.publish({ exchange: x });
    // Sampling leaves out only requests that went through: a denial or failure is always written.
    if (x.verdict === 'Forwarded' && this.options.accessLogSampleRate < 1) {
      this.#sampleCredit += this.options.accessLogSampleRate;
      if (this.#sampleCredit < 1) {
        this.#counters.accessLogSampledOut++;
        return;
      }
      this.#sampleCredit -= 1;
    }
    // A connection's source and destination are serialised once, in its own child logger.
    const facts = x.facts;
    const log = facts !== undefined ? facts.accessLog(this.#deps.accessLog) : this.#deps.accessLog;
    const entry = facts !== undefined ? boundAccessLogEntry(x) : accessLogEntry(x);
    // What the client sent, when the policy judged (and the upstream got) its normalised form.
    if (x.request.originalPath !== undefined) entry.original_path = x.request.originalPath;
    if (failure) {
      entry.upstream_failure = failure.kind;
      entry.response_flags = failure.flag;
    }
    if (x.verdict === 'Error') log.warn(entry, 'http');
    else log.info(entry, 'http');
  }

  /**
   * The policy state for a request on this connection: read once per connection and kept while
   * `policyRevision` says nothing changed; read per request when the deps give no revision.
   */
  #l7FlowOf(state: ConnState): L7Flow {
    const revisionOf = this.#deps.policyRevision;
    if (revisionOf === undefined) return this.#deps.l7Flow(state.ctx, state.conn);
    const revision = revisionOf.call(this.#deps);
    if (state.l7Flow === null || state.l7Revision !== revision) {
      state.l7Flow = this.#deps.l7Flow(state.ctx, state.conn);
      state.l7Revision = revision;
    }
    return state.l7Flow;
  }

  #judge(state: ConnState, request: ParsedRequest): PolicyDecision {
    let flow: L7Flow;
    try {
      flow = this.#l7FlowOf(state);
    } catch (err) {
      return policyError(err);
    }
    // A keep-alive client repeating its request (the common case under load) is judged once:
    // decideL7 is pure, and on a state kept under a revision whose rules read no headers its
    // verdict depends on method, host and path alone.
    if (state.memoFlow === flow) {
      if (state.memoDecision !== null && state.memoMethod === request.method && state.memoPath === request.path && state.memoHost === request.host) {
        return state.memoDecision;
      }
    } else if (this.#deps.policyRevision !== undefined) {
      state.memoFlow = flow;
      state.memoUsable = !readsHeaders(flow);
      state.memoDecision = null;
    }
    const d = decide(flow, request);
    if (state.memoFlow === flow && state.memoUsable) {
      state.memoMethod = request.method;
      state.memoHost = request.host;
      state.memoPath = request.path;
      state.memoDecision = d;
    }
    return d;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const state = this.#conns.get(req.socket);
    if (!state) {
      req.socket.destroy();
      return;
    }
    if (state.closing) {
      // Pipelined after a response that closes the connection: never processed, never answered;
      // the connection ends once the earlier responses are out.
      req.resume();
      return;
    }
    this.#counters.requests++;
    state.inflight++;
    // The client's own `Connection: close` (or HTTP/1.0 without keep-alive): this is the last request.
    const tokens = connectionTokens(req.rawHeaders);
    if (tokens.has('close') || (req.httpVersion === '1.0' && !tokens.has('keep-alive'))) state.closing = true;
    const startMs = Date.now();
    const startNs = process.hrtime.bigint();

    // parse
    const parsed = parseRequest(req, state.conn, { maxHeadersCount: this.options.maxHeadersCount, normalizePath: this.options.normalizePath });
    if (!parsed.ok) {
      res.once('close', onResponseClose.bind(res, this, state, null));
      this.#refuseRequest(state, req, res, parsed, startMs);
      return;
    }

    // policy
    const x = new ProxiedExchange(this, state, parsed.request, res, startMs, startNs);
    x.connTokens = tokens;
    res.once('close', onResponseClose.bind(res, this, state, x));
    x.decision = this.#judge(state, x.request);
    // Before the flow: a tracer (trace.ts) sets the trace context the flow carries.
    if (channels.request.hasSubscribers) channels.request.publish({ exchange: x });
    this.#emit(requestFlow(x, this.#site));

    if (!x.decision.allowed) {
      this.#deny(state, x, res);
      return;
    }
    this.#forward(state, x, req, res);
  }

  /**
   * A request the parse stage refused: 400, or the 307 to its normalised path. Both are on the
   * flow stream as well as in the access log (log.ts `localReplyFlows`: ERROR, or FORWARDED for
   * the redirect).
   */
  #refuseRequest(state: ConnState, req: IncomingMessage, res: ServerResponse, parsed: Exclude<ReturnType<typeof parseRequest>, { ok: true }>, startMs: number): void {
    if (parsed.status === 307) {
      // Envoy's UNESCAPE_AND_REDIRECT: the request is not judged; the client asks again for the
      // normalised path, and that request is judged and forwarded like any other.
      this.#reply(state, res, pathRedirect(parsed.location), mustCloseUnread(req));
      this.#localReplyFlows(state, refusedRequestOf(req, state.conn), 307, 'FORWARDED', startMs);
      this.#deps.accessLog.info(
        {
          type: 'http',
          verdict: 'Redirected',
          status: 307,
          reason: parsed.reason,
          method: parsed.method,
          original_path: parsed.path,
          location: parsed.location,
          source: { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity },
          destination: { address: `${state.conn.dstIp}:${state.conn.dstPort}`, identity: state.ctx.dstIdentity },
        },
        'http',
      );
      return;
    }
    this.#counters.malformed++;
    const reply = parsed.status === 431 ? HEADERS_TOO_LARGE : BAD_REQUEST;
    this.#reply(state, res, reply, true);
    this.#localReplyFlows(state, refusedRequestOf(req, state.conn), reply.status, 'ERROR', startMs);
    this.#deps.accessLog.warn(
      {
        type: 'http',
        verdict: 'Error',
        status: reply.status,
        reason: parsed.reason,
        method: req.method,
        source: { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity },
        destination: { address: `${state.conn.dstIp}:${state.conn.dstPort}`, identity: state.ctx.dstIdentity },
      },
      'http',
    );
  }

  /**
   * A response closed (finished or abandoned): one fewer in flight on its connection, the reply
   * deferred behind it written, and a forward whose client went away aborted upstream.
   * @internal called by the response's 'close' listener.
   */
  responseClosed(res: ServerResponse, state: ConnState, x: ProxiedExchange | null): void {
    state.inflight--;
    if (state.inflight === 0 && state.deferred) {
      const reply = state.deferred;
      state.deferred = null;
      if (state.socket.writable) state.socket.end(rawReply(reply));
      else state.socket.destroy();
    }
    if (x !== null && x.relay !== null && !res.writableFinished) {
      x.downstreamGone = true;
      x.relay.abort(membraneError('MEMBRANE_ERR_PROXY_REQUEST', 'downstream connection closed'));
    }
  }

  /** A local reply; one that closes marks the connection so nothing after it is processed. */
  #reply(state: ConnState, res: ServerResponse, reply: LocalReply, close: boolean): void {
    if (close) state.closing = true;
    sendLocalReply(res, reply, close);
  }

  #deny(state: ConnState, x: Exchange, res: ServerResponse): void {
    this.#counters.denied++;
    x.verdict = 'Denied';
    x.status = DENIED.status;
    if (x.decision.reason !== undefined) x.reason = x.decision.reason;
    this.#reply(state, res, DENIED, mustClose(x.request));
    x.responseNs = process.hrtime.bigint();
    // Cilium: the denied request is DROPPED, the 403 that answers it is FORWARDED.
    this.#emit(responseFlow(x, this.#site, DENIED.status, [], 'FORWARDED'));
    this.#log(x);
  }

  #forward(state: ConnState, x: ProxiedExchange, req: IncomingMessage, res: ServerResponse): void {
    try {
      x.lease = this.#pools.acquire(x.ctx, x.conn, state.poolKey);
    } catch (err) {
      this.#upstreamFailed(state, x, res, err as Error);
      return;
    }
    this.#inflight++;
    x.relay = new Relay(res, x.request, this.#relayOptions, x);
    x.relay.start(x.lease.dispatcher, req, x.request, x.connTokens);
  }

  /** @internal the relay wrote the upstream's status line and headers downstream. */
  responseStarted(x: ProxiedExchange, status: number, rawHeaders: readonly string[]): void {
    this.#counters.forwarded++;
    x.verdict = 'Forwarded';
    x.status = status;
    x.responseNs = process.hrtime.bigint();
    this.#emit(responseFlow(x, this.#site, status, rawHeaders, 'FORWARDED'));
  }

  /** @internal the relay ended: in full (`error` null), cut, or failed. */
  relayDone(x: ProxiedExchange, error: Error | null, responseStarted: boolean): void {
    x.lease?.release();
    this.#inflight--;
    if (!error) {
      this.#log(x);
      return;
    }
    if (x.downstreamGone) {
      x.verdict = 'Error';
      x.reason = 'downstream connection closed';
      if (!responseStarted) x.status = 0;
      this.#log(x);
      return;
    }
    if (!responseStarted) {
      this.#upstreamFailed(x.state, x, x.res, error);
      return;
    }
    // The status line is already out: all that can be done is to cut the response, so the
    // client sees a truncated answer rather than a forged complete one.
    const failure = classifyUpstreamFailure(error);
    this.#counters.upstreamErrors++;
    x.verdict = 'Error';
    x.reason = `${MID_RESPONSE[failure.kind]}: ${error.message}`;
    x.res.destroy(error);
    this.#log(x, failure);
  }

  #upstreamFailed(state: ConnState, x: Exchange, res: ServerResponse, error: Error): void {
    this.#counters.upstreamErrors++;
    const failure = classifyUpstreamFailure(error);
    const reply = failure.reply;
    x.verdict = 'Error';
    x.status = reply.status;
    x.reason = `${reply.body} (${error.message})`;
    x.responseNs = process.hrtime.bigint();
    // A request body may be left half-read: the connection cannot carry another request.
    this.#reply(state, res, reply, x.request.hasBody);
    this.#emit(responseFlow(x, this.#site, reply.status, [], 'ERROR'));
    this.#log(x, failure);
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = err.code ?? '';
    const state = this.#conns.get(socket);
    // Client gone (reset, or EOF in the middle of a request): nobody to answer, nothing to count.
    if (code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE' || !socket.writable || !state) {
      socket.destroy();
      return;
    }
    // Bytes after a request that closes the connection (the client's `Connection: close`, or a
    // closing answer of ours): RFC 9112 §9.6, not processed; the earlier requests are answered
    // and the connection then closes. Answering 400 here would report failure for requests that
    // were executed. The parser stays failed, so later bytes land here too.
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      // A request is still arriving after `requestTimeoutMs`. If it is the one in flight (its body
      // stalled), nothing can be answered in order: cut the connection, which aborts upstream.
      this.#counters.timeouts++;
      state.closing = true;
      if (state.inflight > 0) {
        socket.destroy();
        return;
      }
      // As every local answer: an access-log line and the request/response flows (ERROR, 408).
      this.#deps.accessLog.warn(
        {
          type: 'http',
          verdict: 'Error',
          status: REQUEST_TIMEOUT.status,
          reason: 'request not received in time',
          source: { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity },
        },
        'http',
      );
      this.#endAfterInflight(state, socket, REQUEST_TIMEOUT, refusedRequestOfBytes((err as { rawPacket?: Buffer }).rawPacket, state.conn));
      return;
    }
    if (code === 'HPE_CLOSED_CONNECTION' || state.closing) return;
    // Unparseable bytes (e.g. a malformed pipelined request): the requests before them are
    // answered first, in order, then the 400, then the connection closes.
    state.closing = true;
    this.#counters.malformed++;
    // A header block over maxHeaderSize: 431, as Envoy answers past max_request_headers_kb.
    const reply = code === 'HPE_HEADER_OVERFLOW' ? HEADERS_TOO_LARGE : BAD_REQUEST;
    this.#deps.accessLog.warn(
      {
        type: 'http',
        verdict: 'Error',
        status: reply.status,
        reason: code || err.message,
        source: { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity },
      },
      'http',
    );
    this.#endAfterInflight(state, socket, reply, refusedRequestOfBytes((err as { rawPacket?: Buffer }).rawPacket, state.conn));
  }

  /**
   * Answers on the raw socket and closes it, after the responses still owed on it; the refusal's
   * flows (ERROR, with the reply's status) go out now.
   */
  #endAfterInflight(state: ConnState, socket: Socket, reply: LocalReply, request: RefusedRequest): void {
    this.#localReplyFlows(state, request, reply.status, 'ERROR', Date.now());
    if (state.inflight > 0) state.deferred = reply;
    else socket.end(rawReply(reply));
  }

  /** The flows of a local answer that is not a policy decision (log.ts `localReplyFlows`). */
  #localReplyFlows(state: ConnState, request: RefusedRequest, status: number, verdict: 'FORWARDED' | 'ERROR', startMs: number): void {
    const [asked, answered] = localReplyFlows(state.conn, state.ctx, this.#site, request, status, verdict, startMs);
    this.#emit(asked);
    this.#emit(answered);
  }

  /** CONNECT would tunnel bytes past HTTP policy: refused. */
  #refuseTunnel(req: IncomingMessage, socket: Socket, what: string): void {
    this.#counters.requests++;
    this.#counters.malformed++;
    const state = this.#conns.get(socket);
    this.#deps.accessLog.warn(
      {
        type: 'http',
        verdict: 'Error',
        status: NOT_IMPLEMENTED.status,
        reason: `${what} not supported through the L7 proxy`,
        method: req.method,
        source: state ? { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity } : undefined,
      },
      'http',
    );
    if (!socket.writable || !state) socket.destroy();
    else {
      state.closing = true;
      this.#endAfterInflight(state, socket, NOT_IMPLEMENTED, refusedRequestOf(req, state.conn));
    }
  }
}

/** How a failure after the response started is logged. */
const MID_RESPONSE: Readonly<Record<UpstreamFailure['kind'], string>> = {
  'connect-failure': 'upstream failed mid-response',
  'connect-timeout': 'upstream failed mid-response',
  reset: 'upstream reset after response started',
  timeout: 'upstream request timeout after response started',
  'protocol-error': 'upstream protocol error after response started',
  'local-reset': 'request aborted by the proxy after response started',
};

/** A request answered without reading its body keeps the connection only under `mustClose`'s rules. */
function mustCloseUnread(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te === undefined && (cl === undefined || cl === '0')) return false;
  if (te !== undefined || req.headers.expect !== undefined) return true;
  return !/^[0-9]{1,15}$/.test(cl ?? '') || Number(cl) > DRAIN_LIMIT;
}

/** A denied request keeps its connection only if its body is small, declared and not waiting on 100-continue. */
function mustClose(req: ParsedRequest): boolean {
  if (!req.hasBody) return false;
  if (req.expectContinue) return true;
  return req.contentLength === null || req.contentLength > DRAIN_LIMIT;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(a.address);
  }
  return out;
}
