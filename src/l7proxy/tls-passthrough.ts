/**
 * The TLS passthrough listener for `serverNames` rules without TLS termination (Cilium: Envoy's
 * tls_inspector + cilium/proxy's SNI check): the datapath redirects a port whose policy entry is a
 * `tls` redirect here. Nothing is terminated and no key is held.
 *
 *   accept (original destination, flow context: ./accept.ts, as the HTTP proxy)
 *     → read the ClientHello, bounded in bytes and time (./tls-client-hello.ts; fail closed)
 *     → decideL7(l7Flow, {kind: 'tls', sni}) — the one decision of the policy module
 *     → allowed: connectUpstream (source identity mark), write the bytes read, splice both ways
 *       (pipe: backpressure, half-close kept, an error on either side resets both)
 *     → denied, malformed, timed out: reset the connection
 *   one access-log line and one Hubble flow per connection (L7 `l7-request`: Hubble has no TLS
 *   record, so the summary names the SNI: `TLS ClientHello SNI api.github.com`).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { decideL7, type L7Decision } from '../policy/index.js';
import { EVENT_TYPE, type Flow, type FlowPolicy } from '../observe/index.js';
import { acceptConnection } from './accept.js';
import { ClientHelloReader, DEFAULT_MAX_CLIENT_HELLO_BYTES } from './tls-client-hello.js';
import type { ConnectionInfo, FlowContext, L7ProxyDeps } from './types.js';

/** What the TLS listener needs: the HTTP proxy's narrow dependencies. */
export type TlsPassthroughDeps = Pick<L7ProxyDeps, 'resolveConnection' | 'l7Flow' | 'connectUpstream' | 'originalDestination' | 'onFlow' | 'accessLog' | 'nodeName'>;

export interface TlsPassthroughOptions {
  /** Time allowed for the whole ClientHello to arrive, ms (Envoy's listener filter timeout: 15 s). */
  clientHelloTimeoutMs?: number;
  /** Bytes read at most before the ClientHello must be complete. Default 64 KiB. */
  maxClientHelloBytes?: number;
  /** Upstream connect timeout, ms. Default 10 s. */
  connectTimeoutMs?: number;
  /** Open connections at most (Cilium's Envoy: `global_downstream_max_connections` 50000). */
  maxConnections?: number;
  /**
   * Connections still sending their ClientHello at most (each may hold `maxClientHelloBytes`
   * for `clientHelloTimeoutMs`); beyond it a new connection is reset at once. Default 1024.
   */
  maxPendingHandshakes?: number;
}

export interface TlsPassthroughStats {
  /** Connections accepted and attributed to a source. */
  connections: number;
  /** Connections reset because `maxPendingHandshakes` were still sending their ClientHello. */
  overloaded: number;
  /** Connections spliced through (SNI allowed). */
  allowed: number;
  /** Connections reset by policy (SNI unlisted or missing). */
  denied: number;
  /** First bytes that were no well-formed ClientHello (or over the byte bound). */
  malformed: number;
  /** ClientHellos that did not arrive in time. */
  timeouts: number;
  /** Connections closed before a ClientHello: unknown source, or not redirected. */
  unknownSource: number;
  /** Upstream connect failures and errors while splicing. */
  upstreamErrors: number;
  /** Open connections (either phase). */
  active: number;
}

type Outcome = { verdict: 'Forwarded' | 'Denied' | 'Error'; sni: string | null; reason: string; decision: L7Decision | null };

/** Transparent TLS listener: SNI check on the ClientHello, then a byte-for-byte splice. */
export class TlsPassthrough {
  readonly #deps: TlsPassthroughDeps;
  readonly #helloTimeout: number;
  readonly #maxHello: number;
  readonly #connectTimeout: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly stats: TlsPassthroughStats = { connections: 0, allowed: 0, denied: 0, malformed: 0, timeouts: 0, unknownSource: 0, upstreamErrors: 0, overloaded: 0, active: 0 };
  #port = 0;
  readonly #maxPending: number;
  #pending = 0;

  constructor(deps: TlsPassthroughDeps, options: TlsPassthroughOptions = {}) {
    this.#deps = deps;
    this.#helloTimeout = options.clientHelloTimeoutMs ?? 15_000;
    this.#maxHello = options.maxClientHelloBytes ?? DEFAULT_MAX_CLIENT_HELLO_BYTES;
    this.#connectTimeout = options.connectTimeoutMs ?? 10_000;
    this.#maxPending = options.maxPendingHandshakes ?? 1024;
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => this.#onConnection(s));
    this.#server.maxConnections = options.maxConnections ?? 50_000;
  }

  /** Listens on `port` (loopback tests) or an fd (the agent's transparent socket). Resolves the bound port. */
  async listen(opts: { port: number; host?: string } | { fd: number }): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(opts, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const a = this.#server.address();
    this.#port = typeof a === 'object' && a ? a.port : 0;
    return this.#port;
  }

  /** Stops accepting and resets every open connection. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
  }

  #onConnection(client: Socket): void {
    this.#track(client);
    client.on('error', () => client.destroy());
    const accepted = acceptConnection(client, this.#deps, (c) => this.#port !== 0 && c.dstPort === this.#port && isLocal(c.dstIp));
    if (!accepted.ok) {
      this.stats.unknownSource++;
      this.#deps.accessLog.warn({ type: 'tls', reason: accepted.reason, source: accepted.conn ? `${accepted.conn.srcIp}:${accepted.conn.srcPort}` : null }, 'TLS connection closed before its ClientHello');
      reset(client);
      return;
    }
    const { conn, ctx } = accepted;
    if (this.#pending >= this.#maxPending) {
      // Bounded memory whatever clients do: a flood of slow handshakes cannot queue more.
      this.stats.overloaded++;
      reset(client);
      return;
    }
    this.#pending++;
    this.stats.connections++;
    this.stats.active++;
    client.once('close', () => this.stats.active--);
    const startedAt = new Date();
    const reader = new ClientHelloReader(this.#maxHello);
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      this.#pending--;
      clearTimeout(timer);
      client.off('data', onData);
      client.off('end', onEnd);
      client.pause();
      return true;
    };
    const timer = setTimeout(() => {
      if (!settle()) return;
      this.stats.timeouts++;
      this.#refuse(client, conn, ctx, startedAt, { verdict: 'Denied', sni: null, reason: `no complete ClientHello within ${this.#helloTimeout} ms`, decision: null });
    }, this.#helloTimeout);
    const onEnd = (): void => {
      if (!settle()) return;
      this.stats.malformed++;
      this.#refuse(client, conn, ctx, startedAt, { verdict: 'Denied', sni: null, reason: 'connection ended before a complete ClientHello', decision: null });
    };
    const onData = (chunk: Buffer): void => {
      const st = reader.push(chunk);
      if (st.status === 'incomplete') return;
      if (!settle()) return;
      if (st.status === 'error') {
        this.stats.malformed++;
        this.#refuse(client, conn, ctx, startedAt, { verdict: 'Denied', sni: null, reason: `malformed ClientHello: ${st.error}`, decision: null });
        return;
      }
      let decision: L7Decision;
      try {
        decision = decideL7(this.#deps.l7Flow(ctx, conn), { kind: 'tls', sni: st.sni });
      } catch (err) {
        this.stats.denied++;
        this.#refuse(client, conn, ctx, startedAt, { verdict: 'Denied', sni: st.sni, reason: `policy state unavailable: ${(err as Error).message}`, decision: null });
        return;
      }
      if (!decision.allowed) {
        this.stats.denied++;
        this.#refuse(client, conn, ctx, startedAt, { verdict: 'Denied', sni: st.sni, reason: decision.reason, decision });
        return;
      }
      this.#forward(client, conn, ctx, startedAt, reader.buffered, { verdict: 'Forwarded', sni: st.sni, reason: decision.reason, decision });
    };
    client.on('data', onData);
    client.on('end', onEnd);
    // Reset by the client before its ClientHello: no longer pending.
    client.once('close', () => void settle());
  }

  #refuse(client: Socket, conn: ConnectionInfo, ctx: FlowContext, startedAt: Date, o: Outcome): void {
    this.#record(conn, ctx, startedAt, o);
    reset(client);
  }

  #forward(client: Socket, conn: ConnectionInfo, ctx: FlowContext, startedAt: Date, hello: Buffer, o: Outcome): void {
    let upstream: Socket;
    try {
      upstream = this.#deps.connectUpstream(ctx, conn);
    } catch (err) {
      this.stats.upstreamErrors++;
      this.#record(conn, ctx, startedAt, { ...o, verdict: 'Error', reason: `upstream connect failed: ${(err as Error).message}` });
      reset(client);
      return;
    }
    this.#track(upstream);
    // Each direction ends on its own: a client's FIN must not end the server's answer.
    upstream.allowHalfOpen = true;
    const connectTimer = setTimeout(() => upstream.destroy(new Error(`upstream connect timed out after ${this.#connectTimeout} ms`)), this.#connectTimeout);
    let connected = false;
    let failed = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      clearTimeout(connectTimer);
      if (!connected) {
        this.stats.upstreamErrors++;
        this.#record(conn, ctx, startedAt, { ...o, verdict: 'Error', reason: `upstream connect failed: ${err.message}` });
      } else {
        this.stats.upstreamErrors++;
        this.#deps.accessLog.warn({ type: 'tls', sni: o.sni, error: err.message }, 'TLS passthrough connection failed');
      }
      reset(client);
      reset(upstream);
    };
    upstream.on('error', fail);
    client.on('error', fail);
    upstream.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      this.stats.allowed++;
      this.#record(conn, ctx, startedAt, o);
      upstream.write(hello);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }

  #record(conn: ConnectionInfo, ctx: FlowContext, startedAt: Date, o: Outcome): void {
    const policies = o.decision?.policies ?? [];
    const entry: Record<string, unknown> = {
      type: 'tls',
      verdict: o.verdict,
      sni: o.sni,
      reason: o.reason,
      direction: ctx.direction,
      latency_ms: Date.now() - startedAt.getTime(),
      source: endpointEntry(ctx.source, ctx.srcIdentity, conn.srcIp, conn.srcPort),
      destination: endpointEntry(ctx.destination, ctx.dstIdentity, conn.dstIp, conn.dstPort),
      policies,
      request_time: startedAt.toISOString(),
    };
    this.#deps.accessLog.info(entry);
    try {
      this.#deps.onFlow(tlsFlow(conn, ctx, o, policies, this.#deps.nodeName ?? '', this.#port, startedAt));
    } catch (err) {
      this.#deps.accessLog.warn({ err }, 'TLS flow not recorded');
    }
  }
}

function isLocal(ip: string): boolean {
  return ip === '127.0.0.1' || ip === '::1';
}

/** RST rather than FIN: a refused TLS connection fails at once in the client, as Envoy's reset does. */
function reset(s: Socket): void {
  if (s.destroyed) return;
  if (typeof s.resetAndDestroy === 'function' && s.readyState !== 'opening') s.resetAndDestroy();
  else s.destroy();
}

function endpointEntry(ep: FlowContext['source'], identity: number, ip: string, port: number): Record<string, unknown> {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { namespace: ep.namespace, pod: ep.pod_name, identity, address: `${host}:${port}` };
}

/** `TLS ClientHello SNI api.github.com`, `TLS ClientHello without SNI`, or why none was read. */
export function tlsSummary(sni: string | null, reason: string, verdict: Outcome['verdict']): string {
  if (sni !== null) return `TLS ClientHello SNI ${sni}`;
  if (verdict !== 'Forwarded' && (reason.startsWith('malformed') || reason.startsWith('no complete') || reason.startsWith('connection ended'))) return `TLS ${reason}`;
  return 'TLS ClientHello without SNI';
}

/** The connection's Hubble flow: an L7 request record without a protocol record (Hubble prints `l7-request`). */
export function tlsFlow(conn: ConnectionInfo, ctx: FlowContext, o: Outcome, policies: readonly string[], nodeName: string, proxyPort: number, time: Date): Flow {
  const verdict = o.verdict === 'Forwarded' ? 'FORWARDED' : o.verdict === 'Denied' ? 'DROPPED' : 'ERROR';
  const flow: Flow = {
    time: time.toISOString(),
    uuid: randomUUID(),
    verdict,
    IP: { ipVersion: conn.srcIp.includes(':') ? 'IPv6' : 'IPv4', source: conn.srcIp, destination: conn.dstIp },
    l4: { TCP: { source_port: conn.srcPort, destination_port: conn.dstPort } },
    source: ctx.source,
    destination: ctx.destination,
    Type: 'L7',
    l7: { type: 'REQUEST' },
    traffic_direction: ctx.direction,
    is_reply: false,
    event_type: { type: EVENT_TYPE.ACCESS_LOG },
    Summary: tlsSummary(o.sni, o.reason, o.verdict),
    node_name: nodeName,
  };
  if (proxyPort) flow.proxy_port = proxyPort;
  const fp: FlowPolicy[] = policies.map((p) => {
    const i = p.indexOf('/');
    return i < 0 ? { name: p } : { name: p.slice(i + 1), namespace: p.slice(0, i) };
  });
  if (fp.length > 0) flow[`${ctx.direction === 'INGRESS' ? 'ingress' : 'egress'}_${verdict === 'FORWARDED' ? 'allowed' : 'denied'}_by`] = fp;
  return flow;
}
