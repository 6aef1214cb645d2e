/**
 * HTTP/1.1 Upgrade (WebSocket and other protocols) through the proxy. The upgrade request is
 * parsed and judged like any request (parse.ts, `evaluatePolicy`); denied → 403 "Access denied"
 * and the connection closes. Allowed → sent to the original destination on a connection of its
 * own (`deps.connectUpstream`, never pooled); when the upstream answers 101 the status and its
 * fields are relayed and the two sockets are spliced both ways: the bytes that follow are not
 * HTTP and are not judged further, as in Cilium (Envoy's `upgrade_configs`). A non-101 answer is
 * relayed as a normal response and the connection closes.
 *
 * `h2c` is never offered upstream: an upgraded HTTP/2 connection would carry further requests
 * past the policy. A request whose only upgrade is h2c is forwarded as plain HTTP/1.1 (the
 * Upgrade, Connection and HTTP2-Settings fields removed), as before this file existed.
 */

import { request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { membraneError } from '../errors/index.js';
import { classifyUpstreamFailure, type UpstreamFailure } from './forward.js';
import type { H2Host } from './h2.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { BAD_REQUEST, DENIED, GATEWAY_TIMEOUT, pathRedirect, type LocalReply } from './local-reply.js';
import { requestFlow, responseFlow, type Exchange } from './log.js';
import { parseRequest, rawHeadersToSend, type ParsedRequest } from './parse.js';
import { evaluatePolicy } from './policy.js';
import { channels } from './diagnostics.js';
import type { ConnectionInfo, FlowContext } from './types.js';

/** Upgrade tokens never offered upstream (see the file comment). */
const NEVER_UPGRADE = new Set(['h2c']);

/** The `Upgrade` protocols of a request, minus those never offered upstream. */
export function offeredUpgrades(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'upgrade') continue;
    for (const t of (raw[i + 1] as string).split(',')) {
      const token = t.trim();
      if (token !== '' && !NEVER_UPGRADE.has(token.toLowerCase().split('/')[0] as string)) out.push(token);
    }
  }
  return out;
}

/** The protocols a 101 switches to (its Upgrade field), as sent. */
function upgradeTokens(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'upgrade') continue;
    for (const t of (raw[i + 1] as string).split(',')) if (t.trim() !== '') out.push(t.trim());
  }
  return out;
}

/** A complete HTTP/1.1 reply that closes the connection (the socket is no longer Node's to frame). */
export function closingReply(reply: LocalReply): string {
  const fields = Object.entries(reply.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? 'Error'}\r\n${fields}content-type: text/plain\r\ncontent-length: ${Buffer.byteLength(reply.body)}\r\nconnection: close\r\n\r\n${reply.body}`;
}

function headOf(status: number, message: string | undefined, flat: readonly string[]): string {
  let out = `HTTP/1.1 ${status} ${message || STATUS_CODES[status] || ''}\r\n`;
  for (let i = 0; i + 1 < flat.length; i += 2) out += `${flat[i]}: ${flat[i + 1]}\r\n`;
  return `${out}\r\n`;
}

export class UpgradeRelay {
  #host: H2Host;
  #open = new Set<Socket>();

  constructor(host: H2Host) {
    this.#host = host;
  }

  /** Spliced or in-flight upgrade connections (downstream sockets). */
  get size(): number {
    return this.#open.size;
  }

  /** Handles Node's `upgrade` event for a connection accepted as `conn`/`ctx`. */
  handle(req: IncomingMessage, socket: Socket, head: Buffer, conn: ConnectionInfo, ctx: FlowContext): void {
    const host = this.#host;
    host.count('requests');
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
    socket.on('error', () => socket.destroy());
    const startedAt = new Date();
    const startNs = process.hrtime.bigint();
    const source = { address: `${conn.srcIp}:${conn.srcPort}`, identity: ctx.srcIdentity };
    const parsed = parseRequest(req, conn, { maxHeadersCount: host.options.maxHeadersCount, normalizePath: host.options.normalizePath });
    if (!parsed.ok) {
      if (parsed.status === 307) {
        socket.end(closingReply(pathRedirect(parsed.location)));
        host.deps.accessLog.info({ type: 'http', verdict: 'Redirected', status: 307, reason: parsed.reason, method: parsed.method, original_path: parsed.path, location: parsed.location, source }, 'http');
        return;
      }
      this.#malformed(socket, req, source, parsed.reason);
      return;
    }
    const request = parsed.request;
    if (request.hasBody && request.contentLength === null) {
      this.#malformed(socket, req, source, 'chunked body on an Upgrade request');
      return;
    }
    const x: Exchange = { conn, ctx, request, decision: { allowed: false }, startedAt, startNs };
    x.decision = evaluatePolicy(host.deps.l7Flow.bind(host.deps), ctx, conn, request);
    // Before the flow: a tracer (trace.ts) sets the trace context the flow carries.
    if (channels.request.hasSubscribers) channels.request.publish({ exchange: x });
    host.emit(requestFlow(x, host.site()));
    if (!x.decision.allowed) {
      host.count('denied');
      x.verdict = 'Denied';
      x.status = DENIED.status;
      if (x.decision.reason !== undefined) x.reason = x.decision.reason;
      socket.end(closingReply(DENIED));
      x.responseNs = process.hrtime.bigint();
      host.emit(responseFlow(x, host.site(), DENIED.status, [], 'FORWARDED'));
      host.log(x);
      return;
    }
    this.#forward(req, socket, head, x);
  }

  #malformed(socket: Socket, req: IncomingMessage, source: Record<string, unknown>, reason: string): void {
    this.#host.count('malformed');
    socket.end(closingReply(BAD_REQUEST));
    this.#host.deps.accessLog.warn({ type: 'http', verdict: 'Error', status: 400, reason, method: req.method, source }, 'http');
  }

  #forward(req: IncomingMessage, socket: Socket, head: Buffer, x: Exchange): void {
    const host = this.#host;
    const request: ParsedRequest = x.request;
    const offered = offeredUpgrades(request.rawHeaders);
    const raw = rawHeadersToSend(request, req.headers.host);
    const headers = upstreamRequestHeaders(raw);
    if (offered.length > 0) headers.push('Connection', 'Upgrade', 'Upgrade', offered.join(', '));
    else headers.push('Connection', 'close');

    let upstream: Socket;
    try {
      upstream = host.deps.connectUpstream(x.ctx, x.conn);
    } catch (err) {
      this.#fail(socket, x, membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connectUpstream threw: ${(err as Error)?.message ?? String(err)}`, { cause: err, details: { phase: 'connect', timeout: false } }));
      return;
    }
    let connected = !upstream.connecting && upstream.remoteAddress !== undefined;
    upstream.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
    });
    const connectTimer = setTimeout(() => {
      if (!connected) up.destroy(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connect timed out after ${host.options.connectTimeoutMs} ms`, { details: { phase: 'connect', timeout: true } }));
    }, host.options.connectTimeoutMs);
    connectTimer.unref();
    let settled = false;
    const ms = host.options.httpRequestTimeoutMs;
    const routeTimer =
      ms > 0
        ? setTimeout(() => {
            if (!settled) up.destroy(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `upstream request timeout after ${ms} ms`, { details: { phase: 'timeout' } }));
          }, ms)
        : null;
    routeTimer?.unref();
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(connectTimer);
      if (routeTimer) clearTimeout(routeTimer);
      return true;
    };

    const up = httpRequest({ createConnection: () => upstream, method: request.method, path: request.path, headers, setHost: false });
    socket.once('close', () => {
      if (settle()) {
        x.verdict = 'Error';
        x.status = 0;
        x.reason = 'downstream connection closed';
        host.log(x);
      }
      up.destroy();
      upstream.destroy();
    });

    // The request body (declared length only) comes from `head`, then the socket; bytes after it
    // belong to the upgraded protocol and go upstream after the 101.
    let rest = head;
    let bodyReader: ((chunk: Buffer) => void) | null = null;
    const length = request.contentLength ?? 0;
    if (length === 0) up.end();
    else {
      let remaining = length;
      const take = (chunk: Buffer): Buffer => {
        const n = Math.min(remaining, chunk.length);
        if (n > 0) up.write(chunk.subarray(0, n));
        remaining -= n;
        if (remaining === 0) up.end();
        return chunk.subarray(n);
      };
      rest = take(head);
      if (remaining > 0) {
        const onData = (chunk: Buffer): void => {
          const extra = take(chunk);
          if (remaining === 0) {
            socket.off('data', onData);
            socket.pause();
            if (extra.length > 0) socket.unshift(extra);
          }
        };
        bodyReader = onData;
        socket.on('data', onData);
      }
    }

    up.on('upgrade', (res: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
      if (!settle()) return upSocket.destroy();
      // A body still being read would otherwise reach the upstream twice: by the request and by the splice.
      if (bodyReader) socket.off('data', bodyReader);
      // Only a switch to a protocol the client asked for is spliced: a 101 nobody offered (or
      // to another protocol) would carry bytes no policy ever judged.
      const chosen = upgradeTokens(res.rawHeaders);
      if (offered.length === 0 || chosen.length !== 1 || !offered.some((o) => o.toLowerCase() === chosen[0]!.toLowerCase())) {
        upSocket.destroy();
        this.#fail(
          socket,
          x,
          membraneError('MEMBRANE_ERR_PROXY_RESPONSE', `101 to ${chosen.join(', ') || '(no Upgrade)'} was not offered (${offered.join(', ') || 'no upgrade offered'})`),
        );
        return;
      }
      host.count('forwarded');
      x.verdict = 'Forwarded';
      x.status = 101;
      x.responseNs = process.hrtime.bigint();
      host.emit(responseFlow(x, host.site(), 101, res.rawHeaders, 'FORWARDED'));
      host.log(x);
      socket.write(headOf(101, res.statusMessage, res.rawHeaders));
      if (upHead.length > 0) socket.write(upHead);
      if (rest.length > 0) upSocket.write(rest);
      splice(socket, upSocket);
    });
    up.on('response', (res: IncomingMessage) => {
      if (!settle()) return res.destroy();
      const status = res.statusCode ?? 0;
      host.count('forwarded');
      x.verdict = 'Forwarded';
      x.status = status;
      x.responseNs = process.hrtime.bigint();
      host.emit(responseFlow(x, host.site(), status, res.rawHeaders, 'FORWARDED'));
      const fields = downstreamResponseHeaders(res.rawHeaders);
      fields.push('connection', 'close');
      socket.write(headOf(status, res.statusMessage, fields));
      res.pipe(socket);
      res.once('end', () => host.log(x));
      res.once('error', () => socket.destroy());
    });
    up.on('error', (err: Error) => {
      if (!settle()) {
        socket.destroy();
        return;
      }
      const e = !connected && !(err as { details?: unknown }).details
        ? membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', (err as NodeJS.ErrnoException).code ?? err.message, { cause: err, details: { phase: 'connect', timeout: false } })
        : err;
      this.#fail(socket, x, e);
    });
  }

  #fail(socket: Socket, x: Exchange, err: Error): void {
    const host = this.#host;
    host.count('upstreamErrors');
    const failure: UpstreamFailure = classifyUpstreamFailure(err);
    const reply = failure.kind === 'timeout' ? GATEWAY_TIMEOUT : failure.reply;
    x.verdict = 'Error';
    x.status = reply.status;
    x.reason = `${reply.body} (${err.message})`;
    x.responseNs = process.hrtime.bigint();
    if (socket.writable) socket.end(closingReply(reply));
    host.emit(responseFlow(x, host.site(), reply.status, [], 'ERROR'));
    host.log(x, failure);
  }

  /** Upgraded connections cannot be finished gracefully: they are cut. */
  close(): void {
    for (const s of this.#open) s.destroy();
    this.#open.clear();
  }
}

/** Both directions, with back-pressure; either side closing or failing ends both. */
function splice(a: Socket, b: Socket): void {
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end);
  b.on('error', end);
  a.once('close', end);
  b.once('close', end);
  a.pipe(b);
  b.pipe(a);
  a.resume();
}
