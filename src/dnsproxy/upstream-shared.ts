/**
 * Stage 3, forward over UDP with shared sockets: the queries of one client socket to one server
 * share one marked upstream socket, matched to their answers by ID and question, as Cilium's DNS
 * proxy shares a connection per client address and server (`pkg/fqdn/dnsproxy` SharedClient).
 * A socket per query cost a socket, SO_MARK, connect and close per query and a new conntrack
 * entry (and policy-verdict event) in the datapath; a client that reuses its socket (most
 * resolvers' long-lived sockets, dnsperf) now pays that once.
 *
 * Same guarantees as `exchangeUdp`: an answer is accepted only with the query's ID and question;
 * a datagram with a query's ID that fails the strict parse or does not answer its question ends
 * that query at once (`bad-answer`); a datagram that matches no query in flight is ignored
 * (`onStray`) and the waits go on. Source
 * port entropy is the client's own: a client with a fresh port per query gets a socket per query.
 * A second query in flight with the same ID from the same client, or more than `maxSockets`
 * shared sockets, falls back to a socket of its own. A socket idle for `idleMs` is closed (by a
 * sweep every idleMs/4: within 1.25 × idleMs); an error on it (ICMP port unreachable) fails every
 * query in flight on it and closes it. The waits' timeouts share one timer (`Deadlines`).
 */
import { DnsWireError, parseMessage, peekHeader, type Message } from './wire.js';
import { answerMismatch, exchangeUdp, type ExchangeResult, type ExpectedAnswer } from './upstream.js';
import type { DnsUpstream, HostPort, UpstreamUdpSocket } from './types.js';

interface Waiter {
  readonly expect: ExpectedAnswer;
  readonly onMismatch: (reason: string) => void;
  /** When the wait ends without an answer, ms (performance.now: monotonic, so a wall-clock step neither holds nor expires waits). */
  readonly deadline: number;
  finish(r: ExchangeResult): void;
  expire(): void;
}

interface Shared {
  readonly key: string;
  /** `ip:port` of the server, for messages. */
  readonly server: string;
  socket: UpstreamUdpSocket | null;
  readonly waiters: Map<number, Waiter>;
  /** Since when no query has been in flight on it (performance.now ms), or null while one is. */
  idleSince: number | null;
}

/**
 * Every wait's deadline under one timer, armed for the earliest, instead of a setTimeout and a
 * clearTimeout per query. The waits of one timeout length end in the order they began, so each
 * length keeps its waits in a Set in insertion order and only its head is ever due first.
 */
class Deadlines {
  readonly #byTimeout = new Map<number, Set<Waiter>>();
  #timer: NodeJS.Timeout | null = null;
  #armedFor = Number.POSITIVE_INFINITY;

  add(w: Waiter, timeoutMs: number): void {
    let set = this.#byTimeout.get(timeoutMs);
    if (!set) {
      set = new Set();
      this.#byTimeout.set(timeoutMs, set);
    }
    set.add(w);
    if (w.deadline < this.#armedFor) this.#arm(w.deadline);
  }

  delete(w: Waiter, timeoutMs: number): void {
    this.#byTimeout.get(timeoutMs)?.delete(w);
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedFor = Number.POSITIVE_INFINITY;
    this.#byTimeout.clear();
  }

  #arm(at: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#armedFor = at;
    // Unreferenced: a wait keeps the loop alive through its socket, never through this timer.
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - performance.now())).unref();
  }

  #fire(): void {
    this.#timer = null;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [timeoutMs, set] of this.#byTimeout) {
      for (const w of set) {
        if (w.deadline > now) {
          next = Math.min(next, w.deadline);
          break;
        }
        set.delete(w);
        w.expire();
      }
      if (set.size === 0) this.#byTimeout.delete(timeoutMs);
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.#armedFor) this.#arm(next);
  }
}

export interface SharedUdpOptions {
  /** Shared sockets at most (beyond: a socket per query). */
  readonly maxSockets: number;
  /** A shared socket without a query in flight this long is closed, ms. */
  readonly idleMs: number;
  /** A datagram no query in flight on its socket matches (its reason). */
  readonly onStray: (reason: string) => void;
  /** Datagrams the kernel dropped on a socket (receive buffer full), as the socket reports them. */
  readonly onDrops?: (count: number) => void;
}

export class SharedUdpExchanges {
  readonly #upstream: DnsUpstream;
  readonly #o: SharedUdpOptions;
  readonly #sockets = new Map<string, Shared>();
  readonly #deadlines = new Deadlines();
  /** Closes the shared sockets idle for `idleMs` (one sweep for all, instead of a timer per socket going idle). */
  #sweep: NodeJS.Timeout | null = null;
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
      return exchangeUdp(this.#upstream, server, identity, query, expect, timeoutMs, onMismatch, this.#o.onDrops);
    }
    if (!s) {
      const created: Shared = { key, server: `${server.ip}:${server.port}`, socket: null, waiters: new Map(), idleSince: null };
      try {
        created.socket = this.#upstream.udp(
          server,
          identity,
          (data) => this.#onMessage(created, data),
          (err) => this.#fail(created, err),
          this.#o.onDrops,
        );
      } catch (err) {
        return Promise.resolve({ ok: false, kind: 'error', error: err instanceof Error ? err : new Error(String(err)) });
      }
      s = created;
      this.#sockets.set(key, s);
      this.#sweep ??= setInterval(() => this.#closeIdle(), Math.max(100, this.#o.idleMs / 4)).unref();
    }
    const shared = s;
    shared.idleSince = null;
    const deadlines = this.#deadlines;
    return new Promise<ExchangeResult>((resolve) => {
      const waiter: Waiter = {
        expect,
        onMismatch,
        deadline: performance.now() + timeoutMs,
        finish: (r) => {
          if (shared.waiters.get(expect.id) !== waiter) return;
          deadlines.delete(waiter, timeoutMs);
          shared.waiters.delete(expect.id);
          if (shared.waiters.size === 0) shared.idleSince = performance.now();
          resolve(r);
        },
        expire: () => waiter.finish({ ok: false, kind: 'timeout', error: Object.assign(new Error(`no answer from ${server.ip}:${server.port} within ${timeoutMs} ms`), { name: 'UpstreamTimeout' }) }),
      };
      shared.waiters.set(expect.id, waiter);
      deadlines.add(waiter, timeoutMs);
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
    this.#deadlines.clear();
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  #closeIdle(): void {
    const before = performance.now() - this.#o.idleMs;
    for (const s of this.#sockets.values()) if (s.idleSince !== null && s.idleSince <= before) this.#drop(s);
    if (this.#sockets.size === 0 && this.#sweep) {
      clearInterval(this.#sweep);
      this.#sweep = null;
    }
  }

  #onMessage(s: Shared, data: Buffer): void {
    // The socket is connected: the kernel delivers only the server's datagrams.
    const id = peekHeader(data)?.id;
    const waiter = id === undefined ? undefined : s.waiters.get(id);
    let message: Message;
    try {
      message = parseMessage(data);
    } catch (err) {
      const why = `malformed answer: ${err instanceof DnsWireError ? err.message : String(err)}`;
      if (waiter) waiter.finish({ ok: false, kind: 'bad-answer', error: new Error(`bad answer from ${s.server}: ${why}`) });
      else this.#o.onStray(why);
      return;
    }
    if (!waiter) {
      this.#o.onStray(`answer with ID ${message.header.id}: no query in flight with it`);
      return;
    }
    const why = answerMismatch(message, waiter.expect);
    if (why === null) waiter.finish({ ok: true, response: data, message });
    else waiter.finish({ ok: false, kind: 'bad-answer', error: new Error(`bad answer from ${s.server}: answer does not match the query: ${why}`) });
  }

  #fail(s: Shared, error: Error): void {
    this.#drop(s);
    for (const w of [...s.waiters.values()]) w.finish({ ok: false, kind: 'error', error });
  }

  #drop(s: Shared): void {
    s.idleSince = null;
    if (this.#sockets.get(s.key) === s) this.#sockets.delete(s.key);
    s.socket?.close();
    s.socket = null;
  }
}
