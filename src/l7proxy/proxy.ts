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
import { classifyUpstreamFailure, relay, UpstreamPools, type PoolLease, type UpstreamFailure } from './forward.js';
import { BAD_REQUEST, DENIED, NOT_IMPLEMENTED, pathRedirect, rawReply, REQUEST_TIMEOUT, sendLocalReply, type LocalReply } from './local-reply.js';
import { connectionTokens } from './headers.js';
import { accessLogEntry, requestFlow, responseFlow, type Exchange, type FlowSite } from './log.js';
import { parseRequest, type ParsedRequest } from './parse.js';
import { evaluatePolicy } from './policy.js';
import type { ConnectionInfo, FlowContext, HttpProxyOptions, L7ProxyDeps, ProxyStats } from './types.js';
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
};

/** A denied request whose body is small and declared is drained to keep the connection; else closed. */
const DRAIN_LIMIT = 64 * 1024;

interface ConnState {
  conn: ConnectionInfo;
  ctx: FlowContext;
  /** Requests on this connection whose response has not finished yet. */
  inflight: number;
  /**
   * The connection ends after the responses already queued on it (a closing response was sent,
   * or the client said `Connection: close`): nothing further on it is processed or answered
   * (RFC 9112 §9.6).
   */
  closing: boolean;
  /** Written once the in-flight responses are done: a reply to bytes that could not be parsed. */
  deferred: LocalReply | null;
}

type Counters = Omit<ProxyStats, 'connections' | 'upstreamPools'>;

export class HttpProxy {
  readonly options: Readonly<Required<HttpProxyOptions>>;
  #deps: L7ProxyDeps;
  #server: Server;
  #pools: UpstreamPools;
  #conns = new WeakMap<Socket, ConnState>();
  #sockets = new Set<Socket>();
  #counters: Counters = { requests: 0, denied: 0, forwarded: 0, upstreamErrors: 0, malformed: 0, unknownSource: 0, timeouts: 0 };
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
    this.options = o;
    this.#deps = deps;
    this.#site = { nodeName: deps.nodeName ?? hostname() };
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
    this.#conns.set(socket, { conn: r.conn, ctx: r.ctx, inflight: 0, closing: false, deferred: null });
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
    const entry = accessLogEntry(x);
    // What the client sent, when the policy judged (and the upstream got) its normalised form.
    if (x.request.originalPath !== undefined) entry.original_path = x.request.originalPath;
    if (failure) {
      entry.upstream_failure = failure.kind;
      entry.response_flags = failure.flag;
    }
    if (x.verdict === 'Error') this.#deps.accessLog.warn(entry, 'http');
    else this.#deps.accessLog.info(entry, 'http');
    if (channels.done.hasSubscribers) channels.done.publish({ exchange: x });
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
    this.#track(state, req.socket, res);
    // The client's own `Connection: close` (or HTTP/1.0 without keep-alive): this is the last request.
    const tokens = connectionTokens(req.rawHeaders);
    if (tokens.has('close') || (req.httpVersion === '1.0' && !tokens.has('keep-alive'))) state.closing = true;
    const startedAt = new Date();
    const startNs = process.hrtime.bigint();

    // parse
    const parsed = parseRequest(req, state.conn, { maxHeadersCount: this.options.maxHeadersCount, normalizePath: this.options.normalizePath });
    if (!parsed.ok && parsed.status === 307) {
      // Envoy's UNESCAPE_AND_REDIRECT: the request is not judged; the client asks again for the
      // normalised path, and that request is judged and forwarded like any other.
      this.#reply(state, res, pathRedirect(parsed.location), mustCloseUnread(req));
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
    if (!parsed.ok) {
      this.#counters.malformed++;
      this.#reply(state, res, BAD_REQUEST, true);
      this.#deps.accessLog.warn(
        {
          type: 'http',
          verdict: 'Error',
          status: 400,
          reason: parsed.reason,
          method: req.method,
          source: { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity },
          destination: { address: `${state.conn.dstIp}:${state.conn.dstPort}`, identity: state.ctx.dstIdentity },
        },
        'http',
      );
      return;
    }
    const request = parsed.request;

    // policy
    const x: Exchange = {
      conn: state.conn,
      ctx: state.ctx,
      request,
      decision: { allowed: false },
      startedAt,
      startNs,
    };
    x.decision = evaluatePolicy(this.#deps.l7Flow.bind(this.#deps), state.ctx, state.conn, request);
    this.#emit(requestFlow(x, this.#site));
    if (channels.request.hasSubscribers) channels.request.publish({ exchange: x });

    if (!x.decision.allowed) {
      this.#deny(state, x, res);
      return;
    }
    this.#forward(state, x, req, res);
  }

  /** Counts the response as in flight on its connection until it is finished or abandoned. */
  #track(state: ConnState, socket: Socket, res: ServerResponse): void {
    state.inflight++;
    res.once('close', () => {
      state.inflight--;
      if (state.inflight > 0 || !state.deferred) return;
      const reply = state.deferred;
      state.deferred = null;
      if (socket.writable) socket.end(rawReply(reply));
      else socket.destroy();
    });
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

  #forward(state: ConnState, x: Exchange, req: IncomingMessage, res: ServerResponse): void {
    let lease: PoolLease;
    try {
      lease = this.#pools.acquire(x.ctx, x.conn);
    } catch (err) {
      this.#upstreamFailed(state, x, res, err as Error);
      return;
    }
    this.#inflight++;
    let downstreamGone = false;
    const abort = relay(
      lease.dispatcher,
      req,
      res,
      x.request,
      { requestTimeoutMs: this.options.httpRequestTimeoutMs },
      {
        responseStart: (status, rawHeaders) => {
          this.#counters.forwarded++;
          x.verdict = 'Forwarded';
          x.status = status;
          x.responseNs = process.hrtime.bigint();
          this.#emit(responseFlow(x, this.#site, status, rawHeaders, 'FORWARDED'));
        },
        done: ({ error, responseStarted }) => {
          lease.release();
          this.#inflight--;
          if (!error) {
            this.#log(x);
            return;
          }
          if (downstreamGone) {
            x.verdict = 'Error';
            x.reason = 'downstream connection closed';
            if (!responseStarted) x.status = 0;
            this.#log(x);
            return;
          }
          if (!responseStarted) {
            this.#upstreamFailed(state, x, res, error);
            return;
          }
          // The status line is already out: all that can be done is to cut the response, so the
          // client sees a truncated answer rather than a forged complete one.
          const failure = classifyUpstreamFailure(error);
          this.#counters.upstreamErrors++;
          x.verdict = 'Error';
          x.reason = `${MID_RESPONSE[failure.kind]}: ${error.message}`;
          res.destroy(error);
          this.#log(x, failure);
        },
      },
    );
    res.once('close', () => {
      if (!res.writableFinished) {
        downstreamGone = true;
        abort(membraneError('MEMBRANE_ERR_PROXY_REQUEST', 'downstream connection closed'));
      }
    });
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
      if (state.inflight > 0) socket.destroy();
      else socket.end(rawReply(REQUEST_TIMEOUT));
      return;
    }
    if (code === 'HPE_CLOSED_CONNECTION' || state.closing) return;
    // Unparseable bytes (e.g. a malformed pipelined request): the requests before them are
    // answered first, in order, then the 400, then the connection closes.
    state.closing = true;
    this.#counters.malformed++;
    this.#deps.accessLog.warn(
      {
        type: 'http',
        verdict: 'Error',
        status: 400,
        reason: code || err.message,
        source: { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity },
      },
      'http',
    );
    this.#endAfterInflight(state, socket, BAD_REQUEST);
  }

  /** Answers on the raw socket and closes it, after the responses still owed on it. */
  #endAfterInflight(state: ConnState, socket: Socket, reply: LocalReply): void {
    if (state.inflight > 0) state.deferred = reply;
    else socket.end(rawReply(reply));
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
      this.#endAfterInflight(state, socket, NOT_IMPLEMENTED);
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
