import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Flow, FlowEndpoint } from '../observe/index.js';
import type { L7Flow } from '../policy/index.js';

/** An IPv4 address and port. */
export interface HostPort {
  ip: string;
  port: number;
}

/** IANA protocol number of the transport a query came over: 6 TCP, 17 UDP. */
export type DnsTransport = 6 | 17;

/** The endpoint that asked, as the agent knows it. */
export interface DnsSource {
  endpointId: number;
  identity: number;
  flowEndpoint: FlowEndpoint;
}

/** A UDP socket connected to one DNS server, for one exchange. */
export interface UpstreamUdpSocket {
  /**
   * Sends one datagram to the server. When the kernel refuses it (e.g. EAGAIN) it throws, or, on a
   * socket that batches its sends (the addon's: one sendmmsg per turn of the event loop), calls
   * `onError` later with the error.
   */
  send(data: Uint8Array, onError?: (err: Error) => void): void;
  /** Idempotent. */
  close(): void;
  /** The addon's socket underneath (`markedUpstream`), for its receive buffer and drop count. */
  readonly native?: { receiveInfo(): { receiveBuffer: number; drops: number }; setReceiveBuffer(bytes: number): void };
}

/**
 * Sockets to the original DNS server carrying the source identity in their mark, so the server's
 * side judges the pod, not the node (Cilium: `SO_MARK = MagicMarkEgress | identity`). Production:
 * `markedUpstream()` (the addon); tests: `plainUpstream()` (node:dgram and node:net, no mark).
 */
export interface DnsUpstream {
  /**
   * A UDP socket connected to `server`: datagrams from it arrive in `onMessage`, a socket error
   * (an ICMP port unreachable: ECONNREFUSED) in `onError`, the count of datagrams the kernel
   * dropped on it (receive buffer full) in `onDrops` where the socket can tell (the addon's).
   */
  udp(server: HostPort, identity: number, onMessage: (data: Buffer) => void, onError: (err: Error) => void, onDrops?: (count: number) => void): UpstreamUdpSocket;
  /** A TCP socket connecting to `server` (net.Socket semantics: 'connect', 'data', 'error'). */
  tcp(server: HostPort, identity: number): Socket;
}

/** An allowed answer's lesson, handed to the FQDN subsystem before the answer is released. */
export interface DnsAnswer {
  endpointId: number;
  /** The question's name, lower-case with a trailing dot. */
  qname: string;
  /** A and AAAA addresses on the question's own CNAME chain. */
  ips: readonly string[];
  /** Minimum TTL over that chain, seconds. */
  ttl: number;
  /** When the answer came, ms since the epoch (set when it reaches the agent later than it came). */
  at?: number;
}

export interface DnsProxyDeps {
  /** Who asked: null → not a local endpoint → the query is dropped (fail closed). */
  resolveSource(srcIp: string): DnsSource | null;
  /**
   * The policy state a query is judged against by `decideL7` of the policy module (with
   * `{ kind: 'dns', qname }`); read per query so a policy change applies to the next one. An
   * exception here denies the query.
   */
  l7Flow(src: { ip: string; port: number; identity: number }, dst: HostPort, protocol: DnsTransport): L7Flow;
  /**
   * An allowed answer with IPs: resolves when the learned IPs are in the datapath (the FQDN
   * NameManager's `onAnswer`, which bounds its own wait by `--tofqdns-proxy-response-max-delay`).
   * The answer is released to the client only after it settles; a rejection is logged and counted
   * and the answer is still released (the connection to an unlearned IP is then dropped in the kernel).
   */
  onAnswer(a: DnsAnswer): Promise<unknown>;
  upstream: DnsUpstream;
  /** The DNS server's endpoint for flows (pod name, labels); default: only its identity. */
  resolveDestination?(ip: string): FlowEndpoint | null;
  onFlow(flow: Flow): void;
  /** One JSON line per query. */
  accessLog: Logger;
  nodeName?: string;
}

/** Cilium `--tofqdns-dns-reject-response-code`: what a denied query is answered with. */
export type RejectResponseCode = 'refused' | 'nameError';

export interface DnsProxyOptions {
  /** Default `refused` (Cilium's default); `nameError` answers NXDOMAIN (musl search-list clients). */
  rejectResponseCode?: RejectResponseCode;
  /**
   * Time for the server to answer one forwarded query (Cilium `ProxyForwardTimeout`, 10 s); the
   * client then gets SERVFAIL.
   */
  upstreamTimeoutMs?: number;
  /**
   * Queries in flight at once, over all clients; beyond it a query is answered REFUSED at once
   * (Cilium `--dnsproxy-concurrency-limit` with no grace period). Default 10000.
   */
  maxInflight?: number;
  /**
   * Queries in flight at once from one source address (pod); beyond it its query is answered
   * REFUSED at once and counted `overloaded`, so one pod's burst cannot take the whole
   * `maxInflight` from the others. Membrane's own bound (Cilium has only the global one). Default 2500.
   */
  maxInflightPerSource?: number;
  /** Queries in flight on one downstream TCP connection; reading pauses beyond it. Default 32. */
  maxInflightPerTcpConnection?: number;
  /** A downstream TCP connection with nothing in flight is closed after this long. Default 10 s. */
  tcpIdleTimeoutMs?: number;
  /** Open downstream TCP connections; beyond it new ones are closed at once. Default 1024. */
  maxTcpConnections?: number;
  /** Reply sockets bound to original destinations kept open (transparent UDP). Default 256. */
  replySockets?: number;
}

export interface DnsProxyStats {
  /** Well-formed queries received (whatever their fate). */
  queries: number;
  /** Queries refused by policy, or for having other than one question. */
  denied: number;
  /** Queries forwarded whose answer was relayed to the client. */
  forwarded: number;
  /** Messages dropped as malformed (unparseable, truncated, a response sent as a query). */
  malformed: number;
  /** Forwarded queries that failed upstream (refused, reset, unusable answer): SERVFAIL. */
  upstreamErrors: number;
  /**
   * Of `upstreamErrors`: server datagrams with a pending UDP query's ID that failed the strict
   * parse or did not answer its question (QR unset, another question); that query got SERVFAIL at once.
   */
  badAnswers: number;
  /** Forwarded queries the server did not answer in time: SERVFAIL. */
  timeouts: number;
  /** Queries dropped because the source is not a local endpoint, or not redirected by the datapath. */
  unknownSource: number;
  /** Queries refused because `maxInflight` were in flight, or `maxInflightPerSource` from their source. */
  overloaded: number;
  /**
   * Queries the kernel dropped on the proxy's UDP listener because its receive buffer was full
   * (SO_RXQ_OVFL; transparent listener only): the client saw no answer and retries.
   */
  listenerDrops: number;
  /**
   * Server answers the kernel dropped on the proxy's upstream UDP sockets because their receive
   * buffer was full (SO_RXQ_OVFL; the addon's sockets only): each such query ends in a timeout.
   */
  upstreamDrops: number;
  /** Server datagrams ignored because their ID or question did not match the query. */
  mismatchedAnswers: number;
  /** `onAnswer` rejections (the answer was released anyway). */
  answerErrors: number;
  /** Replies the kernel refused to send to the client. */
  replyErrors: number;
  /** Queries in flight now. */
  inflight: number;
  /** Open downstream TCP connections. */
  tcpConnections: number;
}
