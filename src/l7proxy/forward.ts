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
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { BAD_GATEWAY, GATEWAY_TIMEOUT, UPSTREAM_UNAVAILABLE, type LocalReply } from './local-reply.js';
import { withHost, type ParsedRequest } from './parse.js';
import type { ConnectionInfo, FlowContext, L7ProxyDeps } from './types.js';

export interface UpstreamOptions {
  /** Key pools by client IP as well as identity (source-IP preservation). */
  bySourceAddress?: boolean;
  connectTimeoutMs: number;
  upstreamTimeoutMs: number;
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

/**
 * An undici connector that uses the injected socket factory. It hands undici the socket once it is
 * connected; errors and the connect timeout fail the attempt (undici then fails the request).
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
      callback(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connectUpstream threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }), null);
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
    const onError = (err: Error): void => settle(err);
    const timer = setTimeout(
      () => settle(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connect to ${originOf(conn)} timed out after ${timeoutMs} ms`, { details: { timeout: true } })),
      timeoutMs,
    );
    timer.unref();
    if (socket.destroyed) {
      settle(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', 'upstream socket already destroyed'));
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

export interface PoolLease {
  dispatcher: Dispatcher;
  key: string;
  release(): void;
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

  keys(): string[] {
    return [...this.#pools.keys()];
  }

  /** The pool for this identity and destination, created on first use; release when the request ends. */
  acquire(ctx: FlowContext, conn: ConnectionInfo): PoolLease {
    if (this.#closed) throw membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', 'proxy is closing');
    const key = poolKey(ctx, conn, this.#opts.bySourceAddress === true);
    let entry = this.#pools.get(key);
    if (!entry) {
      const pool = new Pool(originOf(conn), {
        connect: upstreamConnector(this.#connect, ctx, conn, this.#opts.connectTimeoutMs),
        connections: this.#opts.maxConnections,
        pipelining: 1,
        headersTimeout: this.#opts.upstreamTimeoutMs,
        bodyTimeout: this.#opts.upstreamTimeoutMs,
        strictContentLength: true,
      });
      entry = { pool, key, inflight: 0, lastUsed: Date.now() };
      this.#pools.set(key, entry);
    }
    const e = entry;
    e.inflight++;
    e.lastUsed = Date.now();
    let released = false;
    return {
      dispatcher: e.pool,
      key,
      release: () => {
        if (released) return;
        released = true;
        e.inflight--;
        e.lastUsed = Date.now();
      },
    };
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

/** Which local reply an upstream failure before the response headers deserves. */
export function replyForUpstreamError(err: unknown): LocalReply {
  const code = (err as { code?: unknown })?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return GATEWAY_TIMEOUT;
  // undici's parser errors do not always carry a code: recognise them by class too.
  if (err instanceof undiciErrors.HTTPParserError || err instanceof undiciErrors.ResponseContentLengthMismatchError || err instanceof undiciErrors.HeadersOverflowError) {
    return BAD_GATEWAY;
  }
  if (typeof code === 'string' && (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_INFO')) {
    return BAD_GATEWAY;
  }
  if (isMembraneError(err, 'MEMBRANE_ERR_PROXY_RESPONSE')) return BAD_GATEWAY;
  return UPSTREAM_UNAVAILABLE;
}

export interface RelayEvents {
  /** Upstream answered and its status line and headers were written downstream. */
  responseStart(status: number, rawHeaders: ReadonlyArray<string | Buffer>): void;
  /** The exchange ended: `error` unset when the response was relayed in full. */
  done(outcome: { error?: Error; responseStarted: boolean }): void;
}

export interface RelayOptions {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

/**
 * Sends the request upstream through `dispatcher` and streams the response back into `res`.
 * Returns an abort function (used when the downstream client goes away).
 */
export function relay(
  dispatcher: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  parsed: ParsedRequest,
  opts: RelayOptions,
  events: RelayEvents,
): (reason: Error) => void {
  let controller: Dispatcher.DispatchController | null = null;
  let abortReason: Error | null = null;
  let responseStarted = false;
  let finished = false;

  const finish = (error?: Error): void => {
    if (finished) return;
    finished = true;
    events.done(error ? { error, responseStarted } : { responseStarted });
  };

  const raw = parsed.host !== req.headers.host ? withHost(parsed.rawHeaders, parsed.host) : parsed.rawHeaders;
  const body = parsed.hasBody ? req : null;
  if (body === null) req.resume();
  else if (parsed.expectContinue) res.writeContinue();

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (abortReason) c.abort(abortReason);
    },
    onResponseStart(c, statusCode, _headers, statusMessage) {
      if (statusCode < 200) return; // interim responses are not relayed
      const rawHeaders = (c.rawHeaders as Buffer[] | null) ?? [];
      try {
        const headers = downstreamResponseHeaders(rawHeaders);
        if (statusMessage) res.writeHead(statusCode, statusMessage, headers);
        else res.writeHead(statusCode, headers);
      } catch (err) {
        c.abort(membraneError('MEMBRANE_ERR_PROXY_RESPONSE', `unrelayable response head: ${(err as Error).message}`, { cause: err }));
        return;
      }
      responseStarted = true;
      events.responseStart(statusCode, rawHeaders);
    },
    onResponseData(c, chunk) {
      if (!res.write(chunk)) {
        c.pause();
        res.once('drain', () => c.resume());
      }
    },
    onResponseEnd() {
      res.end();
      finish();
    },
    onResponseError(_c, err) {
      finish(err);
    },
  };

  try {
    dispatcher.dispatch(
      {
        path: parsed.path,
        method: parsed.method,
        headers: upstreamRequestHeaders(raw),
        body,
        headersTimeout: opts.headersTimeoutMs,
        bodyTimeout: opts.bodyTimeoutMs,
        reset: false,
      },
      handler,
    );
  } catch (err) {
    finish(err instanceof Error ? err : new Error(String(err)));
  }

  return (reason: Error) => {
    if (finished) return;
    abortReason = reason;
    if (controller) controller.abort(reason);
  };
}
