/**
 * l7proxy: the transparent per-node HTTP/1.1 proxy. See README.md for the pipeline.
 * Policy, identities and upstream sockets come in through `L7ProxyDeps` callbacks.
 */

export { HttpProxy } from './proxy.js';
export type {
  ConnectionInfo,
  FlowContext,
  HttpProxyOptions,
  L7ProxyDeps,
  PolicyDecision,
  ProxyStats,
} from './types.js';
export { acceptConnection, connectionInfo, normalizeIp, type AcceptResult } from './accept.js';
export { parseRequest, traceContextOf, type ParsedRequest, type ParseResult } from './parse.js';
export { evaluatePolicy } from './policy.js';
export { poolKey, relay, replyForUpstreamError, upstreamConnector, UpstreamPools } from './forward.js';
export { accessLogEntry, requestFlow, responseFlow, type AccessVerdict, type Exchange } from './log.js';
export { downstreamResponseHeaders, flowHeaders, upstreamRequestHeaders } from './headers.js';
export { ACCESS_DENIED_BODY } from './local-reply.js';
export { channels as l7proxyChannels } from './diagnostics.js';
export { traceHttpProxy } from './trace.js';
export { mergeSlashes, normalizeRequestTarget, removeDotSegments, type NormalizedTarget } from '../policy/index.js';
export { TlsPassthrough, tlsFlow, tlsSummary, type TlsPassthroughDeps, type TlsPassthroughOptions, type TlsPassthroughStats } from './tls-passthrough.js';
export { ClientHelloReader, parseClientHelloBody, DEFAULT_MAX_CLIENT_HELLO_BYTES, type ClientHelloState } from './tls-client-hello.js';
