/**
 * HTTP/2 (cleartext, prior knowledge) on the transparent listener: Node's `http2` server takes a
 * connection whose first bytes were the client preface (h2-preface.ts); each stream goes through
 * the same stages as an HTTP/1.1 request:
 *
 *   request (`:method`, `:path` normalised as parse.ts does, `:authority` as host, headers)
 *     → policy (`evaluatePolicy`, i.e. decideL7) → deny this stream alone | forward over HTTP/2
 *     → flows and access-log line with protocol `HTTP/2` (log.ts)
 *
 * A denied stream is answered alone: `:status 403` with Cilium's "Access denied" body, or for a
 * gRPC request (`content-type: application/grpc*`) a trailers-only response that also carries
 * `grpc-status: 7` and `grpc-message: Access denied`, so gRPC clients report PERMISSION_DENIED.
 * The other streams of the connection are untouched. Local replies for upstream failures use
 * Envoy's texts and, for gRPC, Envoy's HTTP→gRPC status mapping (`Grpc::Utility::httpToGrpcStatus`,
 * envoy/source/common/grpc/status.cc).
 *
 * Timeout: `--http-request-timeout` bounds the wait for the upstream's response headers only
 * (504 "upstream request timeout"); once a response started, a stream lives as long as both
 * ends keep it (a gRPC stream is bounded by its own deadline, `grpc-timeout`). Bounds: Node's
 * per-session memory cap, SETTINGS_MAX_CONCURRENT_STREAMS, header list size and count, and its
 * flood limits (outstanding pings and settings, invalid frames, rejected streams, rapid resets).
 */

import {
  constants as h2c,
  createServer as createH2Server,
  sensitiveHeaders,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { membraneError } from '../errors/index.js';
import type { Flow } from '../observe/index.js';
import { normalizeRequestTarget } from '../policy/index.js';
import { classifyUpstreamFailure, type UpstreamFailure } from './forward.js';
import { H2Upstreams, type H2Lease } from './h2-forward.js';
import { DENIED, type LocalReply } from './local-reply.js';
import { localReplyFlows, requestFlow, responseFlow, type Exchange, type FlowSite } from './log.js';
import { h2RefusedRequestOf, traceContextOf, type ParsedRequest } from './parse.js';
import { evaluatePolicy } from './policy.js';
import { channels } from './diagnostics.js';
import type { ConnectionInfo, FlowContext, HttpProxyOptions, L7ProxyDeps, ProxyStats } from './types.js';

/** What `HttpProxy` lends the HTTP/2 side: its deps, options, counters, flows and access log. */
export interface H2Host {
  readonly deps: L7ProxyDeps;
  readonly options: Readonly<Required<HttpProxyOptions>>;
  site(): FlowSite;
  count(counter: keyof Pick<ProxyStats, 'requests' | 'denied' | 'forwarded' | 'upstreamErrors' | 'malformed'>): void;
  emit(flow: Flow): void;
  log(x: Exchange, failure?: UpstreamFailure): void;
}

/** Bounds of the downstream HTTP/2 server (per connection). */
export const H2_LIMITS = {
  /** SETTINGS_MAX_CONCURRENT_STREAMS announced to clients (Go's and nginx's default is 100–250). */
  maxConcurrentStreams: 128,
  /** Node `maxSessionMemory`, MiB per session: beyond it new streams are refused (ENHANCE_YOUR_CALM). */
  maxSessionMemoryMiB: 10,
  /** Initial per-stream window: a client can have at most this many unread request bytes per stream. */
  initialWindowSize: 1 << 20,
} as const;

const GRPC_CONTENT_TYPE = /^application\/grpc([+;].*)?$/i;

/** Envoy `Grpc::Utility::httpToGrpcStatus`: the gRPC status a local HTTP reply maps to. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/** gRPC's percent-encoding of `grpc-message`: bytes outside printable ASCII, and `%`, as %XX (PROTOCOL-HTTP2.md). */
function grpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Connection-specific fields never cross HTTP/2 (RFC 9113 §8.2.2); `te: trailers` is the exception. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);
/** At most one of each (the policy would see one value, the server maybe another). */
const SINGLETON = new Set(['host', 'content-length', 'content-type', 'authorization', 'proxy-authorization']);

export type H2RequestResult =
  | { ok: true; request: ParsedRequest }
  | { ok: false; status: 400 | 501; reason: string }
  | { ok: false; status: 307; reason: string; location: string };

/**
 * A stream's request as the policy judges it: `:method`, `:path` normalised as parse.ts does for
 * HTTP/1.1 (307 for escaped slashes, 400 for what cannot be normalised), `:authority` (or Host)
 * as the host, and the regular header fields. `protocol` is `HTTP/2`.
 */
export function h2Request(headers: IncomingHttpHeaders, rawHeaders: readonly string[], endStream: boolean, normalizePath: boolean): H2RequestResult {
  const method = headers[':method'] ?? '';
  if (method === 'CONNECT') return { ok: false, status: 501, reason: 'CONNECT not supported through the L7 proxy' };
  let path = headers[':path'] ?? '';
  if (!(path.startsWith('/') || (path === '*' && method === 'OPTIONS'))) return { ok: false, status: 400, reason: 'invalid :path' };
  if (path.includes('#')) return { ok: false, status: 400, reason: 'fragment in :path' };
  const regular: string[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (name.startsWith(':')) continue;
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    if (n > 1 && SINGLETON.has(name)) return { ok: false, status: 400, reason: `repeated ${name} header` };
    regular.push(name, rawHeaders[i + 1] as string);
  }
  const authority = headers[':authority'];
  const hostField = headers.host;
  if (authority !== undefined && hostField !== undefined && authority !== hostField) {
    return { ok: false, status: 400, reason: ':authority and Host differ' };
  }
  const host = authority ?? hostField;
  if (host === undefined || host === '') return { ok: false, status: 400, reason: 'missing :authority' };

  let originalPath: string | undefined;
  if (normalizePath) {
    const n = normalizeRequestTarget(path);
    if (n.kind === 'reject') return { ok: false, status: 400, reason: n.reason };
    if (n.kind === 'redirect') return { ok: false, status: 307, reason: 'escaped slashes in path: redirected to the normalized path', location: n.location };
    if (n.changed) {
      originalPath = path;
      path = n.target;
    }
  }
  const policyHeaders: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) policyHeaders[k] = v;
  policyHeaders.host = host;
  const cl = headers['content-length'];
  const contentLength = cl !== undefined && /^[0-9]{1,15}$/.test(cl) ? Number(cl) : null;
  const request: ParsedRequest = {
    method,
    path,
    host,
    url: `http://${host}${path === '*' ? '' : path}`,
    protocol: 'HTTP/2',
    headers: policyHeaders,
    rawHeaders: regular,
    hasBody: !endStream,
    contentLength,
    expectContinue: false,
  };
  if (originalPath !== undefined) request.originalPath = originalPath;
  const tp = headers.traceparent;
  const tc = traceContextOf(typeof tp === 'string' ? tp : undefined);
  if (tc) request.traceContext = tc;
  return { ok: true, request };
}

/** The upstream request's header block: judged method, path and authority; no connection-specific fields. */
function upstreamHeaders(headers: IncomingHttpHeaders, req: ParsedRequest): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':method': req.method, ':path': req.path, ':authority': req.host, ':scheme': 'http' };
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(':') || CONNECTION_SPECIFIC.has(k) || k.startsWith('proxy-') || v === undefined) continue;
    if (k === 'te' && v !== 'trailers') continue;
    out[k] = v;
  }
  const sensitive = (headers as Record<symbol, unknown>)[sensitiveHeaders];
  if (Array.isArray(sensitive)) (out as Record<symbol, unknown>)[sensitiveHeaders] = sensitive;
  return out;
}

/** Response fields to relay downstream: `:status` and the regular fields. */
function downstreamHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || CONNECTION_SPECIFIC.has(k) || (k.startsWith(':') && k !== ':status')) continue;
    out[k] = v;
  }
  return out;
}

function trailersOf(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !k.startsWith(':')) out[k] = v;
  return out;
}

/** Flat `[name, value, …]` of a response header block, for the response flow. */
function flatOf(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(':') || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [String(v)]) out.push(k, one);
  }
  return out;
}

/** Errors of a stream whose upstream session never connected. */
const CONNECT_ERRNO = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOENT', 'EACCES', 'EPERM']);

/** An upstream HTTP/2 failure in Envoy's terms (see `classifyUpstreamFailure`). */
export function classifyH2Failure(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && CONNECT_ERRNO.has(code)) {
    return classifyUpstreamFailure(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', code, { details: { phase: 'connect', timeout: false } }));
  }
  if (code === 'ERR_HTTP2_STREAM_ERROR' && /PROTOCOL_ERROR|COMPRESSION_ERROR|FRAME_SIZE_ERROR/.test((err as Error).message)) {
    return classifyUpstreamFailure(membraneError('MEMBRANE_ERR_PROXY_RESPONSE', (err as Error).message));
  }
  if (typeof code === 'string' && (code === 'ERR_HTTP2_SESSION_ERROR' || code.startsWith('ERR_HTTP2_INVALID'))) {
    return classifyUpstreamFailure(membraneError('MEMBRANE_ERR_PROXY_RESPONSE', (err as Error).message));
  }
  return classifyUpstreamFailure(err);
}

interface SessionState {
  conn: ConnectionInfo;
  ctx: FlowContext;
  streams: number;
}

/** The HTTP/2 half of `HttpProxy`: downstream sessions and upstream sessions. */
export class H2Proxy {
  #host: H2Host;
  #server: Http2Server;
  #upstreams: H2Upstreams;
  #sessions = new Map<Http2Session, SessionState>();
  #pending: SessionState | null = null;
  #closing = false;

  constructor(host: H2Host) {
    this.#host = host;
    const o = host.options;
    this.#server = createH2Server({
      maxSessionMemory: H2_LIMITS.maxSessionMemoryMiB,
      // Pseudo-headers count too.
      maxHeaderListPairs: o.maxHeadersCount + 5,
      maxSendHeaderBlockLength: 64 * 1024,
      maxOutstandingPings: 10,
      maxSettings: 32,
      maxSessionInvalidFrames: 1000,
      maxSessionRejectedStreams: 100,
      settings: {
        maxConcurrentStreams: H2_LIMITS.maxConcurrentStreams,
        maxHeaderListSize: o.maxHeaderSize,
        initialWindowSize: H2_LIMITS.initialWindowSize,
        enablePush: false,
      },
    });
    this.#server.on('session', (session: ServerHttp2Session) => this.#onSession(session));
    this.#server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) =>
      this.#onStream(stream, headers, flags, rawHeaders),
    );
    this.#upstreams = new H2Upstreams(host.deps.connectUpstream.bind(host.deps), {
      bySourceAddress: o.poolBySourceAddress,
      connectTimeoutMs: o.connectTimeoutMs,
      idleMs: o.upstreamIdleMs,
      maxSessionMemoryMiB: H2_LIMITS.maxSessionMemoryMiB,
      maxHeaderListSize: Math.max(o.maxHeaderSize, 64 * 1024),
    });
  }

  /** Upstream HTTP/2 sessions open (one per source identity and destination). */
  get upstreamSessions(): number {
    return this.#upstreams.size;
  }

  /** Whether any downstream stream is open (close() then gives them the grace period). */
  get busy(): boolean {
    for (const st of this.#sessions.values()) if (st.streams > 0) return true;
    return false;
  }

  /** Open downstream HTTP/2 connections. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Serves an accepted connection that opened with the HTTP/2 preface (still unread on the socket). */
  serve(socket: Socket, conn: ConnectionInfo, ctx: FlowContext): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#pending = { conn, ctx, streams: 0 };
    try {
      // Node's http2 server creates the session synchronously and reads what was unshifted.
      this.#server.emit('connection', socket);
    } finally {
      this.#pending = null;
    }
  }

  #onSession(session: ServerHttp2Session): void {
    const state = this.#pending;
    if (!state) {
      session.destroy();
      return;
    }
    this.#sessions.set(session, state);
    session.on('error', () => undefined);
    session.once('close', () => this.#sessions.delete(session));
    // An idle connection (no open stream) goes after the HTTP/1.1 keep-alive timeout.
    session.setTimeout(this.#host.options.keepAliveTimeoutMs, () => {
      if (state.streams === 0) session.close();
    });
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void {
    const state = this.#sessions.get(stream.session as Http2Session);
    if (!state) {
      stream.close(h2c.NGHTTP2_REFUSED_STREAM);
      return;
    }
    stream.on('error', () => undefined);
    state.streams++;
    stream.once('close', () => state.streams--);
    this.#host.count('requests');
    const startedAt = new Date();
    const startNs = process.hrtime.bigint();
    const endStream = (flags & h2c.NGHTTP2_FLAG_END_STREAM) !== 0;
    const grpc = GRPC_CONTENT_TYPE.test(headers['content-type'] ?? '');
    const parsed = h2Request(headers, rawHeaders ?? [], endStream, this.#host.options.normalizePath);
    const site = this.#host.site();
    const source = { address: `${state.conn.srcIp}:${state.conn.srcPort}`, identity: state.ctx.srcIdentity };
    const destination = { address: `${state.conn.dstIp}:${state.conn.dstPort}`, identity: state.ctx.dstIdentity };
    if (!parsed.ok) {
      // On the flow stream too, as over HTTP/1.1 (log.ts localReplyFlows).
      const refused = h2RefusedRequestOf(headers, state.conn);
      const flows = localReplyFlows(state.conn, state.ctx, site, refused, parsed.status, parsed.status === 307 ? 'FORWARDED' : 'ERROR', startedAt.getTime());
      if (parsed.status === 307) {
        localReply(stream, { status: 307, body: '', headers: { location: parsed.location } }, grpc);
        for (const f of flows) this.#host.emit(f);
        this.#host.deps.accessLog.info({ type: 'http', verdict: 'Redirected', status: 307, reason: parsed.reason, method: headers[':method'], original_path: headers[':path'], location: parsed.location, protocol: 'HTTP/2', source, destination }, 'http');
        return;
      }
      this.#host.count('malformed');
      localReply(stream, { status: parsed.status, body: parsed.status === 501 ? 'Not Implemented\r\n' : 'Bad Request\r\n' }, grpc);
      for (const f of flows) this.#host.emit(f);
      this.#host.deps.accessLog.warn({ type: 'http', verdict: 'Error', status: parsed.status, reason: parsed.reason, method: headers[':method'], protocol: 'HTTP/2', source, destination }, 'http');
      return;
    }
    const x: Exchange = { conn: state.conn, ctx: state.ctx, request: parsed.request, decision: { allowed: false }, startedAt, startNs };
    x.decision = evaluatePolicy(this.#host.deps.l7Flow.bind(this.#host.deps), state.ctx, state.conn, parsed.request);
    // Before the flow: a tracer (trace.ts) sets the trace context the flow carries.
    if (channels.request.hasSubscribers) channels.request.publish({ exchange: x });
    this.#host.emit(requestFlow(x, site));
    if (!x.decision.allowed) {
      this.#host.count('denied');
      x.verdict = 'Denied';
      x.status = DENIED.status;
      if (x.decision.reason !== undefined) x.reason = x.decision.reason;
      localReply(stream, DENIED, grpc);
      x.responseNs = process.hrtime.bigint();
      this.#host.emit(responseFlow(x, site, DENIED.status, [], 'FORWARDED'));
      this.#host.log(x);
      return;
    }
    this.#forward(stream, headers, x, grpc);
  }

  #forward(down: ServerHttp2Stream, headers: IncomingHttpHeaders, x: Exchange, grpc: boolean): void {
    let lease: H2Lease;
    try {
      lease = this.#upstreams.acquire(x.ctx, x.conn);
    } catch (err) {
      this.#failed(down, x, grpc, err, false);
      return;
    }
    lease.ready.then(
      (session) => {
        if (down.closed || down.destroyed) {
          lease.release();
          x.verdict = 'Error';
          x.status = 0;
          x.reason = 'stream reset by the client';
          this.#host.log(x);
          return;
        }
        this.#relay(down, headers, x, grpc, lease, session);
      },
      (err: unknown) => {
        lease.release();
        this.#failed(down, x, grpc, err, false);
      },
    );
  }

  #relay(down: ServerHttp2Stream, headers: IncomingHttpHeaders, x: Exchange, grpc: boolean, lease: H2Lease, session: ClientHttp2Session): void {
    const site = this.#host.site();
    let up: ClientHttp2Stream;
    try {
      up = session.request(upstreamHeaders(headers, x.request), { endStream: !x.request.hasBody, waitForTrailers: x.request.hasBody });
    } catch (err) {
      lease.release();
      this.#failed(down, x, grpc, err, false);
      return;
    }
    let responseStarted = false;
    let finished = false;
    let timer: NodeJS.Timeout | null = null;
    let responseTrailers: OutgoingHttpHeaders | null = null;
    let requestTrailers: OutgoingHttpHeaders | null = null;
    const finish = (err?: unknown, downstreamGone = false): void => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      lease.release();
      if (err === undefined) {
        this.#host.log(x);
        return;
      }
      if (downstreamGone) {
        x.verdict = 'Error';
        x.reason = 'stream reset by the client';
        if (!responseStarted) x.status = 0;
        if (!up.closed) up.close(h2c.NGHTTP2_CANCEL);
        this.#host.log(x);
        return;
      }
      if (!up.closed) up.close(h2c.NGHTTP2_CANCEL);
      this.#failed(down, x, grpc, err, responseStarted);
    };

    // Request body: streamed with back-pressure; the client's trailers follow it.
    if (x.request.hasBody) {
      down.on('trailers', (t: IncomingHttpHeaders) => {
        requestTrailers = trailersOf(t);
      });
      up.on('wantTrailers', () => {
        // An empty block ends the stream with an empty DATA frame (END_STREAM), no HEADERS.
        up.sendTrailers(requestTrailers ?? {});
      });
      down.pipe(up);
    }
    // The route timeout bounds the wait for the response headers only (see the file comment).
    const ms = this.#host.options.httpRequestTimeoutMs;
    if (ms > 0) {
      timer = setTimeout(() => finish(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `upstream request timeout after ${ms} ms`, { details: { phase: 'timeout' } })), ms);
      timer.unref();
    }

    up.on('headers', (h: IncomingHttpHeaders) => {
      // 1xx: 100 is hop-by-hop here (Node answers Expect itself); 103 Early Hints are relayed.
      if (Number(h[':status']) === 103 && !down.headersSent && !down.closed) {
        try {
          down.additionalHeaders(downstreamHeaders(h));
        } catch {
          // advisory only
        }
      }
    });
    up.on('response', (h: IncomingHttpHeaders, flags: number) => {
      if (finished || down.closed) return;
      if (timer) clearTimeout(timer);
      timer = null;
      const status = Number(h[':status']);
      const trailersOnly = (flags & h2c.NGHTTP2_FLAG_END_STREAM) !== 0;
      try {
        down.respond(downstreamHeaders(h), { endStream: trailersOnly, waitForTrailers: !trailersOnly });
      } catch (err) {
        finish(membraneError('MEMBRANE_ERR_PROXY_RESPONSE', `unrelayable response head: ${(err as Error).message}`, { cause: err }));
        return;
      }
      responseStarted = true;
      this.#host.count('forwarded');
      x.verdict = 'Forwarded';
      x.status = status;
      x.responseNs = process.hrtime.bigint();
      this.#host.emit(responseFlow(x, site, status, flatOf(h), 'FORWARDED'));
      if (trailersOnly) return;
      down.on('wantTrailers', () => {
        down.sendTrailers(responseTrailers ?? {});
      });
      up.pipe(down);
    });
    up.on('trailers', (t: IncomingHttpHeaders) => {
      responseTrailers = trailersOf(t);
    });
    up.on('error', (err: Error) => finish(err));
    up.once('close', () => {
      if (finished) return;
      const code = up.rstCode ?? h2c.NGHTTP2_NO_ERROR;
      if (code !== h2c.NGHTTP2_NO_ERROR || !responseStarted) {
        finish(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `upstream stream closed with code ${code}`, { details: { phase: 'reset' } }));
      }
    });
    down.once('close', () => {
      if (finished) return;
      // Complete when the response went out whole (and the request was whole).
      if (responseStarted && down.rstCode === h2c.NGHTTP2_NO_ERROR && down.writableFinished) finish();
      else finish(new Error('downstream stream closed'), true);
    });
  }

  /** An upstream failure: a local reply before the response started, else this stream is reset. */
  #failed(down: ServerHttp2Stream, x: Exchange, grpc: boolean, err: unknown, responseStarted: boolean): void {
    this.#host.count('upstreamErrors');
    const failure = classifyH2Failure(err);
    const message = err instanceof Error ? err.message : String(err);
    x.verdict = 'Error';
    if (!responseStarted) {
      x.status = failure.reply.status;
      x.reason = `${failure.reply.body} (${message})`;
      x.responseNs = process.hrtime.bigint();
      localReply(down, failure.reply, grpc);
      this.#host.emit(responseFlow(x, this.#host.site(), failure.reply.status, [], 'ERROR'));
    } else {
      x.reason = `upstream failed after response started: ${message}`;
      if (!down.closed) down.close(h2c.NGHTTP2_INTERNAL_ERROR);
    }
    this.#host.log(x, failure);
  }

  /** GOAWAY to every client; streams in flight get `graceMs`, then everything is cut. */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    const sessions = [...this.#sessions.keys()];
    const closed = Promise.all(
      sessions.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            s.once('close', () => resolve());
            s.close();
          }),
      ),
    );
    let cut = false;
    const timer = setTimeout(() => {
      cut = true;
      for (const s of sessions) s.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
    await this.#upstreams.close(cut);
  }
}

/**
 * A local answer on one stream. For gRPC it is trailers-only (`grpc-status` from Envoy's mapping,
 * `grpc-message` the reply text); otherwise the text body of the HTTP/1.1 reply.
 */
function localReply(stream: ServerHttp2Stream, reply: LocalReply, grpc: boolean): void {
  if (stream.closed || stream.destroyed) return;
  if (stream.headersSent) {
    stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  // What the client still sends on this stream is read and discarded (flow control keeps it bounded).
  stream.resume();
  try {
    if (grpc && reply.status !== 307) {
      stream.respond(
        {
          ':status': reply.status,
          'content-type': 'application/grpc',
          'grpc-status': String(httpToGrpcStatus(reply.status)),
          'grpc-message': grpcMessage(reply.body.trim()),
          ...reply.headers,
        },
        { endStream: true },
      );
      return;
    }
    stream.respond({ ':status': reply.status, 'content-type': 'text/plain', 'content-length': Buffer.byteLength(reply.body), ...reply.headers }, { endStream: reply.body === '' });
    if (reply.body !== '') stream.end(reply.body);
  } catch {
    stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
  }
}
