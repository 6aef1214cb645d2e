import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Flow, FlowEndpoint, TrafficDirection } from '../observe/index.js';
import type { L7Flow } from '../policy/index.js';

/** The accepted connection's 4-tuple. `dst` is the ORIGINAL destination (the pod the client dialled). */
export interface ConnectionInfo {
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
}

/** Who is talking to whom, resolved once per connection from kernel-derived facts (never headers). */
export interface FlowContext {
  srcIdentity: number;
  dstIdentity: number;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  /** The policy direction the redirect was made for: EGRESS of the source, INGRESS of the destination. */
  direction: TrafficDirection;
}

/** What is known of a request the proxy answered before it was parsed in full or judged. */
export interface RefusedRequest {
  /** '' when the request line could not be read. */
  method: string;
  /** As the flows write URLs (`http://host/path`); the request-target as sent when not origin-form. */
  url: string;
  protocol: string;
}

export interface PolicyDecision {
  allowed: boolean;
  reason?: string;
  /** Names of the policies that decided (for the access log and the flow's `*_by` fields). */
  policies?: string[];
}

export interface L7ProxyDeps {
  /** null → the source is unknown: the connection is closed before any byte is read (fail closed). */
  resolveConnection(conn: ConnectionInfo): FlowContext | null;
  /**
   * The policy state a request on this connection is judged against (identities, port, and the
   * policy of each side that is an endpoint of this node), read per request so that a policy
   * change applies to the next request of an open connection. The verdict itself is always
   * `decideL7` of the policy module; an exception here denies the request (fail closed).
   */
  l7Flow(ctx: FlowContext, conn: ConnectionInfo): L7Flow;
  /**
   * A number that changes whenever anything `l7Flow` reads may have changed (policy, endpoints,
   * identities). When given, the proxy reads `l7Flow` once per connection and again only after
   * the number changed, so a request costs one rule evaluation; without it, `l7Flow` is read for
   * every request.
   */
  policyRevision?(): number;
  /**
   * A socket already connecting to `conn.dst`. In production: an fd from the addon with SO_MARK
   * carrying `ctx.srcIdentity`, wrapped in `net.Socket`. Connections are never shared across
   * source identities.
   */
  connectUpstream(ctx: FlowContext, conn: ConnectionInfo): Socket;
  /** Default: `socket.localAddress/localPort` (what a transparent socket reports). */
  originalDestination?(socket: Socket): { ip: string; port: number };
  onFlow(flow: Flow): void;
  /** One JSON line per request. */
  accessLog: Logger;
  nodeName?: string;
}

export interface HttpProxyOptions {
  /** Time allowed to receive a request's headers (Node `server.headersTimeout`). Default 30 s. */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request (Node `server.requestTimeout`). Default 300 s. */
  requestTimeoutMs?: number;
  /**
   * Cilium `--http-request-timeout` (Envoy route timeout): from the end of the downstream request
   * to the end of the upstream response, whole; 504 "upstream request timeout" if no response
   * started, else the response is cut. 0 = unlimited. Default 3600 s, Cilium's.
   */
  httpRequestTimeoutMs?: number;
  /**
   * Cilium `--http-normalize-path`: RFC 3986 path normalisation, merged slashes, and a 307 to the
   * normalised path for escaped slashes, before policy and forwarding. Default true.
   */
  normalizePath?: boolean;
  /** Upstream connect timeout. Default 10 s. */
  connectTimeoutMs?: number;
  /** Bytes of request line + headers. Default 16 KiB. */
  maxHeaderSize?: number;
  /** Number of request header fields. Default 100. */
  maxHeadersCount?: number;
  /** Idle time before a downstream keep-alive connection is closed. Default 60 s. */
  keepAliveTimeoutMs?: number;
  /** Upstream connections per (destination, source identity). Default 128. */
  maxUpstreamConnections?: number;
  /**
   * Also key upstream pools by the client's IP. Needed when `connectUpstream` binds the upstream
   * socket to the pod's own address (source-IP preservation); with the default node-IP source,
   * the identity in the mark is all that distinguishes clients. Default false.
   */
  poolBySourceAddress?: boolean;
  /** Upstream pools idle this long are closed. Default 60 s. */
  upstreamIdleMs?: number;
  /** How long `close()` waits for in-flight requests before cutting them. Default 5 s. */
  closeGraceMs?: number;
  /**
   * Share of forwarded requests written to the access log, in (0, 1]: 0.1 logs one in ten.
   * Denied and failed requests are always logged; flows are not sampled. Default 1 (every request).
   */
  accessLogSampleRate?: number;
}

export interface ProxyStats {
  /** Requests parsed far enough to be counted (every request, whatever its fate). */
  requests: number;
  /** Requests answered 403 by policy. */
  denied: number;
  /** Requests forwarded that got an upstream response. */
  forwarded: number;
  /** Requests that failed upstream (connect, reset, timeout, bad response). */
  upstreamErrors: number;
  /** Requests or connections rejected as malformed (400), including size and count bounds. */
  malformed: number;
  /** Connections closed because the source was unknown, or not redirected by the datapath. */
  unknownSource: number;
  /** Downstream requests that timed out (408). */
  timeouts: number;
  /** Forwarded requests left out of the access log by `accessLogSampleRate`. */
  accessLogSampledOut: number;
  /** Open downstream connections. */
  connections: number;
  /** Live upstream pools (one per destination and source identity). */
  upstreamPools: number;
}
