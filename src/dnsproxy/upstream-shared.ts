/**
 * Stage 3, forward over UDP with shared sockets: the queries of one client socket to one server
 * share one marked upstream socket, matched to their answers by ID and question, as Cilium's DNS
 * proxy shares a connection per client address and server (`pkg/fqdn/dnsproxy` SharedClient).
 * A socket per query cost a socket, SO_MARK, connect and close per query and a new conntrack
 * entry (and policy-verdict event) in the datapath; a client that reuses its socket (most
 * resolvers' long-lived sockets, dnsperf) now pays that once.
 *
 * Same guarantees as `exchangeUdp`: an answer is accepted only with the query's ID and question;
 * a datagram that matches no query in flight is ignored (`onStray`) and the waits go on. Source
 * port entropy is the client's own: a client with a fresh port per query gets a socket per query.
 * A second query in flight with the same ID from the same client, or more than `maxSockets`
 * shared sockets, falls back to a socket of its own. A socket idle for `idleMs` is closed; an
 * error on it (ICMP port unreachable) fails every query in flight on it and closes it.
 */
import { DnsWireError, parseMessage, type Message } from './wire.js';
import { answerMismatch, exchangeUdp, type ExchangeResult, type ExpectedAnswer } from './upstream.js';
import type { DnsUpstream, HostPort, UpstreamUdpSocket } from './types.js';

interface Waiter {
  readonly expect: ExpectedAnswer;
  readonly onMismatch: (reason: string) => void;
  finish(r: ExchangeResult): void;
}

interface Shared {
  readonly key: string;
  socket: UpstreamUdpSocket | null;
  readonly waiters: Map<number, Waiter>;
  idle: NodeJS.Timeout | null;
}

export interface SharedUdpOptions {
  /** Shared sockets at most (beyond: a socket per query). */
  readonly maxSockets: number;
  /** A shared socket without a query in flight this long is closed, ms. */
  readonly idleMs: number;
  /** A datagram no query in flight on its socket matches (its reason). */
  readonly onStray: (reason: string) => void;
}

export class SharedUdpExchanges {
  readonly #upstream: DnsUpstream;
  readonly #o: SharedUdpOptions;
  readonly #sockets = new Map<string, Shared>();
  #closed = false;

  constructor(upstream: DnsUpstream, options: SharedUdpOptions) {
    this.#upstream = upstream;
    this.#o = options;
  }

  /** Shared sockets open now. */
  get size(): number {
    return this.#sockets.size;
  }

  /** One exchange for `client`'s query (as `exchangeUdp`, which it falls back to). */
  exchange(
    client: HostPort,
    server: HostPort,
    identity: number,
    query: Uint8Array,
    expect: ExpectedAnswer,
    timeoutMs: number,
    onMismatch: (reason: string) => void,
  ): Promise<ExchangeResult> {
    const key = `${identity} ${client.ip}:${client.port} ${server.ip}:${server.port}`;
    let s = this.#sockets.get(key);
    if (this.#closed || (s ? s.waiters.has(expect.id) : this.#sockets.size >= this.#o.maxSockets)) {
      return exchangeUdp(this.#upstream, server, identity, query, expect, timeoutMs, onMismatch);
    }
    if (!s) {
      const created: Shared = { key, socket: null, waiters: new Map(), idle: null };
      try {
        created.socket = this.#upstream.udp(server, identity, (data) => this.#onMessage(created, data), (err) => this.#fail(created, err));
      } catch (err) {
        return Promise.resolve({ ok: false, kind: 'error', error: err instanceof Error ? err : new Error(String(err)) });
      }
      s = created;
      this.#sockets.set(key, s);
    }
    const shared = s;
    if (shared.idle) {
      clearTimeout(shared.idle);
      shared.idle = null;
    }
    return new Promise<ExchangeResult>((resolve) => {
      const timer = setTimeout(
        () => waiter.finish({ ok: false, kind: 'timeout', error: Object.assign(new Error(`no answer from ${server.ip}:${server.port} within ${timeoutMs} ms`), { name: 'UpstreamTimeout' }) }),
        timeoutMs,
      );
      const waiter: Waiter = {
        expect,
        onMismatch,
        finish: (r) => {
          if (shared.waiters.get(expect.id) !== waiter) return;
          clearTimeout(timer);
          shared.waiters.delete(expect.id);
          if (shared.waiters.size === 0 && shared.socket && this.#sockets.get(shared.key) === shared) {
            shared.idle = setTimeout(() => this.#drop(shared), this.#o.idleMs);
            shared.idle.unref();
          }
          resolve(r);
        },
      };
      shared.waiters.set(expect.id, waiter);
      const failed = (err: unknown): void => waiter.finish({ ok: false, kind: 'error', error: err instanceof Error ? err : new Error(String(err)) });
      try {
        shared.socket!.send(query, failed);
      } catch (err) {
        failed(err);
      }
    });
  }

  /** Closes every shared socket; queries still in flight on them fail. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#sockets.values()]) this.#fail(s, new Error('DNS proxy closed'));
  }

  #onMessage(s: Shared, data: Buffer): void {
    let message: Message;
    try {
      message = parseMessage(data);
    } catch (err) {
      this.#o.onStray(`malformed answer: ${err instanceof DnsWireError ? err.message : String(err)}`);
      return;
    }
    const waiter = s.waiters.get(message.header.id);
    if (!waiter) {
      this.#o.onStray(`answer with ID ${message.header.id}: no query in flight with it`);
      return;
    }
    const why = answerMismatch(message, waiter.expect);
    if (why === null) waiter.finish({ ok: true, response: data, message });
    else waiter.onMismatch(`answer does not match the query: ${why}`);
  }

  #fail(s: Shared, error: Error): void {
    this.#drop(s);
    for (const w of [...s.waiters.values()]) w.finish({ ok: false, kind: 'error', error });
  }

  #drop(s: Shared): void {
    if (s.idle) clearTimeout(s.idle);
    s.idle = null;
    if (this.#sockets.get(s.key) === s) this.#sockets.delete(s.key);
    s.socket?.close();
    s.socket = null;
  }
}
