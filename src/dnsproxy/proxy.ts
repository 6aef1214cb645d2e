/**
 * The transparent DNS proxy (Cilium `pkg/fqdn/dnsproxy/proxy.go` `ServeDNS`), on UDP and TCP:
 *
 *   receive (datagram | TCP frame) → parse → source → policy → forward → learn → release → log
 *
 * Each stage is a plain function in its own file (wire.ts, policy.ts, upstream.ts, answer.ts,
 * log.ts); this class wires them to the sockets and keeps the counters. The answer to an allowed
 * query is released only after `deps.onAnswer` settles, so the IPs it teaches are in the datapath
 * before the client can connect to them.
 */

import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { LRUCache } from 'lru-cache';
import { transparentListenFd, udpListenTransparent, udpReplySocket, type NativeUdpSocket } from '../datapath/index.js';
import { membraneError } from '../errors/index.js';
import { emptyEndpoint, type Flow } from '../observe/index.js';
import { answerDetails } from './answer.js';
import { channels } from './diagnostics.js';
import { accessLogEntry, requestFlow, responseFlow, type DnsExchange, type DnsFlowSite } from './log.js';
import { DnsDecisions, type DnsDecision } from './policy.js';
import { refusedRequestFlow } from './refusal.js';
import { FrameReader, frame } from './tcp-frames.js';
import type { DnsProxyDeps, DnsProxyOptions, DnsProxyStats, DnsSource, DnsTransport, HostPort, RejectResponseCode } from './types.js';
import { exchangeTcp } from './upstream.js';
import { SharedUdpExchanges } from './upstream-shared.js';
import { DnsWireError, firstQuestionBytes, localReply, OPCODE_QUERY, parseMessage, RCODE, type Message } from './wire.js';

const DEFAULTS: Required<DnsProxyOptions> = {
  rejectResponseCode: 'refused',
  upstreamTimeoutMs: 10_000,
  maxInflight: 10_000,
  maxInflightPerSource: 2500,
  maxInflightPerTcpConnection: 32,
  tcpIdleTimeoutMs: 10_000,
  maxTcpConnections: 1024,
  replySockets: 256,
};

/** Upstream UDP sockets shared per client socket and server (upstream-shared.ts), and how long one idles before it is closed. */
const SHARED_UPSTREAM_SOCKETS = 1024;
const SHARED_UPSTREAM_IDLE_MS = 10_000;

/** Malformed or unattributable messages are logged at most this often per second (a flood must not flood the log). */
const DROP_LOG_PER_SECOND = 10;

/** Kernel drops on the proxy's sockets are summed into one warning at most this often, ms. */
const OVERFLOW_LOG_INTERVAL_MS = 10_000;

export const REJECT_RCODE: Readonly<Record<RejectResponseCode, number>> = { refused: RCODE.REFUSED, nameError: RCODE.NXDOMAIN };

/**
 * Where the proxy listens. Transparent (production): the datapath redirects DNS to `port` and the
 * original destination comes from the kernel. Plain (tests, or without the datapath): an ordinary
 * loopback port, and `originalDestination` says which server each client meant.
 */
export type DnsListenTarget =
  | { transparent: true; port: number; ip?: string; /** Join the port's SO_REUSEPORT group (proxy workers). */ reusePort?: boolean }
  | { transparent?: false; port: number; host?: string; originalDestination: (client: HostPort, protocol: DnsTransport) => HostPort };

/** One message as a transport delivers it. */
interface Incoming {
  protocol: DnsTransport;
  data: Buffer;
  client: HostPort;
  server: HostPort;
  truncated?: boolean;
  reply(bytes: Uint8Array): void;
}

type Counters = Omit<DnsProxyStats, 'inflight' | 'tcpConnections'>;

export class DnsProxy {
  readonly options: Readonly<Required<DnsProxyOptions>>;
  #deps: DnsProxyDeps;
  #counters: Counters = {
    queries: 0,
    denied: 0,
    forwarded: 0,
    malformed: 0,
    upstreamErrors: 0,
    badAnswers: 0,
    timeouts: 0,
    unknownSource: 0,
    overloaded: 0,
    listenerDrops: 0,
    upstreamDrops: 0,
    mismatchedAnswers: 0,
    answerErrors: 0,
    replyErrors: 0,
  };
  #inflight = 0;
  /** Queries in flight per source address (only addresses with some). */
  #inflightBySource = new Map<string, number>();
  /** Kernel drops not yet in a warning, and when the last warning went out (Date.now ms). */
  #overflowLog = { listener: 0, upstream: 0, at: 0 };
  #site: DnsFlowSite;
  #port = 0;
  #localAddresses = new Set<string>();
  #tcpServer: Server | null = null;
  #tcpSockets = new Set<Socket>();
  #udpNative: NativeUdpSocket | null = null;
  #udpPlain: DgramSocket | null = null;
  #replySockets: LRUCache<string, NativeUdpSocket>;
  #udpExchanges: SharedUdpExchanges;
  #decisions = new DnsDecisions();
  #l7Flow: DnsProxyDeps['l7Flow'];
  /** No new query is taken (close() began); `#closed`: no answer is sent any more. */
  #stopping = false;
  #closed = false;
  #dropLog = { second: 0, lines: 0, suppressed: 0 };

  constructor(deps: DnsProxyDeps, opts: DnsProxyOptions = {}) {
    const o = { ...DEFAULTS };
    for (const [k, v] of Object.entries(opts) as Array<[keyof DnsProxyOptions, unknown]>) {
      if (v !== undefined) (o as Record<string, unknown>)[k] = v;
    }
    if (!(o.rejectResponseCode in REJECT_RCODE)) {
      throw membraneError('MEMBRANE_ERR_CLI_USAGE', `invalid --tofqdns-dns-reject-response-code "${o.rejectResponseCode}": valid are "refused", "nameError"`);
    }
    this.options = o;
    this.#deps = deps;
    this.#l7Flow = deps.l7Flow.bind(deps);
    this.#site = { nodeName: deps.nodeName ?? hostname() };
    this.#replySockets = new LRUCache<string, NativeUdpSocket>({ max: o.replySockets, dispose: (s) => s.close() });
    this.#udpExchanges = new SharedUdpExchanges(deps.upstream, {
      maxSockets: SHARED_UPSTREAM_SOCKETS,
      idleMs: SHARED_UPSTREAM_IDLE_MS,
      onStray: (reason) => {
        this.#counters.mismatchedAnswers++;
        this.#deps.accessLog.warn({ type: 'dns', reason }, 'DNS answer ignored');
      },
      onDrops: (count) => this.#kernelDrops('upstream', count),
    });
  }

  /** Listens on UDP and TCP on the same port. Rejects with MEMBRANE_ERR_PROXY_LISTEN. */
  async listen(target: DnsListenTarget): Promise<void> {
    try {
      if (target.transparent === true) await this.#listenTransparent(target.port, target.ip ?? '0.0.0.0', target.reusePort ?? false);
      else await this.#listenPlain(target.port, target.host ?? '127.0.0.1', target.originalDestination);
    } catch (err) {
      await this.close();
      throw membraneError('MEMBRANE_ERR_PROXY_LISTEN', `DNS proxy: ${(err as Error).message}`, { cause: err, details: { port: target.port } });
    }
    this.#site = { ...this.#site, proxyPort: this.#port };
    this.#localAddresses = localAddresses();
  }

  /** The port UDP and TCP listen on (0 before `listen`). */
  get port(): number {
    return this.#port;
  }

  stats(): DnsProxyStats {
    return { ...this.#counters, inflight: this.#inflight, tcpConnections: this.#tcpSockets.size };
  }

  /**
   * Stops taking queries, lets those in flight be answered (up to `graceMs`, default 2 s: a
   * restarting agent should not make its pods wait for a resolver retry), then closes every
   * socket; answers still owed after the grace are dropped.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#udpNative?.close(); // the listener only: answers go out through the reply sockets
    this.#udpNative = null;
    const server = this.#tcpServer;
    this.#tcpServer = null;
    const stopped = server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const deadline = Date.now() + graceMs;
    while (this.#inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.#closed = true;
    const plain = this.#udpPlain;
    this.#udpPlain = null;
    if (plain) await new Promise<void>((resolve) => plain.close(() => resolve()));
    this.#replySockets.clear();
    this.#udpExchanges.close();
    for (const s of this.#tcpSockets) s.destroy();
    await stopped;
  }

  async #listenTcp(server: Server, target: { fd: number } | { port: number; host: string }): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        resolve();
      });
      server.listen(target);
    });
    server.on('error', (err) => this.#deps.accessLog.error({ type: 'dns-proxy', err }, 'DNS proxy TCP server error'));
    const addr = server.address();
    return addr !== null && typeof addr === 'object' ? addr.port : 0;
  }

  async #listenTransparent(port: number, ip: string, reusePort: boolean): Promise<void> {
    const server = createServer({ noDelay: true });
    this.#tcpServer = server;
    server.on('connection', (s) => this.#onTcpConnection(s, () => ({ ip: normalizeIp(s.localAddress ?? ''), port: s.localPort ?? 0 })));
    this.#port = await this.#listenTcp(server, { fd: transparentListenFd(port, ip, 1024, reusePort) });
    this.#udpNative = udpListenTransparent(
      this.#port,
      ip,
      (datagrams) => {
        for (const d of datagrams) {
          const client = { ip: d.srcIp, port: d.srcPort };
          const server = { ip: d.dstIp, port: d.dstPort };
          void this.#handle({ protocol: 17, data: d.data, client, server, truncated: d.truncated, reply: (bytes) => this.#replyTransparent(server, client, bytes) });
        }
      },
      (err) => this.#deps.accessLog.warn({ type: 'dns-proxy', err }, 'DNS proxy UDP receive error'),
      reusePort,
      (count) => this.#kernelDrops('listener', count),
    );
  }

  async #listenPlain(port: number, host: string, originalDestination: (client: HostPort, protocol: DnsTransport) => HostPort): Promise<void> {
    const server = createServer({ noDelay: true });
    this.#tcpServer = server;
    server.on('connection', (s) => this.#onTcpConnection(s, () => originalDestination({ ip: normalizeIp(s.remoteAddress ?? ''), port: s.remotePort ?? 0 }, 6)));
    this.#port = await this.#listenTcp(server, { port, host });
    // As the transparent listener's 4 MiB; the kernel caps it at net.core.rmem_max here.
    const udp = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    this.#udpPlain = udp;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.#port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', (err) => this.#deps.accessLog.warn({ type: 'dns-proxy', err }, 'DNS proxy UDP socket error'));
    udp.on('message', (data, rinfo) => {
      const client = { ip: rinfo.address, port: rinfo.port };
      const reply = (bytes: Uint8Array): void => {
        udp.send(bytes, client.port, client.ip, (err) => {
          if (err) this.#replyFailed(client, err);
        });
      };
      void this.#handle({ protocol: 17, data, client, server: originalDestination(client, 17), reply });
    });
  }

  #replyTransparent(server: HostPort, client: HostPort, bytes: Uint8Array): void {
    if (this.#closed) return;
    const key = `${server.ip}:${server.port}`;
    try {
      let s = this.#replySockets.get(key);
      if (!s) {
        s = udpReplySocket(server.ip, server.port);
        this.#replySockets.set(key, s);
      }
      // Queued: the turn's answers from this server go out in one sendmmsg.
      s.sendQueued(bytes, client.ip, client.port, (err) => this.#replyFailed(client, err));
    } catch (err) {
      this.#replyFailed(client, err as Error);
    }
  }

  /**
   * Datagrams the kernel dropped on the listener (queries) or an upstream socket (answers)
   * because its receive buffer was full: counted, and one warning per OVERFLOW_LOG_INTERVAL_MS
   * with the sums since the last (the first at once).
   */
  #kernelDrops(where: 'listener' | 'upstream', count: number): void {
    if (where === 'listener') this.#counters.listenerDrops += count;
    else this.#counters.upstreamDrops += count;
    const log = this.#overflowLog;
    log[where] += count;
    const now = Date.now();
    if (now - log.at < OVERFLOW_LOG_INTERVAL_MS) return;
    this.#deps.accessLog.warn(
      { type: 'dns-proxy', droppedQueries: log.listener, droppedAnswers: log.upstream, sinceMs: log.at === 0 ? undefined : now - log.at },
      'DNS proxy overloaded: the kernel dropped datagrams on its UDP sockets (receive buffer full); those queries time out',
    );
    this.#overflowLog = { listener: 0, upstream: 0, at: now };
  }

  #replyFailed(client: HostPort, err: Error): void {
    this.#counters.replyErrors++;
    this.#deps.accessLog.warn({ type: 'dns-proxy', err, client: `${client.ip}:${client.port}` }, 'DNS answer could not be sent to the client');
  }

  #onTcpConnection(socket: Socket, serverOf: () => HostPort): void {
    if (this.#stopping || this.#tcpSockets.size >= this.options.maxTcpConnections) {
      socket.destroy();
      return;
    }
    this.#tcpSockets.add(socket);
    socket.once('close', () => this.#tcpSockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const client = { ip: normalizeIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    let server: HostPort;
    try {
      server = serverOf();
    } catch {
      socket.destroy();
      return;
    }
    const reader = new FrameReader();
    let inflight = 0;
    const limit = this.options.maxInflightPerTcpConnection;
    socket.setTimeout(this.options.tcpIdleTimeoutMs, () => {
      if (inflight === 0) socket.destroy();
    });
    const reply = (bytes: Uint8Array): void => {
      if (!socket.destroyed && socket.writable) socket.write(frame(bytes));
    };
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = reader.push(chunk);
      } catch (err) {
        // The framing itself is broken: nothing after it can be delimited.
        this.#dropped('malformed', client, server, 6, (err as Error).message);
        socket.destroy();
        return;
      }
      for (const data of messages) {
        inflight++;
        void this.#handle({ protocol: 6, data, client, server, reply }).finally(() => {
          inflight--;
          if (inflight < limit && socket.isPaused()) socket.resume();
        });
      }
      if (inflight >= limit) socket.pause();
    });
  }

  #isSelf(server: HostPort): boolean {
    return server.port === this.#port && (server.ip.startsWith('127.') || this.#localAddresses.has(server.ip));
  }

  #emit(flow: Flow): void {
    try {
      this.#deps.onFlow(flow);
    } catch (err) {
      this.#deps.accessLog.error({ type: 'dns-proxy', err }, 'onFlow failed');
    }
  }

  /** A message dropped before policy: counted, logged (rate-limited), published. */
  #dropped(kind: 'malformed' | 'unknownSource', client: HostPort, server: HostPort, protocol: DnsTransport, reason: string): void {
    this.#counters[kind]++;
    if (channels.dropped.hasSubscribers) channels.dropped.publish({ reason, client, server, protocol });
    const now = Math.floor(Date.now() / 1000);
    if (now !== this.#dropLog.second) this.#dropLog = { second: now, lines: 0, suppressed: this.#dropLog.suppressed };
    if (this.#dropLog.lines >= DROP_LOG_PER_SECOND) {
      this.#dropLog.suppressed++;
      return;
    }
    this.#dropLog.lines++;
    const entry: Record<string, unknown> = {
      type: 'dns',
      verdict: 'Dropped',
      reason: kind === 'malformed' ? `malformed: ${reason}` : reason,
      protocol: protocol === 17 ? 'udp' : 'tcp',
      source: { address: `${client.ip}:${client.port}` },
      destination: { address: `${server.ip}:${server.port}` },
    };
    if (this.#dropLog.suppressed > 0) {
      entry.suppressed = this.#dropLog.suppressed;
      this.#dropLog.suppressed = 0;
    }
    this.#deps.accessLog.warn(entry, 'dns');
  }

  #resolveSource(ip: string): DnsSource | null {
    try {
      return this.#deps.resolveSource(ip);
    } catch {
      return null;
    }
  }

  async #handle(q: Incoming): Promise<void> {
    if (this.#stopping) return;
    if (q.truncated === true) {
      this.#dropped('malformed', q.client, q.server, q.protocol, 'datagram longer than 4096 bytes');
      return;
    }
    if (this.#isSelf(q.server)) {
      // Sent straight to the proxy's port, not redirected: forwarding it would loop.
      this.#dropped('unknownSource', q.client, q.server, q.protocol, 'not redirected by the datapath');
      return;
    }
    let msg: Message;
    try {
      msg = parseMessage(q.data);
    } catch (err) {
      this.#dropped('malformed', q.client, q.server, q.protocol, err instanceof DnsWireError ? err.message : String(err));
      return;
    }
    if (msg.header.qr) {
      this.#dropped('malformed', q.client, q.server, q.protocol, 'a response, not a query');
      return;
    }
    const source = this.#resolveSource(q.client.ip);
    if (!source) {
      this.#dropped('unknownSource', q.client, q.server, q.protocol, 'source is not a local endpoint');
      return;
    }
    this.#counters.queries++;
    const first = msg.questions[0];
    const x: DnsExchange = {
      protocol: q.protocol,
      client: q.client,
      server: q.server,
      source,
      destination: emptyEndpoint(),
      id: msg.header.id,
      qname: first ? first.name.toLowerCase() : '.',
      qtype: first?.type ?? 0,
      decision: { allowed: false, reason: '', policies: [], dstIdentity: 0 },
      startedAt: new Date(),
      startNs: process.hrtime.bigint(),
    };
    const reject = (rcode: number, reason: string, decision?: DnsDecision, verdict: 'Denied' | 'Error' = 'Denied'): void => {
      x.verdict = verdict;
      x.rcode = rcode;
      x.reason = reason;
      if (decision) x.decision = decision;
      q.reply(localReply(msg, rcode, firstQuestionBytes(q.data, msg.questions) ?? undefined));
      this.#finish(x);
    };
    // Refused before policy: the access-log line has the reason, an ERROR dns-request flow shows
    // the refusal on the flow stream (refusal.ts), so `membrane observe` sees it too.
    const refuse = (rcode: number, reason: string): void => {
      x.destination = this.#destination(q.server.ip, this.#serverIdentity(q, source));
      this.#emit(refusedRequestFlow(x, this.#site, msg.questions.map((question) => question.type)));
      // One verdict for the flow and the access-log line (Cilium logs such a request VerdictError).
      reject(rcode, reason, undefined, 'Error');
    };
    if (msg.header.opcode !== OPCODE_QUERY) {
      this.#counters.denied++;
      refuse(RCODE.NOTIMP, `opcode ${msg.header.opcode} is not a query`);
      return;
    }
    if (msg.questions.length !== 1 || !first) {
      this.#counters.denied++;
      refuse(RCODE.REFUSED, `${msg.questions.length} questions: exactly one is supported`);
      return;
    }
    if (this.#inflight >= this.options.maxInflight) {
      this.#counters.overloaded++;
      refuse(RCODE.REFUSED, `${this.#inflight} queries in flight (limit ${this.options.maxInflight})`);
      return;
    }
    const fromSource = this.#inflightBySource.get(q.client.ip) ?? 0;
    if (fromSource >= this.options.maxInflightPerSource) {
      this.#counters.overloaded++;
      refuse(RCODE.REFUSED, `${fromSource} queries in flight from ${q.client.ip} (limit ${this.options.maxInflightPerSource})`);
      return;
    }

    // policy
    x.decision = this.#decisions.evaluate(this.#l7Flow, { ip: q.client.ip, port: q.client.port, identity: source.identity }, q.server, q.protocol, x.qname);
    x.destination = this.#destination(q.server.ip, x.decision.dstIdentity);
    // Before the request flow: a tracer sets `traceContext` here, and the flows carry it.
    if (channels.query.hasSubscribers) channels.query.publish({ exchange: x });
    this.#emit(requestFlow(x, this.#site));
    if (!x.decision.allowed) {
      this.#counters.denied++;
      reject(REJECT_RCODE[this.options.rejectResponseCode], x.decision.reason, x.decision);
      return;
    }

    // forward
    this.#inflight++;
    this.#inflightBySource.set(q.client.ip, fromSource + 1);
    try {
      const expect = { id: msg.header.id, question: first };
      const onMismatch = (reason: string): void => {
        this.#counters.mismatchedAnswers++;
        this.#deps.accessLog.warn({ type: 'dns', query: x.qname, id: x.id, server: `${q.server.ip}:${q.server.port}`, reason }, 'DNS answer ignored');
      };
      const r =
        q.protocol === 17
          ? await this.#udpExchanges.exchange(q.client, q.server, source.identity, q.data, expect, this.options.upstreamTimeoutMs, onMismatch)
          : await exchangeTcp(this.#deps.upstream, q.server, source.identity, q.data, expect, this.options.upstreamTimeoutMs);
      if (!r.ok) {
        if (r.kind === 'timeout') this.#counters.timeouts++;
        else this.#counters.upstreamErrors++;
        // Logged by the access-log line (warn, reason "bad answer from …").
        if (r.kind === 'bad-answer') this.#counters.badAnswers++;
        x.verdict = 'Error';
        x.rcode = RCODE.SERVFAIL;
        x.reason = r.error.message;
        if (!this.#closed) q.reply(localReply(msg, RCODE.SERVFAIL, firstQuestionBytes(q.data, msg.questions) ?? undefined));
        this.#emit(responseFlow(x, this.#site, 'ERROR'));
        this.#finish(x);
        return;
      }

      // learn, then release
      x.rcode = r.message.header.rcode;
      x.answer = answerDetails(first.name, r.message.answers);
      if (x.rcode === RCODE.NOERROR && x.answer.ips.length > 0) {
        const t0 = process.hrtime.bigint();
        try {
          await this.#deps.onAnswer({ endpointId: source.endpointId, qname: x.answer.qname, ips: x.answer.ips, ttl: x.answer.ttl });
        } catch (err) {
          this.#counters.answerErrors++;
          this.#deps.accessLog.warn({ type: 'dns', query: x.qname, ips: x.answer.ips, err }, 'learned IPs not confirmed in the datapath; answer released');
        }
        x.releaseDelayNs = process.hrtime.bigint() - t0;
        if (channels.released.hasSubscribers) channels.released.publish({ exchange: x });
      }
      if (this.#closed) return;
      q.reply(r.response);
      this.#counters.forwarded++;
      x.verdict = 'Forwarded';
      this.#emit(responseFlow(x, this.#site, 'FORWARDED'));
      this.#finish(x);
    } finally {
      this.#inflight--;
      const left = (this.#inflightBySource.get(q.client.ip) ?? 1) - 1;
      if (left > 0) this.#inflightBySource.set(q.client.ip, left);
      else this.#inflightBySource.delete(q.client.ip);
    }
  }

  /** The DNS server's identity as the policy state knows it, for a query policy never judged (0 if unknown). */
  #serverIdentity(q: Incoming, source: DnsSource): number {
    try {
      return this.#l7Flow({ ip: q.client.ip, port: q.client.port, identity: source.identity }, q.server, q.protocol).dstIdentity;
    } catch {
      return 0;
    }
  }

  #destination(ip: string, identity: number): DnsExchange['destination'] {
    try {
      const ep = this.#deps.resolveDestination?.(ip);
      if (ep) return ep;
    } catch {
      // flows only: an unknown server is shown by its identity
    }
    return emptyEndpoint(identity);
  }

  #finish(x: DnsExchange): void {
    const entry = accessLogEntry(x);
    if (x.verdict === 'Error') this.#deps.accessLog.warn(entry, 'dns');
    else this.#deps.accessLog.info(entry, 'dns');
    if (channels.done.hasSubscribers) channels.done.publish({ exchange: x });
  }
}

/** `::ffff:10.0.0.1` → `10.0.0.1`. */
function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

