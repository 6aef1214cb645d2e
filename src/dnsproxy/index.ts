/**
 * dnsproxy: the transparent per-node DNS proxy, UDP and TCP. See README.md for the pipeline.
 * Endpoints, policy, the FQDN hand-off and upstream sockets come in through `DnsProxyDeps`.
 */

export { DnsProxy, REJECT_RCODE, type DnsListenTarget } from './proxy.js';
export type {
  DnsAnswer,
  DnsProxyDeps,
  DnsProxyOptions,
  DnsProxyStats,
  DnsSource,
  DnsTransport,
  DnsUpstream,
  HostPort,
  RejectResponseCode,
  UpstreamUdpSocket,
} from './types.js';
export { markedUpstream, plainUpstream, exchangeUdp, exchangeTcp, answerMismatch, type ExchangeResult, type ExpectedAnswer } from './upstream.js';
export { answerDetails, MAX_CNAME_CHAIN, type AnswerDetails } from './answer.js';
export { evaluateQuery, type DnsDecision } from './policy.js';
export { accessLogEntry, requestFlow, responseFlow, type DnsExchange, type DnsAccessVerdict } from './log.js';
export { refusedRequestFlow } from './refusal.js';
export { FrameReader, frame, MAX_TCP_MESSAGE } from './tcp-frames.js';
export {
  DnsWireError,
  localReply,
  MAX_NAME_WIRE_LENGTH,
  parseMessage,
  RCODE,
  rcodeMnemonic,
  readName,
  scanMessage,
  typeName,
  type AnswerRecord,
  type Header,
  type Message,
  type Question,
} from './wire.js';
export { channels as dnsproxyChannels } from './diagnostics.js';
export { traceDnsProxy } from './trace.js';
