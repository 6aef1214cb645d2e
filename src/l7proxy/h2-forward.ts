/**
 * HTTP/2 upstream sessions: one `ClientHttp2Session` per (source identity, destination ip, port),
 * reused by every allowed stream of that key, as `UpstreamPools` does for HTTP/1.1. The session's
 * socket comes from `deps.connectUpstream` (marked with the source identity), so a session opened
 * for one identity never carries another identity's stream.
 *
 * A session that fails, is told GOAWAY or closes leaves the map at once; the next stream opens a
 * new one. Sessions with no stream for `idleMs` are closed.
 */

import { connect as http2Connect, type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';
import { membraneError } from '../errors/index.js';
import { poolKey } from './forward.js';
import type { ConnectionInfo, FlowContext, L7ProxyDeps } from './types.js';

export interface H2UpstreamOptions {
  bySourceAddress: boolean;
  connectTimeoutMs: number;
  idleMs: number;
  /** Node's `maxSessionMemory` (MiB) for each upstream session. */
  maxSessionMemoryMiB: number;
  /** Largest header list the proxy accepts from an upstream (bytes). */
  maxHeaderListSize: number;
}

interface Entry {
  /** Settles once the socket connected and the session was set up on it. */
  ready: Promise<ClientHttp2Session>;
  session: ClientHttp2Session | null;
  dead: boolean;
  streams: number;
  lastUsed: number;
}

export interface H2Lease {
  /** The session, once connected; rejects with MEMBRANE_ERR_PROXY_UPSTREAM (phase `connect`). */
  ready: Promise<ClientHttp2Session>;
  release(): void;
}

function authorityOf(conn: Pick<ConnectionInfo, 'dstIp' | 'dstPort'>): string {
  const host = conn.dstIp.includes(':') ? `[${conn.dstIp}]` : conn.dstIp;
  return `http://${host}:${conn.dstPort}`;
}

function connectFailed(conn: ConnectionInfo, detail: string, cause: unknown, timeout = false): Error {
  return membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connect to ${authorityOf(conn)} failed: ${detail}`, { cause, details: { phase: 'connect', timeout } });
}

export class H2Upstreams {
  #connect: L7ProxyDeps['connectUpstream'];
  #opts: H2UpstreamOptions;
  #sessions = new Map<string, Entry>();
  #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(connect: L7ProxyDeps['connectUpstream'], opts: H2UpstreamOptions) {
    this.#connect = connect;
    this.#opts = opts;
    this.#sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.floor(opts.idleMs / 2)));
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * The session for this identity and destination, opened on first use. Throws
   * MEMBRANE_ERR_PROXY_UPSTREAM (phase `local`) when closing; connect failures reject `ready`.
   */
  acquire(ctx: FlowContext, conn: ConnectionInfo): H2Lease {
    if (this.#closed) throw membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', 'proxy is closing', { details: { phase: 'local' } });
    const key = poolKey(ctx, conn, this.#opts.bySourceAddress);
    let entry = this.#sessions.get(key);
    if (entry && (entry.dead || (entry.session !== null && (entry.session.closed || entry.session.destroyed)))) {
      this.#sessions.delete(key);
      entry = undefined;
    }
    if (!entry) {
      entry = this.#open(key, ctx, conn);
      this.#sessions.set(key, entry);
    }
    const e = entry;
    e.streams++;
    e.lastUsed = Date.now();
    let released = false;
    return {
      ready: e.ready,
      release: () => {
        if (released) return;
        released = true;
        e.streams--;
        e.lastUsed = Date.now();
      },
    };
  }

  /**
   * Connects first, then sets the session up: Node's http2 client consumes the socket's handle at
   * 'connect', and bytes the socket read before that (the server's SETTINGS, which a server sends
   * at once) would be lost to the session; on a connected socket Node feeds them in first.
   */
  #open(key: string, ctx: FlowContext, conn: ConnectionInfo): Entry {
    const entry: Entry = { ready: Promise.resolve(null as unknown as ClientHttp2Session), session: null, dead: false, streams: 0, lastUsed: Date.now() };
    const forget = (): void => {
      entry.dead = true;
      if (this.#sessions.get(key) === entry) this.#sessions.delete(key);
    };
    entry.ready = new Promise<ClientHttp2Session>((resolve, reject) => {
      let socket: ReturnType<L7ProxyDeps['connectUpstream']>;
      try {
        socket = this.#connect(ctx, conn);
      } catch (err) {
        forget();
        reject(connectFailed(conn, `connectUpstream threw: ${(err as Error)?.message ?? String(err)}`, err));
        return;
      }
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        forget();
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(connectFailed(conn, `timed out after ${this.#opts.connectTimeoutMs} ms`, undefined, true)), this.#opts.connectTimeoutMs);
      timer.unref();
      const onError = (err: NodeJS.ErrnoException): void => fail(connectFailed(conn, err.code ?? err.message, err));
      const onConnect = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        const options: SecureClientSessionOptions = {
          createConnection: () => socket,
          maxSessionMemory: this.#opts.maxSessionMemoryMiB,
          maxHeaderListPairs: 256,
          settings: { enablePush: false, maxHeaderListSize: this.#opts.maxHeaderListSize },
        };
        const session = http2Connect(authorityOf(conn), options);
        entry.session = session;
        // The streams on the session carry its errors to their clients (h2.ts classifies them).
        session.on('error', forget);
        session.once('goaway', forget);
        session.once('close', forget);
        resolve(session);
      };
      socket.once('error', onError);
      if (socket.destroyed) fail(connectFailed(conn, 'upstream socket already destroyed', undefined));
      else if (!socket.connecting && socket.remoteAddress !== undefined) onConnect();
      else socket.once('connect', onConnect);
    });
    // A rejection is handled by each lease's user; this one only keeps Node from reporting it.
    entry.ready.catch(() => undefined);
    return entry;
  }

  /** Closes sessions with no stream for `idleMs`. */
  sweep(now = Date.now()): void {
    for (const [key, e] of this.#sessions) {
      if (e.streams === 0 && now - e.lastUsed >= this.#opts.idleMs) {
        this.#sessions.delete(key);
        e.dead = true;
        e.session?.close();
      }
    }
  }

  /** Graceful (GOAWAY, streams finish) or immediate. */
  async close(immediate = false): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    const entries = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const e of entries) e.dead = true;
    const sessions = entries.map((e) => e.session).filter((s): s is ClientHttp2Session => s !== null);
    await Promise.all(
      sessions.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            s.once('close', () => resolve());
            if (immediate) s.destroy();
            else s.close();
          }),
      ),
    );
  }
}
