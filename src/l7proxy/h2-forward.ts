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
  session: ClientHttp2Session;
  streams: number;
  lastUsed: number;
}

export interface H2Lease {
  session: ClientHttp2Session;
  release(): void;
}

function authorityOf(conn: Pick<ConnectionInfo, 'dstIp' | 'dstPort'>): string {
  const host = conn.dstIp.includes(':') ? `[${conn.dstIp}]` : conn.dstIp;
  return `http://${host}:${conn.dstPort}`;
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
   * MEMBRANE_ERR_PROXY_UPSTREAM (phase `local`) when closing, (phase `connect`) when the socket
   * factory throws. Connect errors after that arrive on the streams (see `classifyH2Failure`).
   */
  acquire(ctx: FlowContext, conn: ConnectionInfo): H2Lease {
    if (this.#closed) throw membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', 'proxy is closing', { details: { phase: 'local' } });
    const key = poolKey(ctx, conn, this.#opts.bySourceAddress);
    let entry = this.#sessions.get(key);
    if (entry && (entry.session.closed || entry.session.destroyed)) {
      this.#sessions.delete(key);
      entry = undefined;
    }
    if (!entry) {
      entry = { session: this.#open(key, ctx, conn), streams: 0, lastUsed: Date.now() };
      this.#sessions.set(key, entry);
    }
    const e = entry;
    e.streams++;
    e.lastUsed = Date.now();
    let released = false;
    return {
      session: e.session,
      release: () => {
        if (released) return;
        released = true;
        e.streams--;
        e.lastUsed = Date.now();
      },
    };
  }

  #open(key: string, ctx: FlowContext, conn: ConnectionInfo): ClientHttp2Session {
    let socket: ReturnType<L7ProxyDeps['connectUpstream']>;
    try {
      socket = this.#connect(ctx, conn);
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connect to ${authorityOf(conn)} failed: connectUpstream threw: ${(err as Error)?.message ?? String(err)}`, {
        cause: err,
        details: { phase: 'connect', timeout: false },
      });
    }
    socket.setNoDelay(true);
    const options: SecureClientSessionOptions = {
      createConnection: () => socket,
      maxSessionMemory: this.#opts.maxSessionMemoryMiB,
      maxHeaderListPairs: 256,
      settings: { enablePush: false, maxHeaderListSize: this.#opts.maxHeaderListSize },
    };
    const session = http2Connect(authorityOf(conn), options);
    const forget = (): void => {
      if (this.#sessions.get(key)?.session === session) this.#sessions.delete(key);
    };
    // A connect that does not complete in time fails every stream waiting on it (UF).
    const timer = setTimeout(() => {
      forget();
      session.destroy(membraneError('MEMBRANE_ERR_PROXY_UPSTREAM', `connect to ${authorityOf(conn)} failed: timed out after ${this.#opts.connectTimeoutMs} ms`, { details: { phase: 'connect', timeout: true } }));
    }, this.#opts.connectTimeoutMs);
    timer.unref();
    session.once('connect', () => clearTimeout(timer));
    // The streams on the session carry the error to their clients (h2.ts classifies it).
    session.on('error', () => {
      clearTimeout(timer);
      forget();
    });
    session.once('goaway', forget);
    session.once('close', () => {
      clearTimeout(timer);
      forget();
    });
    return session;
  }

  /** Closes sessions with no stream for `idleMs`. */
  sweep(now = Date.now()): void {
    for (const [key, e] of this.#sessions) {
      if (e.streams === 0 && now - e.lastUsed >= this.#opts.idleMs) {
        this.#sessions.delete(key);
        e.session.close();
      }
    }
  }

  /** Graceful (GOAWAY, streams finish) or immediate. */
  async close(immediate = false): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    const sessions = [...this.#sessions.values()].map((e) => e.session);
    this.#sessions.clear();
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
