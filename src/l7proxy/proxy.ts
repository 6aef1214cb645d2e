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
import { relay, replyForUpstreamError, UpstreamPools, type PoolLease } from './forward.js';
import { BAD_REQUEST, DENIED, NOT_IMPLEMENTED, rawReply, REQUEST_TIMEOUT, sendLocalReply } from './local-reply.js';
import { accessLogEntry, requestFlow, responseFlow, type Exchange, type FlowSite } from './log.js';
import { parseRequest, type ParsedRequest } from './parse.js';
import { evaluatePolicy } from './policy.js';
import type { ConnectionInfo, FlowContext, HttpProxyOptions, L7ProxyDeps, ProxyStats } from './types.js';

const DEFAULTS: Required<HttpProxyOptions> = {
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  upstreamTimeoutMs: 60_000,
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
}

type Counters = Omit<ProxyStats, 'connections' | 'upstreamPools'>;

export class HttpProxy {
  readonly options: Readonly<Required<HttpProxyOptions>>;
  #deps: L7ProxyDeps;
  #server: Server;
  #pools: UpstreamPools;
  #conns = new WeakMap<Socket, ConnState>();
  /** Connections already answered with a closing 400: later parse errors on them are noise. */
  #rejected = new WeakSet<Socket>();
  #sockets = new Set<Socket>();
  #counters: Counters = { requests: 0, denied: 0, forwarded: 0, upstreamErrors: 0, malformed: 0, unknownSource: 0, timeouts: 0 };
  #site: FlowSite;
  #port = 0;
  #localAddresses = new Set<string>();
  #inflight = 0;
  #closing: Promise<void> | null = null;

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
      upstreamTimeoutMs: o.upstreamTimeoutMs,
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
    this.#server.on('connection', (socket: Socket) => this.#onConnection(socket));
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket));
    // CONNECT would open a tunnel past HTTP policy: refused. Upgrade requests (h2c, websocket) are
    // served as plain HTTP/1.1 with the Upgrade header stripped: no 'upgrade' listener on purpose.
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
    return { ...this.#counters, connections: this.#sockets.size, upstreamPools: this.#pools.size };
  }

  /** Stops accepting, lets in-flight requests finish (up to `closeGraceMs`), then closes everything. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => {
        this.#server.close(() => resolve());
      });
      this.#server.closeIdleConnections();
      let cut = false;
      const timer = setTimeout(() => {
        cut = true;
        this.#server.closeAllConnections();
        for (const s of this.#sockets) s.destroy();
      }, this.#inflight > 0 ? this.options.closeGraceMs : 0);
      timer.unref();
      await closed;
      clearTimeout(timer);
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
    this.#conns.set(socket, { conn: r.conn, ctx: r.ctx });
  }

  #emit(flow: Flow): void {
    try {
      this.#deps.onFlow(flow);
    } catch (err) {
      this.#deps.accessLog.error({ type: 'proxy', err }, 'onFlow failed');
    }
  }

  #log(x: Exchange): void {
    // While closing, a connection whose last request just ended is idle: let it go now.
    if (this.#closing) setImmediate(() => this.#server.closeIdleConnections());
    const entry = accessLogEntry(x);
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
    this.#counters.requests++;
    const startedAt = new Date();
    const startNs = process.hrtime.bigint();

    // parse
    const parsed = parseRequest(req, state.conn, { maxHeadersCount: this.options.maxHeadersCount });
    if (!parsed.ok) {
      this.#counters.malformed++;
      this.#rejected.add(req.socket);
      sendLocalReply(res, BAD_REQUEST, true);
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
    x.decision = evaluatePolicy(this.#deps.authorizeHttp.bind(this.#deps), state.ctx, state.conn, request);
    this.#emit(requestFlow(x, this.#site));
    if (channels.request.hasSubscribers) channels.request.publish({ exchange: x });

    if (!x.decision.allowed) {
      this.#deny(x, res);
      return;
    }
    this.#forward(x, req, res);
  }

  #deny(x: Exchange, res: ServerResponse): void {
    this.#counters.denied++;
    x.verdict = 'Denied';
    x.status = DENIED.status;
    if (x.decision.reason !== undefined) x.reason = x.decision.reason;
    sendLocalReply(res, DENIED, mustClose(x.request));
    x.responseNs = process.hrtime.bigint();
    // Cilium: the denied request is DROPPED, the 403 that answers it is FORWARDED.
    this.#emit(responseFlow(x, this.#site, DENIED.status, [], 'FORWARDED'));
    this.#log(x);
  }

  #forward(x: Exchange, req: IncomingMessage, res: ServerResponse): void {
    let lease: PoolLease;
    try {
      lease = this.#pools.acquire(x.ctx, x.conn);
    } catch (err) {
      this.#upstreamFailed(x, res, err as Error);
      return;
    }
    this.#inflight++;
    let downstreamGone = false;
    const abort = relay(
      lease.dispatcher,
      req,
      res,
      x.request,
      { headersTimeoutMs: this.options.upstreamTimeoutMs, bodyTimeoutMs: this.options.upstreamTimeoutMs },
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
            this.#upstreamFailed(x, res, error);
            return;
          }
          // The status line is already out: all that can be done is to cut the response.
          this.#counters.upstreamErrors++;
          x.verdict = 'Error';
          x.reason = `upstream failed mid-response: ${error.message}`;
          res.destroy(error);
          this.#log(x);
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

  #upstreamFailed(x: Exchange, res: ServerResponse, error: Error): void {
    this.#counters.upstreamErrors++;
    const reply = replyForUpstreamError(error);
    x.verdict = 'Error';
    x.status = reply.status;
    x.reason = error.message;
    x.responseNs = process.hrtime.bigint();
    sendLocalReply(res, reply, x.request.hasBody);
    this.#emit(responseFlow(x, this.#site, reply.status, [], 'ERROR'));
    this.#log(x);
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = err.code ?? '';
    // Client gone (reset, or EOF in the middle of a request): nobody to answer, nothing to count.
    if (code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE' || !socket.writable || !this.#conns.has(socket) || this.#rejected.has(socket)) {
      socket.destroy();
      return;
    }
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      this.#counters.timeouts++;
      socket.end(rawReply(REQUEST_TIMEOUT));
      return;
    }
    this.#counters.malformed++;
    const state = this.#conns.get(socket);
    this.#deps.accessLog.warn(
      {
        type: 'http',
        verdict: 'Error',
        status: 400,
        reason: code || err.message,
        source: state ? { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity } : undefined,
      },
      'http',
    );
    socket.end(rawReply(BAD_REQUEST));
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
    if (socket.writable) socket.end(rawReply(NOT_IMPLEMENTED));
    else socket.destroy();
  }
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
